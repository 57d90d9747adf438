"""A second delivery of a msgid with other content is analysed too: its content becomes a
message of its own (msgid: the conflict envelope's), scanned and alerted on like any other,
and ``audit failures`` says where it went; a version that cannot be decrypted yet (its key
not configured) is read on the run after the key is added."""

from __future__ import annotations

import random
from pathlib import Path

from archive_items import MSGTIME, line, plaintext, text_item, write_key
from archive_items import item as encrypted_item
from click.testing import CliRunner
from sqlalchemy import Engine, select

from audit.cli import cli
from audit.store.db import session_scope
from audit.store.models import Alert, Envelope, EnvelopeState, Finding, Message

SAID = {"from": "li.s001", "tolist": ["wmA"], "msgtime": MSGTIME}


def _run(db_url: str, path: Path, *keys: str) -> None:
    args = ["--db", db_url, "run", "--source", "file", "--path", str(path)]
    for key in keys:
        args += ["--key", key]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def _conflict(engine: Engine) -> Envelope:
    with session_scope(engine) as session:
        (env,) = session.scalars(select(Envelope).where(Envelope.state == EnvelopeState.FAILED))
        session.expunge(env)
        return env


def _findings(engine: Engine) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        return sorted(
            (m.msgid, f.category, f.matched)
            for f, m in session.execute(
                select(Finding, Message).join(Message, Message.id == Finding.message_id)
            )
        )


def _alerts(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return sorted(session.scalars(select(Alert.dedupe_key)))


def test_a_violation_in_a_conflicting_version_is_found_and_alerted(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(31)
    key = f"1={write_key(tmp_path / 'v1.pem')}"
    first = text_item(1, "m1", rng, content="您好，请问有什么可以帮您", **SAID)
    second = text_item(2, "m1", rng, content="加我微信 wx123456 私下转账给我", **SAID)
    path = tmp_path / "archive.jsonl"
    path.write_bytes(line(first) + line(second))
    _run(db_url, path, key)

    conflict = _conflict(engine)
    assert conflict.msgid.startswith("!bad:conflict:")
    assert (conflict.error or "").endswith(f" | content: analysed as message {conflict.msgid}")
    found = _findings(engine)
    assert found and {m for m, _, _ in found} == {conflict.msgid}
    assert ("diversion" in {c for _, c, _ in found}) and not any(m == "m1" for m, _, _ in found)
    assert f"finding:{conflict.msgid}:diversion" in _alerts(engine)
    with session_scope(engine) as session:
        placed = dict(session.execute(select(Message.msgid, Message.conversation_id)).all())
    assert placed["m1"] is not None and placed[conflict.msgid] == placed["m1"]

    result = CliRunner().invoke(cli, ["--db", db_url, "failures"])
    assert result.exit_code == 0, result.output
    assert f"content: analysed as message {conflict.msgid}" in result.output
    result = CliRunner().invoke(cli, ["--db", db_url, "status", "--json"])
    assert '"conflicts": 1' in result.output

    # another run reads nothing twice
    _run(db_url, path, key)
    assert _findings(engine) == found


def test_a_conflicting_version_under_a_key_not_configured_is_read_once_it_is(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(32)
    key = f"1={write_key(tmp_path / 'v1.pem')}"
    first = text_item(1, "m1", rng, content="您好", **SAID)
    second = encrypted_item(2, "m1", plaintext("m1", content="加我微信 wx123456", **SAID), rng)
    second["publickey_ver"] = 2  # a version no key is configured for (yet)
    path = tmp_path / "archive.jsonl"
    path.write_bytes(line(first) + line(second))
    _run(db_url, path, key)
    conflict = _conflict(engine)
    assert " | content: not readable yet: " in (conflict.error or "")
    assert "publickey_ver 2" in (conflict.error or "") or "version 2" in (conflict.error or "")
    assert _findings(engine) == []

    # the same key under version 2 this time: the next run reads it
    _run(db_url, path, key, f"2={write_key(tmp_path / 'v2.pem')}")
    conflict = _conflict(engine)
    assert (conflict.error or "").endswith(f" | content: analysed as message {conflict.msgid}")
    assert {c for m, c, _ in _findings(engine) if m == conflict.msgid} >= {"diversion"}
