"""What the pages read: the engine, the database's readiness, and cached reports.

The database URL (``AUDIT_DATABASE__URL`` or ``audit.toml``, via :func:`load_settings`) is the
only thing that connects the app to a database, so tests point it at a seeded one. Cached
functions take the URL and plain values, never an engine, so that their cache keys are simple
and one app can serve several databases side by side (as the tests do).

Imported by the page scripts as ``datasource``: Streamlit puts the directory of ``app.py`` on
``sys.path``, and ``dashboards/`` is an app, not part of the installed package.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import render
import streamlit as st
import webauth
from sqlalchemy import Engine, make_url

from audit import reports, search
from audit.config import ConfigError, load_settings
from audit.domain import Action, Category
from audit.inspect import cached_wordlists
from audit.quality.metrics import BusinessClock
from audit.reports import customer as customer_report
from audit.reports import quality as quality_report
from audit.reports import staff as staff_report
from audit.resources import data_path
from audit.scan.wordlist import WordLists
from audit.store import access, reviews, users, websessions, wordlist_edits
from audit.store.access import Principal
from audit.store.db import DatabaseError, make_engine, require_schema, session_scope
from audit.store.models import Severity

QUERY_TTL = 60  # seconds: the pipeline adds data in batches, a minute old is fresh enough

CATEGORY_LABELS = {**{c.value: c.bilingual for c in Category}, "other": "其他 other"}


@dataclass(frozen=True)
class Problem:
    """Why the pages cannot show anything yet, and what to do about it."""

    message: str
    fatal: bool  # True: cannot even read the database (show an error, not a hint)


def database_url() -> str:
    return load_settings().database.url


@st.cache_resource(show_spinner=False)
def engine_for(url: str) -> Engine:
    return make_engine(url)


@st.cache_data(ttl=5, show_spinner=False)
def database_problem(url: str) -> Problem | None:
    """``None`` when the schema is there; otherwise the remedy, worded for the operator."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "")
        if not path.exists():  # do not create an empty file just by looking
            return Problem(
                f"数据库 `{path}` 还不存在。请先运行 `audit init` 建库，"
                "再运行 `audit demo`（演示数据）或 `audit run`（正式数据）。\n\n"
                f"No database at `{path}` yet: run `audit init`, then `audit demo` or `audit run`.",
                fatal=False,
            )
    try:
        require_schema(engine_for(url))
    except DatabaseError as exc:
        text = str(exc)
        if "audit init" in text:
            return Problem(
                "数据库尚未初始化或版本过旧。请运行 `audit init`，"
                "再运行 `audit demo` 或 `audit run` 导入数据。\n\n"
                f"{text}",
                fatal=False,
            )
        return Problem(f"无法连接数据库 / cannot open the database.\n\n{text}", fatal=True)
    return None


def settings_problem() -> Problem | None:
    try:
        load_settings()
    except ConfigError as exc:
        return Problem(f"配置文件有误 / invalid configuration:\n\n```\n{exc}\n```", fatal=True)
    return None


def channel_names(states: Iterable[str]) -> list[str]:
    """Each acquisition channel's configured name (``dashboard.channel_labels``)."""
    labels = load_settings().dashboard.channel_labels
    return [render.channel_name(state, labels) for state in states]


def timezone() -> str:
    """The configured zone (``quality.timezone``): every day and time the pages show."""
    return load_settings().quality.timezone


def data_period(url: str) -> reports.Period | None:
    """The local days with messages, in the configured zone."""
    return _data_period(url, timezone())


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _data_period(url: str, tz: str) -> reports.Period | None:
    return reports.data_period(engine_for(url), tz)


def _filter(start: dt.date, end: dt.date, units: tuple[int, ...] | None) -> reports.ReportFilter:
    return reports.ReportFilter(reports.Period(start, end, timezone()), units)


def pipeline_lag(url: str, who: Principal) -> reports.PipelineLag | None:
    """How far the analysis is behind the pull (officers and admins; None for the rest)."""
    return _pipeline_lag(url, who)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def _pipeline_lag(url: str, who: Principal) -> reports.PipelineLag | None:
    with session_scope(engine_for(url)) as s:
        return reports.pipeline_lag_for(s, who)


# --------------------------------------------------------------------------- users


def principal_for_session(url: str, token: str) -> Principal | None:
    """Never cached: the principal of a live server-side session (see ``webauth.py``); every
    call counts as activity and sees a sign-out or password change at once."""
    d = load_settings().dashboard
    with session_scope(engine_for(url)) as s:
        user = websessions.resolve(s, token, webauth.session_policy(d))
        return None if user is None else access.principal_for_user(s, user)


