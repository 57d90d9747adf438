"""A database at an older schema revision, on either backend, for the migration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from audit.store.db import make_engine, migrate


def database_at(request: pytest.FixtureRequest, tmp_path: Path, revision: str) -> Iterator[Engine]:
    """An empty database migrated to ``revision`` only, on the backend ``request.param``
    names (``sqlite``, or ``postgresql``: a database of its own on the session's server,
    skipped with the reason when there is none), dropped afterwards."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        migrate(engine, revision)
        yield engine
        engine.dispose()
        return
    server: str = request.getfixturevalue("pg_database")
    name = f"audit_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(server).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        make_engine(server).url.set(database=name).render_as_string(hide_password=False)
    )
    migrate(engine, revision)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
