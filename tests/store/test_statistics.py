"""Planner statistics after a run: the tables it filled substantially are analysed, on
both databases; a run that changed nothing analyses nothing."""

from __future__ import annotations

from sqlalchemy import Engine, text

from audit.store.db import refresh_statistics, session_scope
from audit.store.models import Customer


def _fill(engine: Engine, first: int, count: int) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # the server's counters are flushed when the session goes idle, at once
            conn.execute(text("SELECT pg_stat_force_next_flush()"))
    with session_scope(engine) as session:
        session.add_all(Customer(external_userid=f"wm{i}") for i in range(first, first + count))
        if engine.dialect.name == "postgresql":
            session.execute(text("SELECT pg_stat_force_next_flush()"))


def _analyses(engine: Engine) -> int:
    """How often ``customers`` was analysed (SQLite: whether it has statistics)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return int(
                conn.execute(
                    text(
                        "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'customers'"
                    )
                ).scalar()
                or 0
            )
        has = conn.execute(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        ).scalar()
        return int(
            bool(has)
            and bool(
                conn.execute(
                    text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'customers'")
                ).scalar()
            )
        )


def test_a_filled_table_is_analysed_once_until_it_grows_again(engine: Engine) -> None:
    postgres = engine.dialect.name == "postgresql"
    if postgres:  # the server's own autovacuum must not get there first
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE customers SET (autovacuum_enabled = false)"))
    try:
        before = _analyses(engine)
        _fill(engine, 0, 2000)
        assert "customers" in refresh_statistics(engine)
        assert _analyses(engine) == (before + 1 if postgres else 1)
        assert "customers" not in refresh_statistics(engine)  # nothing changed since
        _fill(engine, 2000, 100)  # 5 %: not yet
        assert "customers" not in refresh_statistics(engine)
        _fill(engine, 2100, 400)  # 25 % since it was analysed
        assert "customers" in refresh_statistics(engine)
    finally:
        if postgres:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE customers RESET (autovacuum_enabled)"))


def test_between_stages_only_the_tables_named_are_analysed(engine: Engine) -> None:
    # a stage refreshes the statistics of the table the next one reads, and no other: the
    # customers filled here wait for the run's refresh at its end
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE customers SET (autovacuum_enabled = false)"))
    try:
        before = _analyses(engine)
        _fill(engine, 0, 2000)
        assert refresh_statistics(engine, only=("findings", "scores")) == []
        assert _analyses(engine) == before
        assert refresh_statistics(engine, only=("customers",)) == ["customers"]
        assert _analyses(engine) == (before + 1 if postgres else 1)
    finally:
        if postgres:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE customers RESET (autovacuum_enabled)"))
