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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
from sqlalchemy import Engine, make_url

from audit.config import ConfigError, load_settings
from audit.store import reports
from audit.store.db import DatabaseError, make_engine, require_schema

QUERY_TTL = 60  # seconds: the pipeline adds data in batches, a minute old is fresh enough

CATEGORY_LABELS = {
    "privacy": "隐私泄露 privacy",
    "diversion": "私下导流 diversion",
    "promise": "违规承诺 promise",
    "abuse": "辱骂 abuse",
    "complaint": "投诉风险 complaint",
    "fraud": "欺诈 fraud",
    "illegal": "违法 illegal",
    "other": "其他 other",
}


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


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def data_period(url: str) -> reports.Period | None:
    return reports.data_period(engine_for(url))


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def org_tree(url: str) -> list[reports.OrgNode]:
    return reports.org_tree(engine_for(url))


def _filter(start: dt.date, end: dt.date, units: tuple[int, ...] | None) -> reports.ReportFilter:
    return reports.ReportFilter(reports.Period(start, end), units)


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def store_table(
    url: str, start: dt.date, end: dt.date, units: tuple[int, ...] | None
) -> pd.DataFrame:
    return reports.store_table(engine_for(url), _filter(start, end, units))


@st.cache_data(ttl=QUERY_TTL, show_spinner=False)
def messages_per_day(
    url: str, start: dt.date, end: dt.date, units: tuple[int, ...] | None
) -> pd.DataFrame:
    return reports.messages_per_day(engine_for(url), _filter(start, end, units))
