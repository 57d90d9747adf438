"""The SDK in its own process: the live source and media, and the pipeline's sdk decryptor."""

from __future__ import annotations

from pathlib import Path

import pytest
from simfixtures import SimArchive
from sqlalchemy import Engine, select

from audit.archive import simulator
from audit.archive.keys import KeyRing
from audit.archive.sdk import SdkError
from audit.archive.sdk_worker import CRASHED, IsolatedSdkClient
from audit.archive.sources import SimulatedServer
from audit.config import load_settings
from audit.pipeline import ingest
from audit.store.db import session_scope
from audit.store.models import Envelope, EnvelopeState, Message


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.sdk
def test_isolated_client_maps_network_failure_and_survives_child_death(lib_path: Path) -> None:
    # no network here: a proxy on a closed local port makes GetChatData fail at once
    with IsolatedSdkClient(
        "ww0123456789abcdef",
        "not-a-real-secret",
        lib_path,
        proxy=f"http://127.0.0.1:{_closed_port()}",
        timeout=1,
    ) as client:
        with pytest.raises(SdkError) as exc:
            client.get_chat_data(0, 10)
        assert exc.value.code == 10001 and exc.value.transient
        assert "not-a-real-secret" not in repr(client)
        assert client._proc is not None
        client._proc.kill()  # the binary aborting mid-call looks like this
        client._proc.wait()
        with pytest.raises(SdkError) as exc:
            client.get_chat_data(0, 10)
        assert exc.value.code in (CRASHED, 10001)
        with pytest.raises(SdkError) as exc:  # a fresh child answers again
            client.get_chat_data(0, 10)
        assert exc.value.code == 10001


@pytest.mark.sdk
def test_bad_limit_is_reported_not_fatal(lib_path: Path) -> None:
    with IsolatedSdkClient("ww0123456789abcdef", "s", lib_path, timeout=1) as client:
        with pytest.raises(SdkError) as exc:
            client.get_chat_data(0, 1001)
        assert exc.value.code == 10000 and not exc.value.transient


@pytest.mark.sdk
def test_pipeline_with_sdk_decryptor_stores_the_same_messages(
    engine: Engine, sim_archive: SimArchive, lib_path: Path
) -> None:
    settings = load_settings(
        None,
        environ={},
        overrides={"archive": {"decryptor": "sdk", "sdk_library": str(lib_path), "workers": 2}},
    )
    keys = KeyRing.from_files(simulator.key_files(sim_archive.directory))
    report = ingest(settings, engine, SimulatedServer(sim_archive.directory), keys)
    assert report.decrypt is not None
    assert report.decrypt.decrypted == sim_archive.manifest["messages"]
    assert report.decrypt.failed == 0
    with session_scope(engine) as session:
        assert set(session.scalars(select(Message.msgid))) == sim_archive.msgids()
        states = set(session.scalars(select(Envelope.state).distinct()))
    assert states == {EnvelopeState.DECRYPTED}


def test_sdk_source_without_credentials_says_what_to_set() -> None:
    from audit.archive.sources import SourceError
    from audit.pipeline import make_source

    settings = load_settings(None, environ={}, overrides={"archive": {"source": "sdk"}})
    with pytest.raises(SourceError, match="AUDIT_ARCHIVE__SECRET"):
        make_source(settings)


@pytest.mark.sdk
def test_media_command_records_failures_for_retry(
    sqlite_url: str, sim_archive: SimArchive, lib_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner
    from sqlalchemy import func

    from audit.cli import cli
    from audit.store.db import make_engine
    from audit.store.models import MediaFile

    runner = CliRunner()
    args = ["--db", sqlite_url]
    result = runner.invoke(cli, [*args, "media"])
    assert result.exit_code == 1 and "archive.secret" in result.output
    runner.invoke(
        cli, [*args, "run", "--source", "simulator", "--path", str(sim_archive.directory)]
    )
    monkeypatch.setenv("AUDIT_ARCHIVE__CORPID", "ww0123456789abcdef")
    monkeypatch.setenv("AUDIT_ARCHIVE__SECRET", "not-a-real-secret")
    monkeypatch.setenv("AUDIT_ARCHIVE__SDK_LIBRARY", str(lib_path))
    monkeypatch.setenv("AUDIT_ARCHIVE__PROXY", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("AUDIT_ARCHIVE__TIMEOUT", "1")
    result = runner.invoke(cli, [*args, "media"])
    assert result.exit_code == 0, result.output
    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        states = dict(
            session.execute(select(MediaFile.state, func.count()).group_by(MediaFile.state)).all()
        )
        errors = set(session.scalars(select(MediaFile.error).where(MediaFile.state == "failed")))
    assert states.get("failed", 0) > 0 and "stored" not in states
    assert all("10001" in (e or "") for e in errors)
    assert "not-a-real-secret" not in result.output
