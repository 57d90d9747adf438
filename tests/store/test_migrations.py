"""The schema is made by the migrations only; the models must agree with them."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, text

from audit.search import modelled
from audit.store.db import DatabaseError, make_engine, require_schema
from audit.store.models import AuditLog, Base
from audit.store.types import utcnow


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": modelled}
            ),
            Base.metadata,
        )
    assert diff == []


def test_every_model_table_exists(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_audit_log_is_append_only(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(AuditLog).values(at=utcnow(), actor="a", action="view", detail={}))
    for statement in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["a"]


def test_when_database_never_initialised_then_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseError, match="run `audit init` first"):
        require_schema(engine)


def test_migrated_database_passes_schema_check(engine: Engine) -> None:
    require_schema(engine)
