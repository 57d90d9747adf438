"""Fixtures of the page tests: a seeded dashboard database, and an app that reads only it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from dashboard_seed import DashSeed, seed_dashboard
from sqlalchemy import Engine

from audit.store.db import make_engine


@pytest.fixture
def isolated_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIT_CONFIG", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def seeded_db(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> tuple[str, DashSeed]:
    path = tmp_path_factory.mktemp("dash") / "audit.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    seed = seed_dashboard(engine)
    engine.dispose()
    return url, seed


@pytest.fixture
def db(
    seeded_db: tuple[str, DashSeed], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, DashSeed]]:
    url, seed = seeded_db
    monkeypatch.setenv("AUDIT_DATABASE__URL", url)
    engine = make_engine(url)
    yield engine, seed
    engine.dispose()


@pytest.fixture
def fresh_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, DashSeed]]:
    """A database of its own, for tests that change it."""
    engine = make_engine(sqlite_url)
    seed = seed_dashboard(engine)
    monkeypatch.setenv("AUDIT_DATABASE__URL", sqlite_url)
    yield engine, seed
    engine.dispose()
