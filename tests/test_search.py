"""Search over the chain of ``seed_chain.py``, on SQLite (FTS5) and PostgreSQL (pg_trgm).

Messages: m1 我的电话13800138000 (南京路店), m2 好的, m3 加我微信，保证100%返现, m4 在吗,
m5 你有病吧 (南京路店), m6 我要打12315投诉, m7 您别着急 (徐家汇店), m8 有赌博网站吗 (no
conversation). Follows added here: 张伟 (南京路店) follows 客户0 (remark with a phone number)
and 客户1; 李娜 (徐家汇店) follows 客户2.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, func, select, text, update

from audit.archive.ingest import ENVELOPE_COLUMNS, insert_messages
from audit.search import (
    COUNT_CAP,
    SearchError,
    search_customers,
    search_messages,
    search_staff,
)
from audit.store.access import AccessDenied, Principal, pseudonym
from audit.store.db import (
    ROWS_PER_STATEMENT,
    insert_tuples,
    make_engine,
    migrate,
    session_scope,
)
from audit.store.models import Customer, Follow, Message, Role, Staff


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    chain = seed_chain(engine)
    with session_scope(engine) as s:
        staff = {x.userid: x.id for x in s.scalars(select(Staff))}
        cust = {c.external_userid: c.id for c in s.scalars(select(Customer))}
        s.add_all(
            [
                Follow(
                    staff_id=staff["zhangwei"],
                    customer_id=cust["wmcust0"],
                    remark="老客户 13800138000",
                ),
                Follow(staff_id=staff["zhangwei"], customer_id=cust["wmcust1"], remark=""),
                Follow(staff_id=staff["lina"], customer_id=cust["wmcust2"], remark="李先生 5G"),
            ]
        )
    return chain


def _who(role: Role, units: tuple[int, ...] | None = None) -> Principal:
    # a named user (user_id): only named users may see personal data unmasked
    return Principal(user_id=1, username=role.value, role=role, unit_ids=units)


COMPLIANCE = _who(Role.COMPLIANCE)


def _texts(engine: Engine, who: Principal, keyword: str) -> list[str]:
    return list(search_messages(engine, who, keyword).rows["excerpt"])


def test_a_keyword_finds_its_messages_newest_first(engine: Engine, seeded: Seeded):
    result = search_messages(engine, COMPLIANCE, "12315投诉")
    assert list(result.rows["excerpt"]) == ["我要打12315投诉"]
    assert list(result.rows["store"]) == ["徐家汇店"]
    assert (result.total, result.indexed) == (1, True)
    # 好的 and 您别着急 are both in conversations; the newest (highest id) comes first
    assert _texts(engine, COMPLIANCE, "着急") == ["您别着急"]
    assert _texts(engine, COMPLIANCE, "我") == [
        "我要打12315投诉",
        "加我微信，保证100%返现",
        "我的电话13800138000",
    ]


def test_a_short_keyword_is_scanned_with_the_same_result(engine: Engine, seeded: Seeded):
    result = search_messages(engine, COMPLIANCE, "好的")
    assert (list(result.rows["excerpt"]), result.indexed) == (["好的"], False)


def test_wildcards_in_the_keyword_are_literal(engine: Engine, seeded: Seeded):
    assert _texts(engine, COMPLIANCE, "0%") == ["加我微信，保证100%返现"]
    assert _texts(engine, COMPLIANCE, "100%返") == ["加我微信，保证100%返现"]
    assert _texts(engine, COMPLIANCE, "1_0") == []
    assert _texts(engine, COMPLIANCE, '"微信') == []


def test_ascii_case_is_ignored(engine: Engine, seeded: Seeded):
    with session_scope(engine) as s:
        s.execute(update(Message).where(Message.text == "在吗").values(text="在吗 iPhone 有货吗"))
    assert _texts(engine, COMPLIANCE, "IPHONE") == ["在吗 iPhone 有货吗"]
    assert _texts(engine, COMPLIANCE, "在吗") == ["在吗 iPhone 有货吗"]  # the old text is gone


def test_supervisors_find_only_their_stores_and_see_numbers_masked(engine: Engine, seeded: Seeded):
    nanjing = _who(Role.SUPERVISOR, (seeded.nanjing,))
    xujiahui = _who(Role.SUPERVISOR, (seeded.xujiahui,))
    assert _texts(engine, nanjing, "12315投诉") == []
    assert _texts(engine, xujiahui, "12315投诉") == ["我要打12315投诉"]
    assert _texts(engine, nanjing, "13800138000") == ["我的电话[手机号]"]
    assert _texts(engine, COMPLIANCE, "13800138000") == ["我的电话13800138000"]
    # a message not yet in a conversation is seen by the roles that see every store only
    assert _texts(engine, nanjing, "赌博网站") == []
    assert _texts(engine, COMPLIANCE, "赌博网站") == ["有赌博网站吗"]


def test_roles_without_message_text_cannot_search_messages(engine: Engine, seeded: Seeded):
    for role in (Role.ANALYST, Role.VIEWER):
        with pytest.raises(AccessDenied):
            search_messages(engine, _who(role), "投诉")


def test_an_empty_or_overlong_keyword_is_refused(engine: Engine, seeded: Seeded):
    with pytest.raises(SearchError, match="enter a keyword"):
        search_messages(engine, COMPLIANCE, "   ")
    with pytest.raises(SearchError, match="too long"):
        search_messages(engine, COMPLIANCE, "词" * 101)


def test_the_total_is_counted_past_the_page_up_to_the_cap(engine: Engine, seeded: Seeded):
    result = search_messages(engine, COMPLIANCE, "我", limit=1)
    assert (len(result.rows), result.total, result.total_label) == (1, 3, "3")
    assert COUNT_CAP == 1_000


def test_customers_by_name_remark_or_phone(engine: Engine, seeded: Seeded):
    by_name = search_customers(engine, COMPLIANCE, "客户0").rows
    assert by_name.to_dict("records") == [
        {
            "customer_id": int(by_name["customer_id"].iloc[0]),
            "customer": "客户0",
            "remark": "老客户 13800138000",
            "channel": "",
            "staff": "张伟",
            "store": "南京路店",
        }
    ]
    assert list(search_customers(engine, COMPLIANCE, "李先生").rows["customer"]) == ["客户2"]
    nanjing = _who(Role.SUPERVISOR, (seeded.nanjing,))
    by_phone = search_customers(engine, nanjing, "138-0013-8000").rows
    assert list(by_phone["customer"]) == ["客户0"]
    assert list(by_phone["remark"]) == ["老客户 [手机号]"]  # matched, never shown raw
    assert search_customers(engine, nanjing, "客户2").rows.empty  # another store's customer
    assert list(search_customers(engine, COMPLIANCE, "客户").rows["customer"]) == [
        "客户0",
        "客户1",
        "客户2",
    ]


def test_pseudonym_roles_find_people_by_pseudonym_only(engine: Engine, seeded: Seeded):
    analyst = _who(Role.ANALYST)
    with session_scope(engine) as s:
        cust0 = s.scalar(select(Customer.id).where(Customer.external_userid == "wmcust0"))
        zhang = s.scalar(select(Staff.id).where(Staff.userid == "zhangwei"))
    assert search_customers(engine, analyst, "客户0").rows.empty  # names do not match
    rows = search_customers(engine, analyst, pseudonym("customer", cust0)).rows
    assert rows[["customer", "remark", "staff"]].to_dict("records") == [
        {
            "customer": pseudonym("customer", cust0),
            "remark": "",
            "staff": pseudonym("staff", zhang),
        }
    ]
    assert search_staff(engine, analyst, "张伟").rows.empty
    staff = search_staff(engine, analyst, pseudonym("staff", zhang)).rows
    assert staff[["staff", "userid", "store"]].to_dict("records") == [
        {"staff": pseudonym("staff", zhang), "userid": "", "store": "南京路店"}
    ]
    with pytest.raises(AccessDenied):
        search_staff(engine, _who(Role.VIEWER), "张")


def test_staff_by_name_or_id_in_scope(engine: Engine, seeded: Seeded):
    assert list(search_staff(engine, COMPLIANCE, "zhang").rows["staff"]) == ["张伟"]
    assert list(search_staff(engine, COMPLIANCE, "李").rows["userid"]) == ["lina"]
    nanjing = _who(Role.SUPERVISOR, (seeded.nanjing,))
    assert search_staff(engine, nanjing, "lina").rows.empty
    assert list(search_staff(engine, nanjing, "张伟").rows["store"]) == ["南京路店"]


def test_the_index_is_used(engine: Engine, seeded: Seeded):
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            plan = conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT rowid FROM messages_fts"
                    " WHERE messages_fts MATCH '投诉吗'"
                )
            ).all()
            assert any("VIRTUAL TABLE INDEX" in str(row) for row in plan), plan
        else:
            conn.execute(text("SET enable_seqscan = off"))
            plan = (
                conn.execute(text("EXPLAIN SELECT id FROM messages WHERE text ILIKE '%12315投诉%'"))
                .scalars()
                .all()
            )
            assert any("ix_messages_text_trgm" in line for line in plan), plan


def test_messages_stored_before_the_migration_are_indexed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0009")
    seed_chain(engine)
    migrate(engine)
    assert _texts(engine, COMPLIANCE, "12315投诉") == ["我要打12315投诉"]
    engine.dispose()


def test_the_sqlite_triggers_that_keep_the_index_survive_every_migration(sqlite_url: str) -> None:
    # a later migration that copies ``messages`` (batch mode) would drop them silently
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        triggers = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages'")
        ).scalars()
        assert {"messages_fts_insert", "messages_fts_delete", "messages_fts_update"} <= set(
            triggers
        )
    engine.dispose()


def _bulk_rows(count: int) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    when = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    envelopes = [
        ("bulk", i, f"bulk-{i}", 1, "", "", "{}", "pending", None, 0, when) for i in range(count)
    ]
    messages = [
        {
            "envelope_id": i + 1, "msgid": f"bulk-{i}", "seq": i, "action": "send",
            "msgtype": "text", "sender": "zhangwei", "sender_kind": "staff",
            "tolist_json": '["wmcust0"]', "roomid": "", "msgtime": when + dt.timedelta(seconds=i),
            "text": f"工单编号{i:05d}已受理", "raw_json": "{}", "recall_of": None,
        }
        for i in range(count)
    ]  # fmt: skip
    return envelopes, messages


def test_messages_stored_in_bulk_are_indexed_once_each(engine: Engine) -> None:
    # the decrypt stage stores a batch as several multi-row statements on SQLite: every row
    # of every statement reaches the index, and a batch stored again adds nothing to it
    count = 2 * ROWS_PER_STATEMENT + 203
    envelopes, messages = _bulk_rows(count)
    with session_scope(engine) as s:
        insert_tuples(s, "envelopes", ENVELOPE_COLUMNS, envelopes, jsonb=("raw",))
        insert_messages(s, messages)
    with session_scope(engine) as s:
        insert_messages(s, messages[ROWS_PER_STATEMENT - 3 :])  # delivered again
        assert s.scalar(select(func.count()).select_from(Message)) == count
    for i in (0, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, count - 1):
        assert _texts(engine, COMPLIANCE, f"编号{i:05d}") == [f"工单编号{i:05d}已受理"]
    assert search_messages(engine, COMPLIANCE, "已受理", limit=5).total == min(count, COUNT_CAP + 1)
