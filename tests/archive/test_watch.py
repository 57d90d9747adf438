"""Continuous mode: cycles, the msgaudit_notify callback, and a clean stop on SIGTERM."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from simfixtures import SimArchive

from audit.archive import simulator
from audit.archive.keys import KeyRing
from audit.archive.notify import CallbackCrypto, CallbackError, NotifyServer, event_of
from audit.archive.sources import SimulatedServer
from audit.config import load_settings
from audit.pipeline import load_scanner
from audit.store.db import make_engine
from audit.store.runlock import PipelineBusy, pipeline_lock
from audit.watch import Watcher

pytestmark = pytest.mark.slow  # long-running: scheduled first (tests/conftest.py)

AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters, as WeCom
CRYPTO = CallbackCrypto(token="tok3n", encoding_aes_key=AES_KEY, receiveid="ww0123456789abcdef")
NOTIFY_XML = (
    "<xml><ToUserName><![CDATA[ww0123456789abcdef]]></ToUserName><CreateTime>1763431200"
    "</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[msgaudit_notify]]>"
    "</Event><AgentID>2000003</AgentID></xml>"
)
SENT_AT = 1763431200  # the callbacks' timestamp; the server's clock agrees with it


def _clock() -> float:
    return float(SENT_AT)


def _post(port: int, xml_payload: str, crypto: CallbackCrypto = CRYPTO) -> int:
    encrypt = crypto.encrypt(xml_payload)
    timestamp, nonce = str(SENT_AT), "n0nce"
    query = urlencode(
        {
            "msg_signature": crypto.signature(timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }
    )
    body = f"<xml><ToUserName>x</ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/callback?{query}", body.encode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_callback_crypto_round_trip_and_event() -> None:
    encrypted = CRYPTO.encrypt(NOTIFY_XML)
    assert CRYPTO.decrypt(encrypted) == NOTIFY_XML
    assert event_of(NOTIFY_XML) == "msgaudit_notify"
    other_corp = CallbackCrypto("tok3n", AES_KEY, "wwOTHER")
    with pytest.raises(CallbackError, match="receiveid"):
        other_corp.decrypt(encrypted)
    with pytest.raises(CallbackError, match="signature"):
        CRYPTO.verify("0" * 40, "1", "2", encrypted)


def test_notify_server_verifies_and_wakes() -> None:
    woken = threading.Event()
    with NotifyServer(CRYPTO, woken.set, clock=_clock) as server:
        forged = CallbackCrypto("wrong-token", AES_KEY, CRYPTO.receiveid)
        assert _post(server.port, NOTIFY_XML, forged) == 403
        assert not woken.is_set()
        other = NOTIFY_XML.replace("msgaudit_notify", "change_external_tag")
        assert _post(server.port, other) == 200 and not woken.is_set()
        assert _post(server.port, NOTIFY_XML) == 200
        assert woken.wait(2)
        assert server.events == ["change_external_tag", "msgaudit_notify"]
        # URL verification when the callback is registered in the admin console
        echostr = CRYPTO.encrypt("echo-12345")
        q = urlencode(
            {
                "msg_signature": CRYPTO.signature("1", "2", echostr),
                "timestamp": "1",
                "nonce": "2",
                "echostr": echostr,
            }
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/?{q}", timeout=5) as resp:
            assert resp.read() == b"echo-12345"


def _watcher(db_url: str, sim: SimArchive, interval: float, lines: list[str]) -> Watcher:
    settings = load_settings(None, environ={}, overrides={"database": {"url": db_url}})
    return Watcher(
        settings,
        make_engine(db_url),
        lambda: SimulatedServer(sim.directory),
        KeyRing.from_files(simulator.key_files(sim.directory)),
        load_scanner(settings),
        interval,
        emit=lines.append,
    )


def test_watch_cycles_are_incremental(sqlite_url: str, sim_archive: SimArchive) -> None:
    lines: list[str] = []
    watcher = _watcher(sqlite_url, sim_archive, 0.01, lines)
    watcher.run(max_cycles=2)
    first, second = watcher.cycles
    assert first.report.decrypt is not None and second.report.decrypt is not None
    assert first.report.decrypt.decrypted == sim_archive.manifest["messages"]
    assert second.report.decrypt.decrypted == 0
    assert lines[0].startswith(f"cycle 1: +{sim_archive.manifest['messages']} envelopes")
    assert "lag " in lines[0] and lines[1].startswith("cycle 2: +0 envelopes")
    assert lines[-1] == "stopped after 2 cycle(s)"


def test_notify_callback_triggers_a_pull_before_the_interval(
    sqlite_url: str, sim_archive: SimArchive
) -> None:
    lines: list[str] = []
    watcher = _watcher(sqlite_url, sim_archive, 3600, lines)
    thread = threading.Thread(target=watcher.run, daemon=True)
    with NotifyServer(CRYPTO, watcher.notify, clock=_clock) as server:
        thread.start()
        deadline = time.monotonic() + 60
        while len(watcher.cycles) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _post(server.port, NOTIFY_XML) == 200
        while len(watcher.cycles) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(watcher.cycles) == 2  # the hour-long interval was cut short
    watcher.stop()
    thread.join(10)
    assert not thread.is_alive()


def test_sigterm_stops_watch_cleanly(tmp_path: Path, sim_archive: SimArchive) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    subprocess.run(
        [sys.executable, "-m", "audit", "--db", db, "init"], check=True, capture_output=True
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "audit",
            "--db",
            db,
            "watch",
            "--source",
            "simulator",
            "--path",
            str(sim_archive.directory),
            "--interval",
            "0.2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AUDIT_ARCHIVE__WORKERS": "1"},
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "cycle 2:" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(seen) + rest
    assert "received SIGTERM" in rest and "stopped after" in rest


def test_a_watch_cycle_is_skipped_while_a_run_holds_the_database(
    sqlite_url: str, sim_archive: SimArchive
) -> None:
    lines: list[str] = []
    watcher = _watcher(sqlite_url, sim_archive, 0.01, lines)
    with pipeline_lock(make_engine(sqlite_url)), pytest.raises(PipelineBusy):
        watcher.cycle()
    assert watcher.cycles == []
    watcher.run(max_cycles=1)  # free again: the cycle runs
    assert len(watcher.cycles) == 1 and lines[0].startswith("cycle 1: +")
