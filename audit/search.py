"""Search: messages by keyword, customers by name, remark or phone, staff by name or id.

Message text is searched through an index on both backends (migration 0010): SQLite's FTS5
table ``messages_fts`` with the trigram tokenizer, PostgreSQL's ``pg_trgm`` GIN index, which
``ILIKE '%word%'`` uses. Both match any substring of three characters or more, whatever the
script (Chinese has no spaces to split words on) and without regard to ASCII case. A keyword
of one or two characters has no trigram, so it is matched by scanning (slower, same result).

Everything is scoped like the reports (:mod:`audit.store.access`): a message by its
conversation's store, a staff member by their store, a customer by the stores of the staff who
added them. What a role may not see never leaves this module: message text and remarks go
through the role's masker (phone numbers and the like masked unless the role may unmask), and
a role that sees pseudonyms instead of names finds people by their pseudonym only, so that a
search cannot be used to learn which name stands behind one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    Integer,
    Text,
    column,
    func,
    or_,
    select,
    table,
)
from sqlalchemy.orm import aliased

from audit import days
from audit.domain import SenderKind
from audit.export.masking import masked_excerpt, masker_for
from audit.reports.common import local_times
from audit.store.access import AccessDenied, Principal, pseudonym, pseudonym_key, within_scope
from audit.store.models import Conversation, Customer, Follow, Message, OrgUnit, Staff

FTS_TABLE = "messages_fts"
TRGM_INDEX = "ix_messages_text_trgm"
MIN_INDEXED = 3  # characters: shorter keywords have no trigram and are scanned
MAX_KEYWORD = 100
LIMIT = 100  # rows per search
# totals beyond this read "1,000+": in a part of the company, counting a word that is
# frequent elsewhere means joining every match to its store, which is not worth the wait
COUNT_CAP = 1_000
PHONE_DIGITS = 7  # a query with this many digits (separators ignored) is also a phone number


def modelled(obj: object, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """For Alembic's ``include_object``: the search index is made by migration 0010 in SQL
    the models cannot express (an FTS5 virtual table and its shadow tables, a GIN index)."""
    if name is None:
        return True
    return not (name in (TRGM_INDEX, FTS_TABLE) or name.startswith(FTS_TABLE + "_"))


class SearchError(ValueError):
    """The query cannot be searched; the message is for the user."""


def _keyword(raw: str) -> str:
    keyword = " ".join(raw.split())
    if not keyword:
        raise SearchError("请输入关键词 / enter a keyword")
    if len(keyword) > MAX_KEYWORD:
        raise SearchError(f"关键词过长（最多 {MAX_KEYWORD} 字）/ keyword too long")
    return keyword


@dataclass(frozen=True)
class SearchResult:
    rows: pd.DataFrame = field(repr=False)
    total: int  # matches in scope, counted up to COUNT_CAP + 1
    indexed: bool = True  # False: the keyword was too short for the index and was scanned

    @property
    def total_label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.total > COUNT_CAP else f"{self.total:,}"


# --------------------------------------------------------------------------- messages


def _fts_phrase(keyword: str) -> str:
    """The keyword as one FTS5 string: any character stands for itself."""
    return '"' + keyword.replace('"', '""') + '"'


_FTS = table(FTS_TABLE, column("rowid", Integer), column(FTS_TABLE, Text))


def _matching(conn: Connection, keyword: str) -> tuple[FromClause, ColumnElement[bool], Any]:
    """Messages containing ``keyword`` (ASCII case ignored): what to select from, the
    condition, and the order (newest first) that lets the database stop at the page.

    SQLite drives the query from the FTS table and walks its matches newest first, so a page
    of a frequent word costs a page, not every match.
    """
    if conn.dialect.name == "sqlite":
        if len(keyword) >= MIN_INDEXED:
            source = _FTS.join(Message, Message.id == _FTS.c.rowid)
            match = _FTS.c[FTS_TABLE].op("MATCH")(_fts_phrase(keyword))
            return source, match, _FTS.c.rowid.desc()
        # SQLite's LIKE ignores ASCII case, as the trigram tokenizer does
        return Message.__table__, Message.text.contains(keyword, autoescape=True), Message.id.desc()
    escaped = re.sub(r"([\\%_])", r"\\\1", keyword)
    return Message.__table__, Message.text.ilike(f"%{escaped}%", escape="\\"), Message.id.desc()


def _capped_count(conn: Connection, query: Any) -> int:  # a Select of any columns
    inner = query.with_only_columns(Message.id).order_by(None).limit(COUNT_CAP + 1).subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


def search_messages(
    engine: Engine,
    principal: Principal,
    raw: str,
    limit: int = LIMIT,
    tz: str = days.DEFAULT_ZONE,
) -> SearchResult:
    """The newest messages containing the keyword, in the principal's stores, masked for them.

    Rows: ``message_id, at`` (local time in ``tz``), ``sender_kind, staff, store, excerpt,
    conversation_id``; the excerpt is cut around the first match.
    """
    if not principal.reads_messages:
        raise AccessDenied("此角色不能查看消息内容 / this role does not read message text")
    keyword = _keyword(raw)
    store = aliased(OrgUnit)
    with engine.connect() as conn:
        source, match, newest_first = _matching(conn, keyword)
        query = (
            select(
                Message.id,
                Message.msgtime,
                Message.sender_kind,
                Staff.name,
                store.name,
                Message.text,
                Message.conversation_id,
            )
            .select_from(source)
            .outerjoin(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(store, store.id == Conversation.org_unit_id)
            .outerjoin(Staff, Staff.id == Message.staff_id)
            .where(match, within_scope(principal, Conversation.org_unit_id))
        )
        rows = conn.execute(query.order_by(newest_first).limit(limit)).all()
        total = len(rows) if len(rows) < limit else _capped_count(conn, query)
    masker = masker_for(principal)
    folded = keyword.casefold()
    records = []
    for mid, at, kind, staff, store_name, body, conv in rows:
        start = body.casefold().find(folded)
        span = (start, start + len(keyword)) if start >= 0 else (None, None)
        records.append(
            {
                "message_id": mid,
                "at": at,
                "sender_kind": SenderKind(kind).value,
                "staff": staff,
                "store": store_name,
                "excerpt": masked_excerpt(masker, body, *span),
                "conversation_id": conv,
            }
        )
    frame = pd.DataFrame(
        records,
        columns=[
            "message_id",
            "at",
            "sender_kind",
            "staff",
            "store",
            "excerpt",
            "conversation_id",
        ],
    )
    frame["at"] = local_times(frame["at"], tz)
    frame["conversation_id"] = frame["conversation_id"].astype("Int64")
    return SearchResult(frame, total, indexed=len(keyword) >= MIN_INDEXED)


# --------------------------------------------------------------------------- people


def _digits(raw: str) -> str | None:
    """The digits of a phone-number-like query (``138-0013 8000``), else ``None``."""
    if re.fullmatch(r"[\d\s+\-()]+", raw) is None:
        return None
    digits = re.sub(r"\D", "", raw)
    return digits if len(digits) >= PHONE_DIGITS else None


def _by_pseudonym(rows: Sequence[Any], kind: str, key_at: int, wanted: str) -> list[Any]:
    folded = wanted.casefold()
    key = pseudonym_key()  # read once, not per row
    return [r for r in rows if folded in pseudonym(kind, r[key_at], key).casefold()]


CUSTOMER_COLUMNS = ["customer_id", "customer", "remark", "channel", "staff", "store"]


def search_customers(
    engine: Engine, principal: Principal, raw: str, limit: int = LIMIT
) -> SearchResult:
    """Customers followed by staff in the principal's stores, one row per (customer, staff).

    Roles that see names match the name, the remark (phone numbers in it by their digits) or
    the external id; the remark is shown through the role's masker. Roles that see
    pseudonyms match the pseudonym (``客户-3f9a1c``) and see no remark.
    """
    if not principal.sees_people:
        raise AccessDenied("此角色只能查看汇总 / this role sees aggregates only")
    wanted = _keyword(raw)
    staff_store = aliased(OrgUnit)
    query = (
        select(
            Customer.id,
            Customer.name,
            Follow.remark,
            Follow.state,
            Staff.id,
            Staff.name,
            staff_store.name,
        )
        .select_from(Follow)
        .join(Customer, Customer.id == Follow.customer_id)
        .join(Staff, Staff.id == Follow.staff_id)
        .outerjoin(staff_store, staff_store.id == Staff.org_unit_id)
        .where(within_scope(principal, Staff.org_unit_id))
        .order_by(Customer.id, Staff.id)
    )
    if principal.sees_names:
        matches = [
            Customer.name.contains(wanted, autoescape=True),
            Follow.remark.contains(wanted, autoescape=True),
            Customer.external_userid == wanted,
        ]
        digits = _digits(wanted)
        if digits:
            matches.append(Follow.remark.contains(digits, autoescape=True))
        with engine.connect() as conn:
            rows = conn.execute(query.where(or_(*matches)).limit(COUNT_CAP + 1)).all()
    else:
        with engine.connect() as conn:
            rows = _by_pseudonym(conn.execute(query).all(), "customer", 0, wanted)
    masker = masker_for(principal)
    key = None if principal.sees_names else pseudonym_key()
    records = [
        {
            "customer_id": cid,
            "customer": name if principal.sees_names else pseudonym("customer", cid, key),
            "remark": masker.text(remark) if principal.sees_names else "",
            "channel": channel,
            "staff": staff if principal.sees_names else pseudonym("staff", sid, key),
            "store": store_name,
        }
        for cid, name, remark, channel, sid, staff, store_name in rows[:limit]
    ]
    return SearchResult(pd.DataFrame(records, columns=CUSTOMER_COLUMNS), len(rows))


STAFF_COLUMNS = ["staff_id", "staff", "userid", "position", "store", "active"]


def search_staff(
    engine: Engine, principal: Principal, raw: str, limit: int = LIMIT
) -> SearchResult:
    """Staff of the principal's stores by name or WeCom userid (roles that see names), or by
    pseudonym (``员工-3f9a1c``, roles that see pseudonyms: no userid shown then)."""
    if not principal.sees_people:
        raise AccessDenied("此角色只能查看汇总 / this role sees aggregates only")
    wanted = _keyword(raw)
    store = aliased(OrgUnit)
    query = (
        select(Staff.id, Staff.name, Staff.userid, Staff.position, store.name, Staff.active)
        .select_from(Staff)
        .outerjoin(store, store.id == Staff.org_unit_id)
        .where(within_scope(principal, Staff.org_unit_id))
        .order_by(Staff.id)
    )
    with engine.connect() as conn:
        if principal.sees_names:
            rows = conn.execute(
                query.where(
                    or_(
                        Staff.name.contains(wanted, autoescape=True),
                        Staff.userid.contains(wanted, autoescape=True),
                    )
                ).limit(COUNT_CAP + 1)
            ).all()
        else:
            rows = _by_pseudonym(conn.execute(query).all(), "staff", 0, wanted)
    key = None if principal.sees_names else pseudonym_key()
    records = [
        {
            "staff_id": sid,
            "staff": name if principal.sees_names else pseudonym("staff", sid, key),
            "userid": userid if principal.sees_names else "",
            "position": position,
            "store": store_name,
            "active": bool(active),
        }
        for sid, name, userid, position, store_name, active in rows[:limit]
    ]
    return SearchResult(pd.DataFrame(records, columns=STAFF_COLUMNS), len(rows))
