"""Pull and decrypt against real databases: nothing lost, nothing stored twice."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

from simfixtures import SimArchive
from sqlalchemy import Engine, func, select

from audit.archive import simulator
from audit.archive.crypto import decrypt_data
from audit.archive.ingest import Decryptor, decrypt_pending, envelope_item, pull, retry_failed
from audit.archive.keys import KeyRing, load_private_key
from audit.archive.messages import parse_plaintext
from audit.archive.simulator.chats import generate_messages
from audit.archive.simulator.wire import PublicKey, encrypt_item, seeded_rsa_key
from audit.archive.simulator.world import build_world
from audit.archive.sources import FileSource, SimulatedServer
from audit.config import SimulatorConfig
from audit.reports.status import status
from audit.store.db import session_scope
from audit.store.models import Checkpoint, Envelope, EnvelopeState, Message


def _keys(sim: SimArchive) -> KeyRing:
    return KeyRing.from_files(simulator.key_files(sim.directory))


def _ingest(engine: Engine, sim: SimArchive, limit: int = 500, **kw: Any) -> Any:
    stats = pull(engine, SimulatedServer(sim.directory), limit, **kw)
    with Decryptor(_keys(sim), workers=1) as dec:
        return stats, decrypt_pending(engine, dec)


def _status(engine: Engine) -> dict[str, Any]:
    with session_scope(engine) as session:
        return status(session)


def test_every_msgtype_of_the_simulator_decrypts_with_our_decryptor() -> None:
    cfg = SimulatorConfig(messages=40_000, key_bits=1024)
    rng = random.Random(cfg.seed)
    world = build_world(cfg, rng)
    first: dict[str, dict[str, Any]] = {}
    for sim in generate_messages(world, cfg, rng):
        kind = "switch" if sim.plain.get("action") == "switch" else sim.plain["msgtype"]
        first.setdefault(kind, sim.plain)
    key = seeded_rsa_key(1024, random.Random(1))
    ring = KeyRing({3: key})
    crypt = random.Random(2)
    assert len(first) >= 33  # 30 table types + switch + 2 unknown
    for kind, plain in first.items():
        item = encrypt_item(plain, 100, 3, PublicKey.of(key), crypt)
        random_key = ring.random_key(3, item["encrypt_random_key"])
        plaintext = decrypt_data(random_key, item["encrypt_chat_msg"])
        assert json.loads(plaintext) == plain, kind
        assert parse_plaintext(plaintext).msgid == plain["msgid"]


def test_same_seed_gives_byte_identical_archive(tmp_path: Path) -> None:
    cfg = SimulatorConfig(messages=300, stores=2, days=1, key_bits=1024, seed=5)
    a = simulator.simulate(cfg, tmp_path / "a")
    b = simulator.simulate(cfg, tmp_path / "b")
    assert (a.directory / "archive.jsonl").read_bytes() == (
        b.directory / "archive.jsonl"
    ).read_bytes()
    assert (a.directory / "keys/v1.pem").read_bytes() == (b.directory / "keys/v1.pem").read_bytes()
    c = simulator.simulate(cfg.model_copy(update={"seed": 6}), tmp_path / "c")
    assert (c.directory / "archive.jsonl").read_bytes() != (
        a.directory / "archive.jsonl"
    ).read_bytes()


def test_key_rotates_mid_archive(sim_archive: SimArchive) -> None:
    versions = [item["publickey_ver"] for item in sim_archive.items()]
    assert versions[0] == 1 and versions[-1] == 2
    assert versions == sorted(versions)  # one rotation, never back


def test_pull_stores_every_envelope_and_decrypts_it(
    engine: Engine, sim_archive: SimArchive
) -> None:
    pulled, dec = _ingest(engine, sim_archive)
    manifest = sim_archive.manifest
    assert pulled.received == manifest["items"]
    assert pulled.duplicates == manifest["duplicates"] > 0
    assert dec.decrypted == manifest["messages"] and dec.failed == 0
    st = _status(engine)
    assert st["envelopes"] == {
        "total": manifest["messages"],
        "pending": 0,
        "decrypted": manifest["messages"],
        "failed": 0,
    }
    assert st["messages"]["by_type"] == manifest["by_type"]
    assert st["checkpoints"] == {"simulator": manifest["last_seq"]}
    with session_scope(engine) as session:
        stored = set(session.scalars(select(Message.msgid)))
        # the raw envelope is kept: each item comes back exactly as the archive delivered it
        kept = {e.msgid: envelope_item(e) for e in session.scalars(select(Envelope))}
    assert stored == sim_archive.msgids()
    first_delivery: dict[str, Any] = {}
    for item in sim_archive.items():
        first_delivery.setdefault(item["msgid"], item)
    assert kept == first_delivery


def test_re_pull_stores_nothing_twice(engine: Engine, sim_archive: SimArchive) -> None:
    _ingest(engine, sim_archive)
    before = _status(engine)
    again, dec = _ingest(engine, sim_archive)
    assert again.received == 0 and again.stored == 0
    assert dec.decrypted == 0
    assert _status(engine) == before


def test_interrupted_pull_resumes_where_it_stopped(engine: Engine, sim_archive: SimArchive) -> None:
    first = pull(engine, SimulatedServer(sim_archive.directory), 300, max_pages=2)
    with session_scope(engine) as session:
        max_stored = session.scalar(select(func.max(Envelope.seq)))
        checkpoint = session.get(Checkpoint, "simulator")
        assert checkpoint is not None and checkpoint.seq == max_stored == first.checkpoint
    _ingest(engine, sim_archive, limit=300)
    with session_scope(engine) as session:
        msgids = list(session.scalars(select(Envelope.msgid)))
    assert len(msgids) == len(set(msgids)) == len(sim_archive.msgids())
    assert set(msgids) == sim_archive.msgids()


def test_recalled_messages_stay_and_are_marked(engine: Engine, sim_archive: SimArchive) -> None:
    _ingest(engine, sim_archive)
    with session_scope(engine) as session:
        recalls = session.execute(
            select(Message.msgid, Message.recall_of).where(Message.action == "recall")
        ).all()
        assert recalls
        for recall_msgid, target in recalls:
            original = session.scalars(select(Message).where(Message.msgid == target)).one()
            assert original.recalled and original.recalled_by == recall_msgid


# --------------------------------------------------------------------------- bad input


def _b64_flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def _bad_archive(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    """A file archive with every kind of trouble, and the key that is missing from it."""
    rng = random.Random(9)
    k1, k2 = seeded_rsa_key(1024, rng), seeded_rsa_key(1024, rng)
    from audit.archive.keys import write_private_key

    write_private_key(k1, tmp_path / "v1.pem")
    write_private_key(k2, tmp_path / "v2.pem")

    def msg(msgid: str, msgtype: str = "text", **payload: Any) -> dict[str, Any]:
        body = payload or {"content": f"您好 {msgid}"}
        return {
            "msgid": msgid,
            "action": "send",
            "from": "staff1",
            "tolist": ["wmCUSTOMER1"],
            "roomid": "",
            "msgtime": 1763431200000,
            "msgtype": msgtype,
            msgtype: body,
        }

    good = encrypt_item(msg("good"), 1, 1, PublicKey.of(k1), rng)
    other_key = encrypt_item(msg("needs-v2"), 2, 2, PublicKey.of(k2), rng)
    short = {**encrypt_item(msg("short"), 3, 1, PublicKey.of(k1), rng), "encrypt_chat_msg": "abc"}
    corrupt = encrypt_item(msg("corrupt"), 4, 1, PublicKey.of(k1), rng)
    corrupt["encrypt_chat_msg"] = _b64_flip(corrupt["encrypt_chat_msg"], 70)
    badkey = encrypt_item(msg("badkey"), 5, 1, PublicKey.of(k1), rng)
    badkey["encrypt_random_key"] = base64.b64encode(b"\x01" * 128).decode()
    unknown = encrypt_item(msg("unknown", "hologram", shape="cube"), 6, 1, PublicKey.of(k1), rng)
    page = {"errcode": 0, "errmsg": "ok", "chatdata": [good, other_key, short]}
    lines = [
        json.dumps(page),
        json.dumps(corrupt),
        "{this is not json",
        json.dumps(badkey),
        json.dumps({**good, "seq": 7}),  # duplicate delivery of "good"
        json.dumps(unknown),
    ]
    path = tmp_path / "archive.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, {"v1": str(tmp_path / "v1.pem")}, tmp_path / "v2.pem"


def test_bad_file_archive_loads_everything_and_explains_failures(
    engine: Engine, tmp_path: Path
) -> None:
    path, _, v2 = _bad_archive(tmp_path)
    ring = KeyRing({1: load_private_key(tmp_path / "v1.pem")})
    stats = pull(engine, FileSource(path), 1000)
    assert stats.received == 8 and stats.duplicates == 1 and stats.problems == 1
    with Decryptor(ring, workers=1) as dec:
        decrypt_pending(engine, dec)
    with session_scope(engine) as session:
        rows = {e.msgid: e for e in session.scalars(select(Envelope))}
        types = {m: t for m, t in session.execute(select(Message.msgid, Message.msgtype))}
    assert rows["good"].state == EnvelopeState.DECRYPTED
    assert rows["unknown"].state == EnvelopeState.DECRYPTED and types["unknown"] == "hologram"
    assert "no private key for publickey_ver 2" in (rows["needs-v2"].error or "")
    assert "too short" in (rows["short"].error or "")
    # AES-CBC has no MAC: the flipped byte "decrypts" into altered plaintext, caught by the checks
    assert rows["corrupt"].state == EnvelopeState.FAILED
    assert any(
        why in (rows["corrupt"].error or "") for why in ("not a valid message", "does not match")
    )
    assert "RSA" in (rows["badkey"].error or "")
    (bad_line,) = [e for m, e in rows.items() if m.startswith("!bad:")]
    assert bad_line.state == EnvelopeState.FAILED
    assert "archive.jsonl:3: not JSON" in (bad_line.error or "")
    assert bad_line.raw["line"] == "{this is not json"
    st = _status(engine)
    assert st["envelopes"]["total"] == 7
    assert st["envelopes"]["failed"] == 5 and st["envelopes"]["decrypted"] == 2

    # the missing key arrives: the failed message is retried and recovered, the rest stay failed
    ring.keys[2] = load_private_key(v2)
    assert retry_failed(engine) == 4  # the unreadable line has no ciphertext to retry
    with Decryptor(ring, workers=1) as dec:
        again = decrypt_pending(engine, dec)
    assert again.decrypted == 1 and again.failed == 3
    with session_scope(engine) as session:
        env = session.scalars(select(Envelope).where(Envelope.msgid == "needs-v2")).one()
        assert env.state == EnvelopeState.DECRYPTED and env.error is None and env.attempts == 2
    st = _status(engine)
    assert st["envelopes"]["total"] == st["envelopes"]["decrypted"] + st["envelopes"]["failed"]


def test_parallel_decryption_gives_the_same_messages(
    sqlite_url: str, sim_archive: SimArchive
) -> None:
    from audit.store.db import make_engine

    engine = make_engine(sqlite_url)
    pull(engine, SimulatedServer(sim_archive.directory), 1000)
    with Decryptor(_keys(sim_archive), workers=2) as dec:
        stats = decrypt_pending(engine, dec, batch_size=1000)
    assert stats.decrypted == sim_archive.manifest["messages"] and stats.failed == 0


def test_plaintext_with_raw_control_characters_is_stored_readably(
    engine: Engine, tmp_path: Path
) -> None:
    """WeCom's JSON may carry raw control characters; the stored JSON must still parse."""
    from audit.archive.crypto import encrypt_data
    from audit.archive.keys import write_private_key

    rng = random.Random(4)
    key = seeded_rsa_key(1024, rng)
    write_private_key(key, tmp_path / "v1.pem")
    plaintext = (
        '{"msgid":"ctl","action":"send","from":"li.s001","tolist":["wmX0000000"],'
        '"roomid":"","msgtime":1763344800000,"msgtype":"text",'
        '"text":{"content":"第一行\x01\x1f\tend"}}'
    ).encode()
    rk, em = encrypt_data(plaintext, rng)
    erk = base64.b64encode(PublicKey.of(key).encrypt(rk.encode(), rng)).decode()
    item = {"seq": 1, "msgid": "ctl", "publickey_ver": 1, "encrypt_random_key": erk,
            "encrypt_chat_msg": em}  # fmt: skip
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(item) + "\n", encoding="utf-8")
    pull(engine, FileSource(path), 10)
    with Decryptor(KeyRing({1: load_private_key(tmp_path / "v1.pem")}), workers=1) as dec:
        assert decrypt_pending(engine, dec).decrypted == 1
    with session_scope(engine) as session:
        msg = session.scalars(select(Message)).one()
        assert msg.text == "第一行\x01\x1f\tend"
        assert msg.raw["text"]["content"] == "第一行\x01\x1f\tend"
        assert msg.tolist == ["wmX0000000"]
        assert msg.msgtime.isoformat() == "2025-11-17T02:00:00+00:00"
