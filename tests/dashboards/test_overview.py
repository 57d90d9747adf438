"""The dashboard's overview page, run with AppTest against real SQLite databases.

The database URL (``AUDIT_DATABASE__URL``) is the only seam: each test points it at a
database in a known state and runs ``dashboards/app.py`` as Streamlit would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from seed_chain import Seeded, seed_chain
from sqlalchemy import Engine, update
from streamlit.testing.v1 import AppTest

from audit.store.access import Principal, principal_for_user
from audit.store.db import make_engine, session_scope
from audit.store.models import Envelope, EnvelopeState, Message, ScanRun
from audit.store.users import create_user

APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
TIMEOUT = 60  # the first run imports pandas, altair and the models


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # no audit.toml from the working directory; caches are process-wide, clear them
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIT_CONFIG", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def _admin(url: str) -> Principal:
    """A signed-in compliance officer (sees every store), as the sign-in form leaves it."""
    engine: Engine = make_engine(url)
    with session_scope(engine) as s:
        principal = principal_for_user(s, create_user(s, "officer", "password-1", "compliance"))
    engine.dispose()
    return principal


@pytest.fixture
def seeded_url(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Seeded]]:
    engine: Engine = make_engine(sqlite_url)
    seeded = seed_chain(engine)
    engine.dispose()
    monkeypatch.setenv("AUDIT_DATABASE__URL", sqlite_url)
    monkeypatch.setitem(_SIGNED_IN, "who", _admin(sqlite_url))
    yield sqlite_url, seeded


_SIGNED_IN: dict[str, Principal] = {}


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if "who" in _SIGNED_IN:
        at.session_state["principal"] = _SIGNED_IN["who"]
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    """The period's metric row (the last five; the 1/7/30-day windows come first)."""
    return {m.label: m.value for m in at.metric[-5:]}


def store_frame(at: AppTest) -> pd.DataFrame:
    assert len(at.dataframe) == 1
    frame: pd.DataFrame = at.dataframe[0].value
    return frame.set_index("store")


def _scan_upto(url: str, upto: dt.datetime) -> None:
    """The seeded messages up to ``upto`` (UTC) analysed; every envelope decrypted."""
    engine: Engine = make_engine(url)
    with session_scope(engine) as s:
        run = s.query(ScanRun).one()
        s.execute(update(Envelope).values(state=EnvelopeState.DECRYPTED))
        s.execute(update(Message).where(Message.msgtime <= upto).values(scanned_run_id=run.id))
    engine.dispose()


def lag_caption(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("流水线延迟")]


def test_when_seeded_then_metrics_and_stores_are_shown(seeded_url: tuple[str, Seeded]):
    _scan_upto(seeded_url[0], dt.datetime(2026, 11, 17, 4, 0, tzinfo=dt.UTC))
    at = run_app()

    assert at.title[0].value == "门店概览 · Store overview"
    assert metrics(at) == {
        "消息 Messages": "8",
        "会话 Conversations": "3",
        "违规 Findings": "6",
        "待处理预警 Open alerts": "2",
        "门店 Stores": "3",
    }
    frame = store_frame(at)
    assert list(frame.index) == ["南京路店", "徐家汇店", "陆家嘴店", "（未归属门店 unassigned）"]
    nanjing = frame.loc["南京路店"]
    assert (nanjing["region"], nanjing["city"]) == ("华东区", "上海")
    assert (nanjing["messages"], nanjing["conversations"], nanjing["findings"]) == (5, 2, 4)
    assert (nanjing["privacy"], nanjing["diversion"], nanjing["abuse"]) == (1, 1, 1)
    assert nanjing["findings_per_1k"] == pytest.approx(800.0)
    assert (nanjing["alerts_open"], nanjing["alerts_total"]) == (1, 2)
    assert frame.loc["徐家汇店", "complaint"] == 1

    # the default period is the data's whole range, in China days
    assert at.date_input(key="overview_dates").value == (
        dt.date(2026, 11, 16),
        dt.date(2026, 11, 18),
    )
    assert len(at.get("vega_lite_chart")) == 2
    # the officer sees how far the analysis is behind the pull, in China time
    assert lag_caption(at) == [
        "流水线延迟 Pipeline lag: 1325 分钟 (已拉取至 11-18 10:05 / 已分析至 11-17 12:00)"
    ]


def test_when_a_supervisor_looks_then_no_pipeline_lag_is_shown(
    seeded_url: tuple[str, Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = seeded_url
    engine: Engine = make_engine(url)
    with session_scope(engine) as s:
        user = create_user(s, "sup", "password-1", "supervisor", ["S1"])
        monkeypatch.setitem(_SIGNED_IN, "who", principal_for_user(s, user))
    engine.dispose()
    at = run_app()
    assert metrics(at)["消息 Messages"] == "5"  # the page is there, for the one store
    assert lag_caption(at) == []


def test_when_a_period_is_picked_then_only_its_days_count(seeded_url: tuple[str, Seeded]):
    at = run_app()
    at.date_input(key="overview_dates").set_value((dt.date(2026, 11, 17), dt.date(2026, 11, 17)))
    at.run()
    assert not at.exception

    assert metrics(at)["消息 Messages"] == "2"
    assert metrics(at)["会话 Conversations"] == "0"
    frame = store_frame(at)
    assert frame.loc["南京路店", "abuse"] == 1
    assert frame.loc["徐家汇店", "messages"] == 0


def test_when_a_city_is_picked_then_unassigned_messages_drop_out(
    seeded_url: tuple[str, Seeded],
):
    _, seeded = seeded_url
    at = run_app()
    unit = at.selectbox(key="overview_unit")
    assert unit.options == ["全部 All", "华东区", "华东区 / 上海"]
    unit.set_value(seeded.city)
    at.run()
    assert not at.exception

    assert metrics(at)["消息 Messages"] == "7"
    assert list(store_frame(at).index) == ["南京路店", "徐家汇店", "陆家嘴店"]


def test_when_the_database_is_empty_then_it_says_how_to_fill_it(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AUDIT_DATABASE__URL", sqlite_url)
    monkeypatch.setitem(_SIGNED_IN, "who", _admin(sqlite_url))
    at = run_app()
    assert len(at.info) == 1
    assert "audit demo" in at.info[0].value and "audit run" in at.info[0].value
    assert not at.metric and not at.dataframe


def test_when_the_database_was_never_initialised_then_it_says_run_audit_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "missing" / "audit.db"
    monkeypatch.setenv("AUDIT_DATABASE__URL", f"sqlite:///{path}")
    at = run_app()
    assert len(at.info) == 1
    assert "audit init" in at.info[0].value
    assert not path.exists()  # looking does not create it


def test_when_the_file_exists_without_schema_then_it_says_run_audit_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "blank.db"
    path.touch()
    monkeypatch.setenv("AUDIT_DATABASE__URL", f"sqlite:///{path}")
    at = run_app()
    assert len(at.info) == 1
    assert "audit init" in at.info[0].value
    assert not at.error


def test_when_the_database_cannot_be_reached_then_an_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("AUDIT_DATABASE__URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    at = run_app()
    assert len(at.error) == 1
    assert "cannot open" in at.error[0].value
