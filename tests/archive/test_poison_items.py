"""Hostile archive items are quarantined with their reason; nothing after them is held up.

Each case once crashed ``audit pull`` or the decrypt stage with a traceback (on SQLite, on
PostgreSQL, or on both), so that every rerun crashed at the same item. Each test runs on both
backends and checks the exact reason, that the raw item is kept, and that the good items
around it are stored and decrypted.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest
from archive_items import item as encrypted_item
from archive_items import keyring, line, plaintext, text_item, write_key
from sqlalchemy import Engine, select

from audit.archive.ingest import Decryptor, decrypt_pending, pull, retry_failed
from audit.archive.sources import FileSource
from audit.reports.status import status
from audit.store.db import session_scope
from audit.store.models import Envelope, EnvelopeState, Message


def _pull(engine: Engine, path: Path) -> Any:
    stats = pull(engine, FileSource(path), 1000)
    with Decryptor(keyring(), workers=1) as dec:
        decrypt_pending(engine, dec)
    return stats


def _envelopes(engine: Engine) -> dict[str, Envelope]:
    with session_scope(engine) as session:
        return {e.msgid: e for e in session.scalars(select(Envelope))}


def _messages(engine: Engine) -> dict[str, Message]:
    with session_scope(engine) as session:
        return {m.msgid: m for m in session.scalars(select(Message))}


def _status(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as session:
        return status(session)


def _only_failed(envelopes: dict[str, Envelope]) -> Envelope:
    (failed,) = [e for e in envelopes.values() if e.state == EnvelopeState.FAILED]
    return failed


def _archive(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "archive.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def _good_around(engine: Engine, *msgids: str) -> None:
    messages = _messages(engine)
    for msgid in msgids:
        assert messages[msgid].text == f"好 {msgid}", msgid


# --------------------------------------------------------------------------- envelope values


def test_binary_line_is_kept_as_its_bytes_and_the_file_goes_on(
    engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(1)
    garbage = b"\x89PNG\x00\xff\xfe binary \xc3\x28 tail"
    path = _archive(
        tmp_path,
        line(text_item(1, "m1", rng, content="好 m1")),
        garbage + b"\n",
        line(text_item(2, "m2", rng, content="好 m2")),
    )
    stats = _pull(engine, path)
    assert stats.received == 3 and stats.problems == 1
    bad = _only_failed(_envelopes(engine))
    assert bad.error == "archive.jsonl:2: not JSON (Expecting value)"
    assert bad.raw == {
        "encoding": "base64",
        "line_base64": base64.b64encode(garbage).decode("ascii"),
    }
    _good_around(engine, "m1", "m2")


def test_undecodable_bytes_inside_a_msgid_keep_the_item_as_bytes(
    engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(2)
    poison = text_item(2, "PLACEHOLDER", rng)
    raw_line = line(poison).replace(b"PLACEHOLDER", b"m\xff\xfe2")
    page = {"errcode": 0, "chatdata": [text_item(1, "m1", rng, content="好 m1")]}
    path = _archive(tmp_path, line(page), raw_line, line(text_item(3, "m3", rng, content="好 m3")))
    _pull(engine, path)
    bad = _only_failed(_envelopes(engine))
    assert bad.error == "archive.jsonl:2: msgid contains a lone surrogate U+DCFF at offset 1"
    assert bad.raw["encoding"] == "base64"
    kept = base64.b64decode(bad.raw["base64"])
    assert b'"msgid": "m\xff\xfe2"' in kept  # the very bytes that arrived
    assert bad.encrypt_chat_msg == "" and bad.seq == 2  # no column holds a part of it
    _good_around(engine, "m1", "m3")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("msgid", "a\ud800b", "msgid contains a lone surrogate U+D800 at offset 1"),
        ("msgid", "a\x00b", "msgid contains NUL at offset 1"),
        ("msgid", "m" * 256, "msgid is 256 characters long (at most 255)"),
        ("seq", 2**63, "seq 9223372036854775808 is out of range 0..9223372036854775807"),
        ("publickey_ver", 2**31, "publickey_ver 2147483648 is out of range 0..2147483647"),
    ],
    ids=["msgid-surrogate", "msgid-nul", "msgid-256", "seq-2^63", "publickey_ver-2^31"],
)
def test_envelope_value_the_database_cannot_hold_is_quarantined_mid_page(
    engine: Engine, tmp_path: Path, field: str, value: Any, reason: str
) -> None:
    rng = random.Random(3)
    poison = {**text_item(2, "m2", rng), field: value}
    page = {
        "errcode": 0,
        "chatdata": [
            text_item(1, "m1", rng, content="好 m1"),
            poison,
            text_item(3, "m3", rng, content="好 m3"),
        ],
    }
    stats = _pull(engine, _archive(tmp_path, line(page)))
    assert stats.received == 3 and stats.stored == 3 and stats.problems == 1
    bad = _only_failed(_envelopes(engine))
    assert bad.error == f"archive.jsonl:1 item 1: {reason}"
    assert bad.state == EnvelopeState.FAILED
    # everything that arrived is kept: as JSON when it is storable, as bytes otherwise
    if bad.raw.get("encoding") == "base64":
        assert json.loads(base64.b64decode(bad.raw["base64"]).decode("utf-8", "surrogatepass")) == (
            poison
        )
    else:
        assert bad.raw == poison
    _good_around(engine, "m1", "m3")
    st = _status(engine)
    assert st["envelopes"] == {"total": 3, "pending": 0, "decrypted": 2, "failed": 1}
    assert st["checkpoints"] == {FileSource(tmp_path / "archive.jsonl").name: 3}


def test_json_too_deep_or_number_too_long_is_an_unreadable_line(
    engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(4)
    path = _archive(
        tmp_path,
        b"[" * 100_000 + b"\n",
        b'{"seq": ' + b"9" * 5000 + b"}\n",
        line(text_item(1, "m1", rng, content="好 m1")),
    )
    _pull(engine, path)
    errors = sorted(e.error or "" for e in _envelopes(engine).values() if e.error)
    assert [e.split(" (")[0] for e in errors] == [
        "archive.jsonl:1: not JSON",
        "archive.jsonl:2: not JSON",
    ]
    _good_around(engine, "m1")


# --------------------------------------------------------------------------- decrypted values


def test_msgtime_beyond_any_datetime_fails_that_message_only(
    engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(5)
    path = _archive(
        tmp_path,
        line(text_item(1, "m1", rng, content="好 m1")),
        line(encrypted_item(2, "m2", plaintext("m2", msgtime=10**20), rng)),
        line(text_item(3, "m3", rng, content="好 m3")),
    )
    _pull(engine, path)
    bad = _envelopes(engine)["m2"]
    assert bad.state == EnvelopeState.FAILED
    assert bad.error == (
        "decrypted data is not a valid message: time 100000000000000000000 ms is outside 1970..3000"
    )
    _good_around(engine, "m1", "m3")


@pytest.mark.parametrize(
    ("content", "stored", "repairs"),
    [
        ("好\ud800 m2", "好\ufffd m2", "text: 1 NUL/lone surrogate -> U+FFFD"),
        ("好\x00 m2\x00", "好\ufffd m2\ufffd", "text: 2 NUL/lone surrogate -> U+FFFD"),
    ],
    ids=["lone-surrogate", "nul"],
)
def test_customer_text_with_nul_or_surrogate_is_kept_with_a_replacement(
    engine: Engine, tmp_path: Path, content: str, stored: str, repairs: str
) -> None:
    rng = random.Random(6)
    path = _archive(
        tmp_path,
        line(text_item(1, "m1", rng, content="好 m1")),
        line(text_item(2, "m2", rng, content=content)),
        line(text_item(3, "m3", rng, content="好 m3")),
    )
    _pull(engine, path)
    messages = _messages(engine)
    message = messages["m2"]
    # U+FFFD for each: one code point for one, so finding offsets stay those of the original
    assert message.text == stored and len(message.text) == len(content)
    assert message.repairs == (
        f"{repairs}; raw: {repairs.split()[1]} NUL/lone surrogate -> U+FFFD, NaN/Infinity -> text"
    )
    assert message.raw["text"]["content"] == stored
    assert messages["m1"].repairs is None
    _good_around(engine, "m1", "m3")
    st = _status(engine)
    assert st["envelopes"]["decrypted"] == 3 and st["repaired_messages"] == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"from": "x" * 129}, "field 'from' is 129 characters long (at most 128)"),
        ({"from": "li\x00s"}, "field 'from' contains NUL at offset 2"),
        ({"roomid": "r\udc80"}, "field 'roomid' contains a lone surrogate U+DC80 at offset 1"),
        ({"msgtype": "t" * 65}, "field 'msgtype' is 65 characters long (at most 64)"),
        ({"tolist": ["wm" + "c" * 200]}, "field 'tolist'[0] is 202 characters long (at most 128)"),
    ],
    ids=["from-long", "from-nul", "roomid-surrogate", "msgtype-long", "tolist-long"],
)
def test_decrypted_identifier_the_database_cannot_hold_fails_that_message(
    engine: Engine, tmp_path: Path, fields: dict[str, Any], reason: str
) -> None:
    rng = random.Random(7)
    path = _archive(
        tmp_path,
        line(encrypted_item(1, "m1", plaintext("m1", **fields), rng)),
        line(text_item(2, "m2", rng, content="好 m2")),
    )
    _pull(engine, path)
    bad = _envelopes(engine)["m1"]
    assert bad.state == EnvelopeState.FAILED
    assert bad.error == f"decrypted message cannot be stored: {reason}"
    _good_around(engine, "m2")


def test_nan_in_decrypted_json_is_stored_as_text(engine: Engine, tmp_path: Path) -> None:
    rng = random.Random(8)
    data = plaintext("m1", content="好 m1").replace(b'"roomid": ""', b'"roomid": "", "x": NaN')
    path = _archive(tmp_path, line(encrypted_item(1, "m1", data, rng)))
    _pull(engine, path)
    message = _messages(engine)["m1"]
    assert message.raw["x"] == "nan" and message.text == "好 m1"


def test_message_the_database_still_refuses_is_isolated_from_its_batch(
    engine: Engine, tmp_path: Path
) -> None:
    """A refusal no check foresaw (here: a trigger) fails that message, not its batch."""
    rng = random.Random(9)
    path = _archive(
        tmp_path, *(line(text_item(i, f"m{i}", rng, content=f"好 m{i}")) for i in range(1, 8))
    )
    with engine.begin() as conn:
        _refuse_message(conn, "m5")
    pull(engine, FileSource(path), 1000)
    with Decryptor(keyring(), workers=1) as dec:
        stats = decrypt_pending(engine, dec)
    assert stats.decrypted == 6 and stats.failed == 1
    bad = _envelopes(engine)["m5"]
    assert bad.state == EnvelopeState.FAILED
    assert bad.error is not None and bad.error.startswith("message cannot be stored: ")
    assert "poison m5" in bad.error
    _good_around(engine, "m1", "m2", "m3", "m4", "m6", "m7")
    # once the database takes it, retry-failed recovers it
    with engine.begin() as conn:
        _drop_refusal(conn)
    assert retry_failed(engine, ["m5"]) == 1
    with Decryptor(keyring(), workers=1) as dec:
        assert decrypt_pending(engine, dec).decrypted == 1
    _good_around(engine, "m5")


def _refuse_message(conn: Any, msgid: str) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON messages "
            f"WHEN NEW.msgid = '{msgid}' BEGIN SELECT RAISE(ABORT, 'poison {msgid}'); END"
        )
    else:
        conn.exec_driver_sql(
            "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.msgid = '{msgid}' THEN RAISE EXCEPTION 'poison {msgid}'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()"
        )


def _drop_refusal(conn: Any) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER poison")
    else:
        conn.exec_driver_sql("DROP TRIGGER poison ON messages")
        conn.exec_driver_sql("DROP FUNCTION poison()")


# --------------------------------------------------------------------------- nothing dropped


def test_same_msgid_with_other_content_is_kept_as_a_conflict(
    engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(10)
    first = text_item(1, "m1", rng, content="好 m1")
    second = text_item(3, "m1", rng, content="加我微信 wx123456")  # what the second one says
    page = {"errcode": 0, "chatdata": [first, {**first, "seq": 2}, second]}
    stats = _pull(engine, _archive(tmp_path, line(page)))
    assert stats.received == 3 and stats.duplicates == 1 and stats.conflicts == 1
    envelopes = _envelopes(engine)
    conflict = _only_failed(envelopes)
    name = FileSource(tmp_path / "archive.jsonl").name
    assert conflict.msgid.startswith("!bad:conflict:")
    assert conflict.error == (
        f"conflict: msgid 'm1' delivered again with different content "
        f"(first version: {name} seq 1; this one: seq 3)"
        f" | content: analysed as message {conflict.msgid}"
    )
    assert conflict.raw == second and conflict.seq == 3
    _good_around(engine, "m1")
    # what the second version says is a message of its own, for the later stages
    messages = _messages(engine)
    assert set(messages) == {"m1", conflict.msgid}
    assert messages[conflict.msgid].text == "加我微信 wx123456"
    assert messages[conflict.msgid].envelope_id == conflict.id
    st = _status(engine)
    assert st["conflicts"] == 1
    assert st["envelopes"] == {"total": 2, "pending": 0, "decrypted": 1, "failed": 1}
    # delivered once more, from a later pull: the same conflict, not a new one; the plain
    # duplicate stays a duplicate
    again = tmp_path / "again.jsonl"
    again.write_bytes(line({**second, "seq": 7}) + line({**first, "seq": 8}))
    stats = _pull(engine, again)
    assert stats.stored == 0 and stats.duplicates == 2 and stats.conflicts == 0
    assert _status(engine)["conflicts"] == 1


def test_conflict_with_a_version_stored_by_an_earlier_pull(engine: Engine, tmp_path: Path) -> None:
    rng = random.Random(11)
    first = text_item(1, "m1", rng, content="好 m1")
    _pull(engine, _archive(tmp_path, line(first)))
    later = tmp_path / "later.jsonl"
    later.write_bytes(line(text_item(2, "m1", rng, content="退款转我私人账户")))
    stats = _pull(engine, later)
    assert stats.conflicts == 1 and stats.duplicates == 0
    conflict = _only_failed(_envelopes(engine))
    assert "msgid 'm1' delivered again with different content" in (conflict.error or "")
    assert "seq 1" in (conflict.error or "")


def test_each_archive_file_has_its_own_checkpoint(engine: Engine, tmp_path: Path) -> None:
    rng = random.Random(12)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = tmp_path / "a" / "archive.jsonl"
    b = tmp_path / "b" / "archive.jsonl"
    a.write_bytes(b"".join(line(text_item(s, f"a{s}", rng, content=f"好 a{s}")) for s in (50, 51)))
    b.write_bytes(b"".join(line(text_item(s, f"b{s}", rng, content=f"好 b{s}")) for s in (1, 2)))
    assert _pull(engine, a).stored == 2
    assert _pull(engine, b).stored == 2  # seqs below a's: once skipped as already pulled
    _good_around(engine, "a50", "a51", "b1", "b2")
    assert _status(engine)["checkpoints"] == {FileSource(a).name: 51, FileSource(b).name: 2}
    # appending to a file keeps its checkpoint: only the new line is read
    with a.open("ab") as fh:
        fh.write(line(text_item(52, "a52", rng, content="好 a52")))
    stats = _pull(engine, a)
    assert stats.received == 1 and stats.stored == 1


def test_failed_envelopes_are_listed_by_audit_failures(db_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from audit.cli import cli

    rng = random.Random(13)
    first = text_item(1, "m1", rng, content="好 m1")
    path = _archive(
        tmp_path,
        line(first),
        line({**text_item(2, "m2", rng), "seq": 2**64}),
        line(text_item(3, "m1", rng, content="other")),
    )
    key = write_key(tmp_path / "v1.pem")
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--db", db_url, "pull", "--source", "file", "--path", str(path), "--key", f"1={key}"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["--db", db_url, "failures"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2 failed envelope(s)\n")
    assert "seq 18446744073709551616 is out of range" in result.output
    assert "conflict: msgid 'm1' delivered again with different content" in result.output
    result = runner.invoke(cli, ["--db", db_url, "status"])
    assert result.output.splitlines()[:2] == [
        "envelopes   3 (decrypted 1, failed 2, pending 0)",
        "conflicts   1 msgid(s) delivered again, other content",
    ]


def test_redelivery_with_extra_fields_in_another_key_order_is_a_duplicate(
    engine: Engine, tmp_path: Path
) -> None:
    """PostgreSQL's jsonb hands objects back in its own key order: still the same content."""
    rng = random.Random(14)
    first = {**text_item(1, "m1", rng, content="好 m1"), "zz": {"long key": 1, "b": [2]}}
    _pull(engine, _archive(tmp_path, line(first)))
    later = tmp_path / "later.jsonl"
    later.write_bytes(line({**first, "seq": 2, "zz": {"b": [2], "long key": 1}}))
    stats = _pull(engine, later)
    assert stats.duplicates == 1 and stats.conflicts == 0 and stats.stored == 0