def session_epoch(url: str, user_id: int) -> int | None:
    """Never cached: a password change must end other sessions at their next page load."""
    with session_scope(engine_for(url)) as s:
        return users.session_epoch(s, user_id)


@st.cache_data(ttl=30, show_spinner=False)
def principal_by_id(url: str, user_id: int, session_epoch: int) -> Principal | None:
    """``session_epoch`` is part of the cache key: a principal cached before a password change
    is never handed to a session signed in after it."""
    with session_scope(engine_for(url)) as s:
        return access.principal_by_id(s, user_id)


# --------------------------------------------------------------------------- scoped reports
# Every function takes the principal: a page cannot ask for more than its user may see.


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def scoped_org_tree(url: str, who: Principal) -> list[reports.OrgNode]:
    return reports.scoped_org_tree(engine_for(url), who)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def overview(
    url: str,
    who: Principal,
    start: dt.date,
    end: dt.date,
    units: tuple[int, ...] | None,
    last_day: dt.date,
) -> reports.Overview:
    period = reports.Period(start, end, timezone())
    return reports.overview(engine_for(url), who, period, units, last_day)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def store_ranking(
    url: str, who: Principal, start: dt.date, end: dt.date, level: str
) -> pd.DataFrame:
    return reports.store_ranking(engine_for(url), who, _filter(start, end, None), level)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def staff_table(
    url: str, who: Principal, start: dt.date, end: dt.date, unit: int | None
) -> pd.DataFrame:
    return reports.staff_table(engine_for(url), who, _filter(start, end, None), unit)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def staff_choices(url: str, who: Principal) -> list[tuple[int, str]]:
    return reports.staff_choices(engine_for(url), who)


def review_hours() -> dict[Severity, float]:
    """The review deadlines configured in ``[alerts.review_hours]``."""
    return reports.review_hours(load_settings().alerts.review_hours)


def alert_queue_page(url: str, who: Principal, query: reports.QueueQuery) -> reports.QueuePage:
    """Not cached: a reviewer must see their own changes (and the clock) at once."""
    return reports.alert_queue_page(engine_for(url), who, query, review_hours())


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def search_messages(url: str, who: Principal, keyword: str) -> search.SearchResult:
    return search.search_messages(engine_for(url), who, keyword, tz=timezone())


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def search_customers(url: str, who: Principal, query: str) -> search.SearchResult:
    return search.search_customers(engine_for(url), who, query)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def search_staff(url: str, who: Principal, query: str) -> search.SearchResult:
    return search.search_staff(engine_for(url), who, query)


def conversation_alerts(url: str, who: Principal, conversation_id: int) -> reports.QueuePage:
    """Not cached, as the queue: a review on the page shows at once."""
    return reports.conversation_alerts(
        engine_for(url), who, conversation_id, timezone(), review_hours()
    )


def open_conversation(
    url: str, who: Principal, conversation_id: int | None, alert_id: int | None
) -> reports.ConversationView | None:
    """Not cached: each call is a logged view. Pictures with findings come drawn from the
    media directory, masked for ``who``."""
    media = load_settings().media.directory
    return reports.open_conversation(engine_for(url), who, conversation_id, alert_id, media)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def tag_table(url: str, who: Principal, start: dt.date, end: dt.date) -> pd.DataFrame:
    return reports.tag_table(engine_for(url), who, _filter(start, end, None))


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def channel_table(url: str, who: Principal, start: dt.date, end: dt.date) -> pd.DataFrame:
    return reports.channel_table(engine_for(url), who, _filter(start, end, None))


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def dormant_page(url: str, who: Principal, days: int, page: int) -> reports.DormantList | None:
    return reports.dormant_page(engine_for(url), who, days, page)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def rule_table(url: str, who: Principal, start: dt.date, end: dt.date) -> pd.DataFrame:
    return reports.rule_table(engine_for(url), who, _filter(start, end, None))


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def rule_examples(
    url: str, who: Principal, start: dt.date, end: dt.date, rule: str
) -> pd.DataFrame:
    return reports.rule_examples(engine_for(url), who, _filter(start, end, None), rule)


def audit_trail(url: str, who: Principal, actions: tuple[Action, ...] = ()) -> pd.DataFrame:
    return reports.audit_trail(engine_for(url), who, actions, tz=timezone())


# --------------------------------------------------------------------------- reviews


