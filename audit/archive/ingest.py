"""Pull envelopes into the store, then decrypt them into typed messages.

Two stages, each idempotent:

* :func:`pull` stores every envelope of a page raw (state ``pending``, or ``failed`` when the
  item itself is unreadable) and advances the source's checkpoint to the page's largest seq,
  all in one transaction. A crash loses at most the page in flight, which the next pull
  fetches again; msgids already stored are skipped, so nothing is stored twice.
* :func:`decrypt_pending` turns pending envelopes into messages, or marks them ``failed`` with
  the reason. Failed envelopes stay and are retried by :func:`retry_failed`.

Neither stage lets one item stop the others: values are checked before they reach the database
(:mod:`audit.archive.values`), and a batch the database still refuses is bisected until the
item at fault is alone (:func:`audit.store.quarantine.isolate`); that item is marked failed
with the reason. A msgid delivered again with other content is kept as a failed *conflict*
envelope next to the first version, never dropped as a duplicate; once it can be decrypted,
its content becomes a message of its own (msgid: the conflict envelope's) that every later
stage analyses like any other, so what the second version says is not lost either
(:func:`read_conflicts`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, func, select, true, update
from sqlalchemy.orm import Session

from audit.archive.crypto import DecryptError, decrypt_data
from audit.archive.keys import KeyRing
from audit.archive.messages import (
    MessageFormatError,
    ParsedMessage,
    parse_plaintext,
    sender_kind,
)
from audit.archive.sources import ArchiveSource, ChatData, Page, unreadable
from audit.archive.values import (
    json_problem,
    repair_json,
    repair_text,
    text_problem,
    timestamp,
)
from audit.store.db import driver_datetime, insert_ignore, insert_tuples, session_scope
from audit.store.models import Checkpoint, Envelope, EnvelopeState, Message
from audit.store.quarantine import CONFLICT_PREFIX, describe, isolate, reason
from audit.store.types import utcnow

Progress = Callable[[int], None]


# --------------------------------------------------------------------------- pull


@dataclass
class PullStats:
    pages: int = 0
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    problems: int = 0
    conflicts: int = 0  # msgids delivered again with other content (stored, failed)
    checkpoint: int = 0


def get_checkpoint(session: Session, source: str) -> int:
    seq = session.scalar(select(Checkpoint.seq).where(Checkpoint.source == source))
    return seq or 0


def _advance_checkpoint(session: Session, source: str, seq: int) -> int:
    row = session.get(Checkpoint, source, with_for_update=True)
    if row is None:
        session.add(Checkpoint(source=source, seq=seq))
        return seq
    if seq > row.seq:
        row.seq = seq
    return row.seq


# Fields an envelope keeps in columns of their own; ``raw`` holds whatever else arrived.
_ENVELOPE_FIELDS = frozenset(
    ("seq", "msgid", "publickey_ver", "encrypt_random_key", "encrypt_chat_msg")
)


def _envelope_row(item: ChatData, source: str) -> dict[str, Any]:
    # A readable item is whole in the columns (the ciphertext is not stored twice); an
    # unreadable one keeps everything as it came, since its columns are placeholders.
    raw = (
        item.raw
        if item.problem
        else {k: v for k, v in item.raw.items() if k not in _ENVELOPE_FIELDS}
    )
    return {
        "source": source,
        "seq": item.seq,
        "msgid": item.msgid,
        "publickey_ver": item.publickey_ver,
        "encrypt_random_key": item.encrypt_random_key,
        "encrypt_chat_msg": item.encrypt_chat_msg,
        "raw": raw,
        "state": EnvelopeState.FAILED if item.problem else EnvelopeState.PENDING,
        "error": reason(item.problem) if item.problem else None,
        "attempts": 0,
        "received_at": utcnow(),
    }


ENVELOPE_COLUMNS = (
    "source", "seq", "msgid", "publickey_ver", "encrypt_random_key", "encrypt_chat_msg", "raw",
    "state", "error", "attempts", "received_at",
)  # fmt: skip


def _insert_envelopes(session: Session, rows: list[dict[str, Any]]) -> None:
    """The pull's bulk INSERT (hot path: straight to the driver, duplicates skipped)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):  # pragma: no cover
        insert_ignore(session, Envelope, rows)
        return
    params = [
        (
            r["source"], r["seq"], r["msgid"], r["publickey_ver"], r["encrypt_random_key"],
            r["encrypt_chat_msg"], _dumps(r["raw"]), str(r["state"]), r["error"], 0,
            driver_datetime(dialect, r["received_at"]),
        )
        for r in rows
    ]  # fmt: skip
    insert_tuples(session, "envelopes", ENVELOPE_COLUMNS, params, jsonb=("raw",))


