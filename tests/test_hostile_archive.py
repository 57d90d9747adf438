"""Property: whatever the archive holds, pull -> alerts never raises, and every envelope is
accounted for (``total == decrypted + failed + pending``) on SQLite and PostgreSQL.

Hypothesis writes archive files of arbitrary items: well-formed envelopes around arbitrary
plaintexts (messages with arbitrary texts, ids, times and types, or bytes that are no message
at all), envelopes with arbitrary values in any field, binary lines, re-deliveries and
conflicting versions. Derandomized and bounded, so that it runs the same way in CI each time.
"""

from __future__ import annotations

import json
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from archive_items import MSGTIME, keyring
from archive_items import item as encrypted_item
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from audit.archive.sources import FileSource
from audit.config import load_settings
from audit.pipeline import analyse, ingest, load_scanner
from audit.reports.status import status
from audit.scan.scanner import Scanner
from audit.store.db import make_engine, session_scope
from audit.store.models import Base

pytestmark = pytest.mark.slow  # long-running: scheduled first (tests/conftest.py)

# Characters that break databases and parsers, and words that trip the scanner.
_NASTY = ["\x00", "\ud800", "\udcff", "\ufffd", "\u200b", "\n", "\\", '"', "%", "_", "'"]
_WORDS = ["加我微信", "wx123456", "13812345678", "12315", "投诉", "保证收益", "1-", "1\u200b"]
_chars = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
texts = st.lists(
    st.one_of(st.text(_chars, max_size=12), st.sampled_from(_NASTY + _WORDS)), max_size=8
).map("".join)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**20, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=8,
)
userids = st.one_of(
    st.sampled_from(["li.s001", "li.s002", "wmCUSTOMER1", "woX", "wbROBOT", ""]), texts
)


@st.composite
def plaintexts(draw: st.DrawFn, msgid: str) -> bytes:
    """Decrypted data: messages with arbitrary texts and at most one arbitrary field (so that
    most reach the later stages), sometimes any JSON or any bytes."""
    kind = draw(st.sampled_from(["message"] * 8 + ["json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    msgtype = draw(st.sampled_from(["text", "text", "chatrecord", "mixed", "link", "vote"]))
    items = st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(["ChatRecordText", "text", "chatrecord", "image"]),
                "content": st.one_of(texts, texts.map(lambda t: json.dumps({"content": t}))),
            }
        ),
        max_size=3,
    )
    payload = draw(
        st.fixed_dictionaries({"content": texts, "title": texts, "item": items, "voteitem": items})
    )
    plain: dict[str, Any] = {
        "msgid": msgid,
        "action": "send",
        "from": draw(st.sampled_from(["li.s001", "li.s002", "wmCUSTOMER1", "wmCUSTOMER2"])),
        "tolist": draw(st.sampled_from([["wmCUSTOMER1"], ["li.s001"], ["li.s002", "wmX"]])),
        "roomid": draw(st.sampled_from(["", "", "wrROOM1"])),
        "msgtime": draw(st.integers(MSGTIME, MSGTIME + 10**8)),
        "msgtype": msgtype,
        msgtype: payload,
    }
    hostile = draw(st.sampled_from([None, None, None, *plain, "agree", "switch", "recall"]))
    if hostile == "agree":
        plain |= {
            "msgtype": "agree",
            "agree": {"userid": draw(userids), "agree_time": draw(numbers)},
        }
    elif hostile == "switch":
        plain = {"msgid": msgid, "action": "switch", "user": draw(userids), "time": draw(numbers)}
    elif hostile == "recall":
        plain |= {"action": "recall", "msgtype": "revoke", "revoke": {"pre_msgid": draw(texts)}}
    elif hostile is not None:
        plain[hostile] = draw(st.one_of(json_values, userids))
    # as a sender's client writes it (escapes), now and then as raw UTF-8 (surrogates invalid)
    ascii_only = draw(st.sampled_from([True, True, True, False]))
    return json.dumps(plain, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def archive_lines(draw: st.DrawFn) -> list[bytes]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    lines: list[bytes] = []
    items: list[dict[str, Any]] = []
    for seq in range(1, draw(st.integers(1, 8)) + 1):
        kind = draw(st.sampled_from(["good"] * 6 + ["field", "binary", "again"]))
        if kind == "binary":
            lines.append(draw(st.binary(min_size=1, max_size=64)).replace(b"\n", b" ") + b"\n")
            continue
        if kind == "again" and items:
            previous = draw(st.sampled_from(items))
            if draw(st.booleans()):  # a conflicting version of the same msgid
                again = encrypted_item(seq, previous["msgid"], draw(plaintexts("x")), rng)
            else:
                again = {**previous, "seq": seq}
            items.append(again)
        else:
            msgid = f"m{seq}"
            doc = encrypted_item(seq, msgid, draw(plaintexts(msgid)), rng)
            if kind == "field":
                name = draw(
                    st.sampled_from(
                        ["seq", "msgid", "publickey_ver", "encrypt_random_key",
                         "encrypt_chat_msg", "extra"]
                    )
                )  # fmt: skip
                doc[name] = draw(json_values)
            items.append(doc)
        as_page = draw(st.booleans())
        doc = {"errcode": 0, "chatdata": [items[-1]]} if as_page else items[-1]
        lines.append(
            json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
            + b"\n"
        )
    return lines


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return load_scanner(load_settings(None, environ={}, overrides={}))


def _fresh_database(db_url: str, tmp_path: Path) -> str:
    """An empty migrated database for one example, on the fixture's backend."""
    if db_url.startswith("sqlite"):
        path = tmp_path / f"{uuid.uuid4().hex}.db"
        shutil.copy(db_url.removeprefix("sqlite:///"), path)
        return f"sqlite:///{path}"
    engine = make_engine(db_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return db_url


@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=archive_lines())
def test_any_archive_goes_through_every_stage(
    db_url: str, tmp_path: Path, scanner: Scanner, lines: list[bytes]
) -> None:
    url = _fresh_database(db_url, tmp_path)
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_bytes(b"".join(lines))
    config = load_settings(None, environ={}, overrides={"archive": {"workers": 1}})
    engine = make_engine(url)
    try:
        report = ingest(config, engine, FileSource(path), keyring())
        analyse(config, engine, scanner, report=report)
        assert report.pull is not None and report.pull.received == report.pull.stored + (
            report.pull.duplicates
        )
        with session_scope(engine) as session:
            envelopes = status(session)["envelopes"]
        assert envelopes["total"] == (
            envelopes["decrypted"] + envelopes["failed"] + envelopes["pending"]
        )
        assert envelopes["pending"] == 0  # everything was tried
        assert envelopes["total"] == report.pull.stored
    finally:
        engine.dispose()
        path.unlink()