def review(
    url: str, who: Principal, alert_ids: list[int], action: str, comment: str
) -> reviews.BulkResult:
    with session_scope(engine_for(url)) as s:
        result = reviews.review_alerts(s, who, alert_ids, action, comment)
    st.cache_data.clear()  # counts on every page changed
    return result


def assign(url: str, who: Principal, alert_ids: list[int], assignee: int | None) -> int:
    with session_scope(engine_for(url)) as s:
        changed = reviews.assign_alerts(s, who, alert_ids, assignee)
    st.cache_data.clear()
    return changed


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def assignable_users(url: str, who: Principal) -> list[tuple[int, str]]:
    with session_scope(engine_for(url)) as s:
        return reviews.assignable_users(s, who)


def alert_history(url: str, who: Principal, alert_id: int) -> list[reviews.ReviewEntry]:
    with session_scope(engine_for(url)) as s:
        return reviews.alert_history(s, who, alert_id)


# --------------------------------------------------------------------------- word-list edits


def wordlist_files() -> WordLists:
    """The lists as the files have them (raises ``WordListError`` naming bad lines)."""
    return _wordlist_files(str(data_path(load_settings().scan.wordlists)))


@st.cache_resource(ttl=QUERY_TTL, show_spinner=False)
def _wordlist_files(directory: str) -> WordLists:
    return cached_wordlists(Path(directory))  # parsed once per content (the scan cache)


def wordlist_edits_and_rescans(
    url: str, who: Principal
) -> tuple[list[wordlist_edits.EditView], wordlist_edits.RescanState]:
    """Not cached: an officer sees their own change, and the rescan's state, at once."""
    with session_scope(engine_for(url)) as s:
        return wordlist_edits.edits(s, who, wordlist_files()), wordlist_edits.rescan_state(s)


def wordlist_terms(url: str, category: str) -> list[str]:
    with session_scope(engine_for(url)) as s:
        return wordlist_edits.terms_of(wordlist_files(), s, category)


def add_wordlist_term(url: str, who: Principal, **fields: str) -> wordlist_edits.EditResult:
    with session_scope(engine_for(url)) as s:
        result = wordlist_edits.add_term(s, who, wordlist_files(), **fields)
    st.cache_data.clear()
    return result


def set_wordlist_term_disabled(
    url: str, who: Principal, category: str, term: str, disabled: bool
) -> wordlist_edits.EditResult:
    with session_scope(engine_for(url)) as s:
        result = wordlist_edits.set_disabled(
            s, who, wordlist_files(), category=category, term=term, disabled=disabled
        )
    st.cache_data.clear()
    return result


def annotate_wordlist_term(
    url: str, who: Principal, category: str, term: str, note: str
) -> wordlist_edits.EditResult:
    with session_scope(engine_for(url)) as s:
        return wordlist_edits.annotate(
            s, who, wordlist_files(), category=category, term=term, note=note
        )


# --------------------------------------------------------------------------- drill-down, quality


def quality_clock() -> tuple[BusinessClock, float]:
    """The configured business clock and SLA minutes (``[quality]``)."""
    q = load_settings().quality
    return BusinessClock.from_config(q), q.sla_minutes


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def staff_profile(
    url: str, who: Principal, staff_id: int, start: dt.date, end: dt.date
) -> staff_report.StaffProfile | None:
    _, sla = quality_clock()
    return staff_report.staff_profile(
        engine_for(url), who, staff_id, _filter(start, end, None), sla
    )


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def customer_profile(
    url: str, who: Principal, customer_id: int
) -> customer_report.CustomerProfile | None:
    return customer_report.customer_profile(engine_for(url), who, customer_id, timezone())


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def store_choices(url: str, who: Principal) -> list[tuple[int, str]]:
    return quality_report.store_choices(engine_for(url), who)


def waiting_and_staff(
    url: str, who: Principal, start: dt.date, end: dt.date, unit: int | None, now: dt.datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customers waiting now and the per-staff table (one pass over the waiting). Not
    cached: waiting times run with the clock."""
    clock, sla = quality_clock()
    f = _filter(start, end, None)
    engine = engine_for(url)
    waiting = quality_report.waiting_now(engine, who, f, clock, sla, now, unit)
    per_staff = quality_report.staff_quality(engine, who, f, clock, sla, now, unit, waiting)
    return waiting, per_staff


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def daily_trend(
    url: str, who: Principal, start: dt.date, end: dt.date, unit: int | None
) -> pd.DataFrame:
    return quality_report.daily_trend(engine_for(url), who, _filter(start, end, None), unit)