# In the ``raw`` of a decrypted envelope whose ciphertext was purged (audit.archive.purge):
# the digest of the item it was, which a re-delivery must still match to be a duplicate.
PURGED = "~purged"


def envelope_item(envelope: Envelope) -> dict[str, Any]:
    """The chatdata item as it was received, rebuilt from a stored envelope (without its
    ciphertext once that was purged: :func:`stored_digest` still knows the item)."""
    if envelope.error and not envelope.encrypt_chat_msg:
        return dict(envelope.raw)
    return {
        "seq": envelope.seq,
        "msgid": envelope.msgid,
        "publickey_ver": envelope.publickey_ver,
        "encrypt_random_key": envelope.encrypt_random_key,
        "encrypt_chat_msg": envelope.encrypt_chat_msg,
        **{k: v for k, v in envelope.raw.items() if k != PURGED},
    }


def content_digest(item: dict[str, Any]) -> str:
    """The digest of what must match for a re-delivery to be a plain duplicate."""
    return hashlib.sha256(_content(item).encode("utf-8")).hexdigest()


def stored_digest(envelope: Envelope) -> str:
    """:func:`content_digest` of the item a stored envelope holds, purged or not."""
    purged = envelope.raw.get(PURGED) if isinstance(envelope.raw, dict) else None
    if isinstance(purged, dict) and isinstance(purged.get("sha256"), str):
        return str(purged["sha256"])
    return content_digest(envelope_item(envelope))


# the ``where`` of conflict envelopes, whose synthetic msgids start with CONFLICT_PREFIX
CONFLICT = "conflict"


