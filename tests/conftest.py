"""Shared fixtures: real databases (SQLite and PostgreSQL), built by the migrations.

``db_url`` / ``engine`` are parametrized over both backends. PostgreSQL is found through
``AUDIT_TEST_PG_URL`` (default: the local server); tests on it are skipped, with the reason
shown, only when the server cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from audit.store.db import make_engine, migrate
from audit.store.models import Base

PG_URL = os.environ.get("AUDIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


def _pg_reachable() -> str | None:
    try:
        engine = make_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"PostgreSQL at {PG_URL} unreachable: {type(exc).__name__}: {exc}".splitlines()[0]


_PG_SKIP: str | bool | None = False


def pg_skip_reason() -> str | None:
    global _PG_SKIP
    if _PG_SKIP is False:
        _PG_SKIP = _pg_reachable()
    return _PG_SKIP  # type: ignore[return-value]


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Streamlit's AppTest leaves the page it ran as ``__main__``; a spawned process (the
    scoring stage's) imports its parent's main module as it starts, and would run that page."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test is slower)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (and xdist worker)."""
    reason = pg_skip_reason()
    if reason:
        if os.environ.get("AUDIT_REQUIRE_PG"):  # CI: a missing backend is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"audit_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_engine(PG_URL).url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        # audit_log refuses DELETE; TRUNCATE is what a test reset needs and the trigger allows
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database URL on each backend."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "audit.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def empty_again(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Empties a database that ``db_url`` made, for a second run in the same test."""

    def empty(url: str) -> None:
        if url.startswith("sqlite:///"):
            shutil.copy(request.getfixturevalue("sqlite_template"), url.removeprefix("sqlite:///"))
        else:
            _truncate_pg(url)

    return empty


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """An empty, migrated SQLite database, for tests that need only one backend."""
    path = tmp_path / "audit.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def sim_archive(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A small simulated archive (3 stores, 2 days, 2,500 messages), built once."""
    from simfixtures import build

    return build(tmp_path_factory.mktemp("sim") / "sim")


@pytest.fixture(scope="session")
def lib_path() -> Path:
    """The official WeCom SDK binary (``AUDIT_SDK_LIBRARY`` or the pywecomarchive wheel)."""
    from audit.archive.sdk import SdkLibraryError, find_sdk_library

    configured = os.environ.get("AUDIT_SDK_LIBRARY")
    try:
        return find_sdk_library(Path(configured) if configured else None)
    except SdkLibraryError as exc:
        pytest.skip(f"official WeCom SDK binary not installed (pip install '.[sdk]'): {exc}")


@pytest.fixture(scope="session")
def standin_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the official SDK binary (tests/standin_sdk.c: its C ABI, the WeCom
    service replaced by files), built with the system C compiler."""
    from standin_sdk import build_library

    library = build_library(tmp_path_factory.mktemp("standin-sdk"))
    if library is None:
        pytest.skip("no C compiler to build the SDK stand-in (tests/standin_sdk.c)")
    return library


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long-running modules (marked ``slow``) first, each in its own order: run by file on
    several workers (``--dist loadfile``), a long module handed out last would keep one worker
    busy while the others wait with nothing left to do."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)  # stable
