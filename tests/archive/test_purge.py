"""Purging the ciphertext of decrypted envelopes: failed ones keep theirs, the bytes are
counted and trailed, and everything after works as before (re-deliveries, conflicts,
retry-failed, a full rescan), on both databases."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from simfixtures import SimArchive
from sqlalchemy import Engine, func, select

from audit.archive import simulator
from audit.archive.ingest import decrypt_pending, retry_failed
from audit.archive.keys import KeyRing
from audit.archive.purge import purge_ciphertext
from audit.archive.sources import FileSource, SimulatedServer
from audit.cli import cli
from audit.config import Settings, load_settings
from audit.domain import Action
from audit.pipeline import (
    analyse,
    ingest,
    load_scanner,
    make_decryptor,
    sync_simulated_directory,
)
from audit.store.access import Principal
from audit.store.db import session_scope
from audit.store.models import AuditLog, Envelope, EnvelopeState, Message
from audit.store.results import result_rows


def _settings() -> Settings:
    return load_settings(None, environ={}, overrides={"archive": {"workers": 1}})


def _ciphertext(engine: Engine) -> dict[str, tuple[str, int, int]]:
    with session_scope(engine) as session:
        return {
            msgid: (str(state), len(chat), len(key))
            for msgid, state, chat, key in session.execute(
                select(
                    Envelope.msgid,
                    Envelope.state,
                    Envelope.encrypt_chat_msg,
                    Envelope.encrypt_random_key,
                )
            )
        }


def test_purge_clears_decrypted_ciphertext_and_everything_still_works(
    engine: Engine, sim_archive: SimArchive, tmp_path: Path
) -> None:
    settings = _settings()
    files = simulator.key_files(sim_archive.directory)
    first_key = KeyRing.from_files({min(files): files[min(files)]})
    sync_simulated_directory(engine, SimulatedServer(sim_archive.directory))
    items = sim_archive.items()
    archive = tmp_path / "archive.jsonl"
    archive.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    scanner = load_scanner(settings)
    report = ingest(settings, engine, FileSource(archive), first_key)  # the rotated key missing
    analyse(settings, engine, scanner, report=report)
    before = _ciphertext(engine)
    failed = {m for m, (state, *_) in before.items() if state == EnvelopeState.FAILED}
    decrypted = {m for m, (state, *_) in before.items() if state == EnvelopeState.DECRYPTED}
    assert len(failed) > 100 and len(decrypted) > 1000
    rows = result_rows(engine)
    with session_scope(engine) as session:
        messages = session.scalar(select(func.count()).select_from(Message)) or 0

    stats = purge_ciphertext(engine, Principal.operator(), batch_size=700)

    after = _ciphertext(engine)
    assert stats.envelopes == len(decrypted)
    assert stats.bytes == sum(before[m][1] + before[m][2] for m in decrypted) > 500_000
    assert all(after[m][1:] == (0, 0) for m in decrypted)
    assert all(after[m] == before[m] for m in failed)  # failed ones keep theirs
    with session_scope(engine) as session:
        trail = session.scalars(
            select(AuditLog.detail).where(AuditLog.action == Action.CIPHERTEXT_PURGE)
        ).all()
    assert len(trail) == -(-len(decrypted) // 700)
    assert sum(d["envelopes"] for d in trail) == stats.envelopes
    assert sum(d["bytes"] for d in trail) == stats.bytes
    assert result_rows(engine) == rows  # messages and everything made of them: untouched
    assert purge_ciphertext(engine, Principal.operator()).envelopes == 0  # nothing left

    # the archive delivered again (a new source name: from its start) is all duplicates;
    # an item of a purged envelope with other content is a conflict
    cipher = ("publickey_ver", "encrypt_random_key", "encrypt_chat_msg")
    changed = {**items[0], **{k: items[1][k] for k in cipher}}
    again = tmp_path / "again.jsonl"
    lines = [json.dumps(i) for i in items] + [json.dumps({**changed, "seq": 10**6})]
    again.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(settings, engine, FileSource(again), first_key)
    assert report.pull is not None
    assert report.pull.duplicates == len(items) and report.pull.conflicts == 1
    assert report.decrypt is not None
    messages += report.decrypt.conflicts_read  # the second version, as a message of its own

    # the failed ones decrypt once the key is there; a full rescan finds what it found
    n = retry_failed(engine)
    with make_decryptor(settings, KeyRing.from_files(files)) as dec:
        redone = decrypt_pending(engine, dec)
    assert n == len(failed) == redone.decrypted
    report = analyse(settings, engine, scanner, full_scan=True)
    assert report.scan is not None and report.scan.messages > len(decrypted)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message)) == messages + n


def test_purge_command_reports_and_asks(tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    db = f"sqlite:///{tmp_path / 'a.db'}"
    runner = CliRunner()
    runner.invoke(cli, ["simulate", "--out", str(sim), "--messages", "120", "--days", "1"])
    runner.invoke(cli, ["--db", db, "init"])
    archive = str(sim / "archive.jsonl")
    keys = ["--key", f"1={sim / 'keys/v1.pem'}", "--key", f"2={sim / 'keys/v2.pem'}"]
    runner.invoke(cli, ["--db", db, "pull", "--source", "file", "--path", archive, *keys])
    refused = runner.invoke(cli, ["--db", db, "purge-ciphertext"], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    done = runner.invoke(cli, ["--db", db, "purge-ciphertext", "--yes"])
    assert done.exit_code == 0, done.output
    assert "purged the ciphertext of 120 decrypted envelope(s)" in done.output
    again = runner.invoke(cli, ["--db", db, "purge-ciphertext", "--yes"])
    assert "of 0 decrypted envelope(s): 0 bytes" in again.output