def _content(item: dict[str, Any]) -> str:
    """What must match for a re-delivery to be a plain duplicate: all but the seq.

    Keys sorted at every level: PostgreSQL's jsonb gives stored objects back in its own order.
    """
    rest = {k: v for k, v in item.items() if k != "seq"}
    return json.dumps(rest, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _conflict(item: ChatData, first_seq: int, first_source: str) -> ChatData:
    """A second version of a msgid, kept as a failed envelope next to the first."""
    why = (
        f"msgid {item.msgid!r} delivered again with different content "
        f"(first version: {first_source} seq {first_seq}; this one: seq {item.seq})"
    )
    payload = f"{item.msgid}\n{_content(item.raw)}"
    return unreadable(item.seq, CONFLICT, payload, item.raw, why)


def _deliveries(session: Session, source: str, items: Sequence[ChatData]) -> list[ChatData]:
    """The page's items worth storing: first deliveries of a msgid, and conflicts.

    Each delivery is compared with the version stored first: in the database, or earlier in
    this page.
    """
    first: dict[str, tuple[str, int, str]] = {
        e.msgid: (stored_digest(e), e.seq, e.source)
        for e in session.scalars(
            select(Envelope).where(Envelope.msgid.in_(list({i.msgid for i in items})))
        )
    }
    kept: list[ChatData] = []
    for item in items:
        seen = first.get(item.msgid)
        if seen is None:
            first[item.msgid] = (content_digest(item.raw), item.seq, source)
            kept.append(item)
        elif seen[0] != content_digest(item.raw):
            kept.append(_conflict(item, seen[1], seen[2]))
    return kept


def _is_conflict(item: ChatData) -> bool:
    return item.msgid.startswith(CONFLICT_PREFIX)


def store_page(
    session: Session, source: str, page: Page, jobs: list[Job] | None = None
) -> tuple[int, int, int, int]:
    """Store a page and advance the checkpoint; returns (stored, duplicates, problems,
    conflicts).

    With ``jobs``, the newly stored envelopes that can be decrypted are appended to it.
    """
    candidates = _deliveries(session, source, page.items)
    # first deliveries are new by construction; a conflict may have been stored before
    conflicting = [i.msgid for i in candidates if _is_conflict(i)]
    existing = (
        set(session.scalars(select(Envelope.msgid).where(Envelope.msgid.in_(conflicting))))
        if conflicting
        else set()
    )
    unique: dict[str, ChatData] = {}
    for item in candidates:
        if item.msgid not in existing:
            unique.setdefault(item.msgid, item)  # the same conflict twice in one page
    fresh = list(unique.values())
    _insert_envelopes(session, [_envelope_row(i, source) for i in fresh])
    good_seqs = [i.seq for i in page.items]
    if good_seqs:
        _advance_checkpoint(session, source, max(good_seqs))
    conflicts = sum(1 for i in fresh if _is_conflict(i))
    problems = sum(1 for i in fresh if i.problem) - conflicts
    if jobs is not None:
        ready = {i.msgid: i for i in fresh if not i.problem}
        if ready:
            ids = session.execute(
                select(Envelope.msgid, Envelope.id).where(
                    Envelope.msgid.in_(list(ready)), Envelope.state == EnvelopeState.PENDING
                )
            ).all()
            for msgid, env_id in sorted(ids, key=lambda r: r[1]):
                i = ready[msgid]
                jobs.append(
                    (
                        env_id,
                        msgid,
                        i.seq,
                        i.publickey_ver,
                        i.encrypt_random_key,
                        i.encrypt_chat_msg,
                    )
                )
    return len(fresh), len(page.items) - len(fresh), problems, conflicts


def pull(
    engine: Engine,
    source: ArchiveSource,
    limit: int = 1000,
    progress: Progress | None = None,
    max_pages: int | None = None,
    stop: Callable[[], bool] | None = None,
    on_stored: Callable[[list[Job]], None] | None = None,
) -> PullStats:
    """Store the source's pages after the checkpoint, one transaction per page.

    ``stop`` is asked between pages, so a shutdown request never cuts a page in two.
    ``on_stored`` receives each committed page's new envelopes (to decrypt them meanwhile).
    """
    stats = PullStats()
    with session_scope(engine) as session:
        start = get_checkpoint(session, source.name)
    stats.checkpoint = start
    for page in source.pages(start, limit):
        jobs: list[Job] | None = [] if on_stored else None
        with session_scope(engine) as session:
            stored, dups, problems, conflicts = store_page(session, source.name, page, jobs)
            stats.checkpoint = get_checkpoint(session, source.name)
        if on_stored and jobs:
            on_stored(jobs)
        stats.pages += 1
        stats.received += len(page.items)
        stats.stored += stored
        stats.duplicates += dups
        stats.problems += problems
        stats.conflicts += conflicts
        if progress:
            progress(len(page.items))
        if max_pages is not None and stats.pages >= max_pages:
            break
        if stop is not None and stop():
            break
    return stats


# --------------------------------------------------------------------------- decrypt


@dataclass
class DecryptStats:
    decrypted: int = 0
    failed: int = 0
    recalls_linked: int = 0
    conflicts_read: int = 0  # second versions of a msgid decrypted into messages of their own


# An envelope to decrypt: (envelope id, msgid, seq, publickey_ver, random key, chat msg)
Job = tuple[int, str, int, int, str, str]
# (envelope id, message row or None, error or None)
Outcome = tuple[int, dict[str, Any] | None, str | None]

_WORKER_KEYS: KeyRing | None = None


def _init_worker(pems: dict[int, bytes]) -> None:
    global _WORKER_KEYS
    _WORKER_KEYS = KeyRing(
        {
            v: serialization.load_pem_private_key(p, password=None)  # type: ignore[misc]
            for v, p in pems.items()
        }
    )


def _decrypt_jobs(jobs: Sequence[Job]) -> list[Outcome]:
    assert _WORKER_KEYS is not None
    return [decrypt_one(_WORKER_KEYS, job) for job in jobs]


def decrypt_one(
    keys: KeyRing, job: Job, decrypt: Callable[[str, str], bytes] = decrypt_data
) -> Outcome:
    """Decrypt and parse one envelope into a ``messages`` row, or say why not.

    ``decrypt`` is DecryptData: ours by default, the official SDK's for the sdk decryptor.
    Never raises: whatever goes wrong with one envelope is its own failure.
    """
    try:
        return _decrypt_one(keys, job, decrypt)
    except Exception as exc:  # an unforeseen poison item must not take its batch along
        return job[0], None, reason(f"decrypt stage failed on this message: {describe(exc)}")


# Columns a decrypted message fills, with their VARCHAR lengths.
_FIELD_LIMITS = {"from": 128, "roomid": 128, "msgtype": 64, "revoke.pre_msgid": 255}


def _field_problem(parsed: ParsedMessage) -> str | None:
    """Why an identifier of the message cannot be stored (None when all can)."""
    values = {
        "from": parsed.sender,
        "roomid": parsed.roomid,
        "msgtype": parsed.msgtype,
        "revoke.pre_msgid": parsed.recall_of or "",
    }
    for name, value in values.items():
        why = text_problem(value, _FIELD_LIMITS[name])
        if why:
            return f"field {name!r} {why}"
    for i, userid in enumerate(parsed.tolist):
        # tolist entries name conversation threads, which are VARCHAR(300) of two userids
        why = text_problem(userid, 128)
        if why:
            return f"field 'tolist'[{i}] {why}"
    return None


def _decrypt_one(keys: KeyRing, job: Job, decrypt: Callable[[str, str], bytes]) -> Outcome:
    env_id, msgid, seq, ver, erk, ecm = job
    try:
        random_key = keys.random_key(ver, erk)
        plaintext = decrypt(random_key, ecm)
        parsed = parse_plaintext(plaintext)
        msgtime = timestamp(parsed.msgtime_ms)
        # the walk that rebuilds the JSON only when a check finds something to repair
        raw, raw_repairs = (
            (parsed.raw, 0) if json_problem(parsed.raw) is None else repair_json(parsed.raw)
        )
    except DecryptError as exc:
        return env_id, None, reason(str(exc))
    except (MessageFormatError, ValueError) as exc:
        return env_id, None, reason(f"decrypted data is not a valid message: {exc}")
    if parsed.msgid != msgid:
        return env_id, None, f"decrypted msgid {parsed.msgid!r} does not match the envelope's"
    bad_field = _field_problem(parsed)
    if bad_field:
        return env_id, None, f"decrypted message cannot be stored: {bad_field}"
    # Customers type the text: NUL or a lone surrogate is kept as U+FFFD, and said so.
    text, text_repairs = repair_text(parsed.text)
    repairs = []
    if text_repairs:
        repairs.append(f"text: {text_repairs} NUL/lone surrogate -> U+FFFD")
    if raw_repairs:
        repairs.append(f"raw: {raw_repairs} NUL/lone surrogate -> U+FFFD, NaN/Infinity -> text")
    plain = plaintext.decode("utf-8")
    row = {
        "envelope_id": env_id,
        "msgid": parsed.msgid,
        "seq": seq,
        "action": parsed.action,
        "msgtype": parsed.msgtype,
        "sender": parsed.sender,
        "sender_kind": sender_kind(parsed.sender),
        "roomid": parsed.roomid,
        "msgtime": msgtime,
        "text": text,
        "recalled": False,
        "recall_of": parsed.recall_of,
        # JSON serialized here, in the worker, so the writer neither unpickles nor encodes
        # nested objects: the plaintext is the message's JSON already, unless it holds raw
        # control characters or had to be repaired
        "raw_json": plain if not raw_repairs and not _CONTROL.search(plain) else _dumps(raw),
        "tolist_json": _dumps(list(parsed.tolist)),
        "repairs": "; ".join(repairs) or None,
    }
    return env_id, row, None


_CONTROL = re.compile(r"[\x00-\x1f]")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_MESSAGE_COLUMNS = (
    "envelope_id", "msgid", "seq", "action", "msgtype", "sender", "sender_kind", "tolist",
    "roomid", "msgtime", "text", "raw", "recalled", "recall_of", "consent_withheld", "repairs",
)  # fmt: skip


def insert_messages(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """The decrypt stage's bulk INSERT, skipping msgids already stored.

    The hot path of ingestion: rows go to the driver as tuples with their JSON already
    serialized by the workers, instead of through the ORM's per-value processing.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):  # pragma: no cover - only the two are supported
        insert_ignore(session, Message, [_orm_row(r) for r in rows])
        return
    false: Any = 0 if dialect == "sqlite" else False
    params = [
        (
            r["envelope_id"], r["msgid"], r["seq"], r["action"], r["msgtype"], r["sender"],
            str(r["sender_kind"]), r["tolist_json"], r["roomid"],
            driver_datetime(dialect, r["msgtime"]), r["text"],
            r["raw_json"], false, r["recall_of"], false, r.get("repairs"),
        )
        for r in rows
    ]  # fmt: skip
    insert_tuples(session, "messages", _MESSAGE_COLUMNS, params, jsonb=("tolist", "raw"))


def _orm_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("raw_json", "tolist_json")}
    out["raw"] = json.loads(row["raw_json"], strict=False)
    out["tolist"] = json.loads(row["tolist_json"])
    return out


def _chunks(seq: Sequence[Job], n: int) -> Iterator[Sequence[Job]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class DecryptorLike(Protocol):
    """What the decrypt stage needs: ours (:class:`Decryptor`) or the SDK's."""

    def start(self, jobs: Sequence[Job]) -> Callable[[], list[Outcome]]: ...

    def run(self, jobs: Sequence[Job]) -> list[Outcome]: ...

    def __enter__(self) -> DecryptorLike: ...

    def __exit__(self, *exc: object) -> None: ...


class Decryptor:
    """Decrypts batches of envelopes, in worker processes when there is enough work."""

    def __init__(self, keys: KeyRing, workers: int = 0) -> None:
        self.keys = keys
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Decryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            pems = {
                v: k.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                for v, k in self.keys.keys.items()
            }
            self._pool = ProcessPoolExecutor(
                self.workers, initializer=_init_worker, initargs=(pems,)
            )
        return self._pool

    def run(self, jobs: Sequence[Job]) -> list[Outcome]:
        return self.start(jobs)()

    def start(self, jobs: Sequence[Job]) -> Callable[[], list[Outcome]]:
        """Begin decrypting ``jobs``; the returned function waits for the outcomes.

        With worker processes the work runs while the caller does something else (the
        pipeline writes the previous batch meanwhile); in-process it runs when awaited.
        """
        if self.workers <= 1 or len(jobs) < 200:
            return lambda: [decrypt_one(self.keys, job) for job in jobs]
        size = max(50, len(jobs) // (self.workers * 4))
        futures = [self._get_pool().submit(_decrypt_jobs, part) for part in _chunks(jobs, size)]
        return lambda: [outcome for f in futures for outcome in f.result()]


def _link_recalls(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Mark recalled messages, whichever of the pair was stored first."""
    linked = 0
    for row in rows:
        if row["recall_of"]:
            res = session.execute(
                update(Message)
                .where(Message.msgid == row["recall_of"])
                .values(recalled=True, recalled_by=row["msgid"])
            )
            linked += res.rowcount or 0  # type: ignore[attr-defined]
    new_ids = [r["msgid"] for r in rows if r["action"] != "recall"]
    if new_ids:
        for recall_msgid, target in session.execute(
            select(Message.msgid, Message.recall_of).where(Message.recall_of.in_(new_ids))
        ):
            res = session.execute(
                update(Message)
                .where(Message.msgid == target)
                .values(recalled=True, recalled_by=recall_msgid)
            )
            linked += res.rowcount or 0  # type: ignore[attr-defined]
    return linked


def decrypt_pending(
    engine: Engine,
    decryptor: DecryptorLike,
    batch_size: int = 2000,
    progress: Progress | None = None,
    id_range: tuple[int, int] | None = None,
) -> DecryptStats:
    """Decrypt the pending envelopes, or those with ``lo < id <= hi`` of ``id_range`` (one
    task's share when the work is spread over workers: :mod:`audit.cluster`)."""
    stats = DecryptStats()
    lo, hi = id_range or (0, None)

    def fetch(after_id: int) -> list[Job]:
        with session_scope(engine) as session:
            return [
                (r.id, r.msgid, r.seq, r.publickey_ver, r.encrypt_random_key, r.encrypt_chat_msg)
                for r in session.execute(
                    select(
                        Envelope.id,
                        Envelope.msgid,
                        Envelope.seq,
                        Envelope.publickey_ver,
                        Envelope.encrypt_random_key,
                        Envelope.encrypt_chat_msg,
                    )
                    .where(Envelope.state == EnvelopeState.PENDING, Envelope.id > after_id)
                    .where(Envelope.id <= hi if hi is not None else true())
                    .order_by(Envelope.id)
                    .limit(batch_size)
                )
            ]

    jobs = fetch(lo)
    waiting = decryptor.start(jobs) if jobs else None
    while waiting is not None:
        outcomes = waiting()
        # start the next batch before writing this one, so decryption and writes overlap
        jobs = fetch(jobs[-1][0])
        waiting = decryptor.start(jobs) if jobs else None
        write_outcomes(engine, outcomes, stats)
        if progress:
            progress(len(outcomes))
    read_conflicts(engine, decryptor, stats)
    return stats


# what a conflict envelope's error says of its content, after the conflict itself
_CONTENT = " | content: "


def read_conflicts(engine: Engine, decryptor: DecryptorLike, stats: DecryptStats) -> None:
    """Decrypt the conflict envelopes not read yet into messages of their own.

    The message's msgid is the conflict envelope's (``!bad:conflict:...``), so it sits beside
    the first version and is placed, scanned, scored and alerted on like any message; the
    envelope stays failed (``audit failures`` lists it, ``audit status`` counts it) and its
    error says where the content went, or why it cannot be read yet (a key not configured:
    tried again on every run). The second version's recall, if it is one, is not linked: the
    first version says what was recalled.
    """
    with session_scope(engine) as session:
        pending = session.execute(
            select(Envelope.id, Envelope.msgid, Envelope.seq, Envelope.raw, Envelope.error)
            .where(
                Envelope.state == EnvelopeState.FAILED,
                Envelope.msgid.startswith(CONFLICT_PREFIX, autoescape=True),
                ~select(Message.id).where(Message.msgid == Envelope.msgid).exists(),
            )
            .order_by(Envelope.id)
        ).all()
    if not pending:
        return
    jobs: list[Job] = []
    names: dict[int, tuple[str, str]] = {}  # envelope id: (conflict msgid, its error so far)
    for env_id, msgid, seq, raw, error in pending:
        names[env_id] = (msgid, (error or "").split(_CONTENT)[0])
        item = raw if isinstance(raw, dict) else {}
        fields = (item.get(k) for k in _CIPHER_FIELDS)
        original, ver, key, chat = fields
        if (
            isinstance(original, str)
            and isinstance(ver, int)
            and isinstance(key, str)
            and isinstance(chat, str)
            and key
            and chat
        ):
            jobs.append((env_id, original, seq, ver, key, chat))
    outcomes = decryptor.run(jobs) if jobs else []

    def attempt(part: Sequence[Outcome]) -> None:
        with session_scope(engine) as session:
            rows = [{**row, "msgid": names[env_id][0]} for env_id, row, _ in part if row]
            insert_messages(session, rows)
            for env_id, row, error in part:
                msgid, conflict = names[env_id]
                told = f"analysed as message {msgid}" if row else f"not readable yet: {error}"
                session.execute(
                    update(Envelope)
                    .where(Envelope.id == env_id)
                    .values(error=reason(conflict + _CONTENT + told))
                )
        stats.conflicts_read += sum(1 for _, row, _ in part if row)

    refused = isolate(outcomes, attempt)
    if refused:
        attempt([(o[0], None, f"its message cannot be stored: {why}") for o, why in refused])


_CIPHER_FIELDS = ("msgid", "publickey_ver", "encrypt_random_key", "encrypt_chat_msg")


def write_outcomes(engine: Engine, outcomes: Sequence[Outcome], stats: DecryptStats) -> None:
    """Messages in, envelopes marked, recalls linked: one transaction per batch.

    A batch the database refuses is bisected; an envelope whose message cannot be stored on
    its own is marked failed with the database's reason, and the rest are written.
    """

    def attempt(part: Sequence[Outcome]) -> None:
        with session_scope(engine) as session:
            rows = [row for _, row, _ in part if row is not None]
            insert_messages(session, rows)
            _mark_envelopes(session, part)
            linked = _link_recalls(session, rows)
        stats.recalls_linked += linked
        stats.decrypted += len(rows)
        stats.failed += len(part) - len(rows)

    refused = isolate(outcomes, attempt)
    if refused:
        attempt([(o[0], None, f"message cannot be stored: {why}") for o, why in refused])


class DecryptStream:
    """Decrypts envelopes as the pull stores them, so pulling and decrypting overlap.

    ``feed`` starts a batch and writes the oldest finished ones, keeping a few in flight;
    ``finish`` writes the rest. Whatever a crash leaves pending, :func:`decrypt_pending`
    picks up on the next run.
    """

    def __init__(
        self,
        engine: Engine,
        decryptor: DecryptorLike,
        progress: Progress | None = None,
        in_flight: int = 2,
    ) -> None:
        self.engine, self.decryptor, self.progress = engine, decryptor, progress
        self.in_flight = in_flight
        self.stats = DecryptStats()
        self._waiting: deque[Callable[[], list[Outcome]]] = deque()

    def feed(self, jobs: list[Job]) -> None:
        self._waiting.append(self.decryptor.start(jobs))
        while len(self._waiting) > self.in_flight:
            self._write(self._waiting.popleft()())

    def finish(self) -> DecryptStats:
        while self._waiting:
            self._write(self._waiting.popleft()())
        return self.stats

    def _write(self, outcomes: list[Outcome]) -> None:
        write_outcomes(self.engine, outcomes, self.stats)
        if self.progress:
            self.progress(len(outcomes))


def _mark_envelopes(session: Session, outcomes: Sequence[Outcome]) -> None:
    ok = [env_id for env_id, row, _ in outcomes if row is not None]
    if ok:
        session.execute(
            update(Envelope)
            .where(Envelope.id.in_(ok))
            .values(
                state=EnvelopeState.DECRYPTED,
                error=None,
                attempts=Envelope.attempts + 1,
                decrypted_at=utcnow(),
            )
        )
    for env_id, row, error in outcomes:
        if row is None:
            session.execute(
                update(Envelope)
                .where(Envelope.id == env_id)
                .values(
                    state=EnvelopeState.FAILED,
                    error=reason(error or "failed"),
                    attempts=Envelope.attempts + 1,
                )
            )


def retry_failed(engine: Engine, msgids: Sequence[str] | None = None) -> int:
    """Put failed envelopes that carry ciphertext back to pending; returns how many."""
    with session_scope(engine) as session:
        stmt = update(Envelope).where(
            Envelope.state == EnvelopeState.FAILED, Envelope.encrypt_chat_msg != ""
        )
        if msgids:
            stmt = stmt.where(Envelope.msgid.in_(list(msgids)))
        result = session.execute(stmt.values(state=EnvelopeState.PENDING))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def envelope_counts(session: Session) -> dict[str, int]:
    counts = {s.value: 0 for s in EnvelopeState}
    for state, n in session.execute(select(Envelope.state, func.count()).group_by(Envelope.state)):
        counts[EnvelopeState(state).value] = n
    return counts
