"""Engines, sessions and migrations.

Migrations are the only way the schema is made: :func:`migrate` runs ``alembic upgrade head``
with the migration scripts shipped inside the package, so an installed ``audit`` needs no
``alembic.ini`` of its own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, make_url, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseError(Exception):
    """The database cannot be reached or is not ready, worded for the operator."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":  # psycopg 3 rather than the psycopg2 default
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any exception."""
    with session_factory(engine)() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_schema(engine: Engine) -> None:
    """Fail with the remedy when the database was never initialised."""
    from alembic.script import ScriptDirectory

    try:
        rev = current_revision(engine)
    except Exception as exc:  # connection refused, bad credentials, ...
        raise DatabaseError(f"cannot open database {engine.url.render_as_string()}: {exc}") from exc
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    if rev is None:
        raise DatabaseError(
            f"database {engine.url.render_as_string()} has no schema: run `audit init` first"
        )
    if rev != head:
        raise DatabaseError(
            f"database schema is at {rev}, this version needs {head}: run `audit init` to upgrade"
        )


def insert_ignore(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """Bulk INSERT that skips rows colliding with a unique key (re-runs stay idempotent)."""
    if not rows:
        return
    table = model.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise DatabaseError(f"unsupported database {dialect}")
    session.execute(stmt, rows)


# Rows per multi-row statement, within SQLite's limit on bound variables (32,766 by default)
# and PostgreSQL's (65,535)
ROWS_PER_STATEMENT = 500


def insert_tuples(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    jsonb: Collection[str] = (), tail: str = "ON CONFLICT DO NOTHING", returning: str = "",
) -> list[Any]:  # fmt: skip
    """The hot path's bulk INSERT of plain tuples, straight to the driver; with
    ``returning`` (a column), that column's values of the inserted rows (in no promised
    order).

    On SQLite the rows go as multi-row ``VALUES`` statements rather than one statement per
    row: a table with an FTS5 trigger (``messages``) then flushes its index once per
    statement, not once per row, which halves the cost of storing a message. PostgreSQL
    takes them as one pipelined ``executemany``, or as multi-row statements when something
    is returned. ``jsonb`` columns are cast on PostgreSQL; JSON goes already serialized, and
    datetimes as :func:`driver_datetime` gives them.
    """
    if not rows:
        return []
    conn = session.connection()
    sqlite_ = conn.dialect.name == "sqlite"
    cols = ", ".join(columns)
    back = f" RETURNING {returning}" if returning else ""
    if not sqlite_ and not returning:
        values = ", ".join("%s::jsonb" if c in jsonb else "%s" for c in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({cols}) VALUES ({values}) {tail}", list(rows))
        return []
    if sqlite_:
        one = "(" + ", ".join("?" for _ in columns) + ")"
        size = min(ROWS_PER_STATEMENT, _sqlite_variables(conn) // len(columns))
    else:
        one = "(" + ", ".join("%s::jsonb" if c in jsonb else "%s" for c in columns) + ")"
        size = min(ROWS_PER_STATEMENT, 65_535 // len(columns))
    out: list[Any] = []
    for i in range(0, len(rows), max(1, size)):
        part = rows[i : i + size]
        result = conn.exec_driver_sql(
            f"INSERT INTO {table} ({cols}) VALUES {', '.join([one] * len(part))} {tail}{back}",
            tuple(itertools.chain.from_iterable(part)),
        )
        if returning:
            out += result.scalars().all()
    return out


def update_by_id(
    session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    casts: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """Set ``columns`` of the rows whose ``id`` is each tuple's first value to the rest.

    One ``UPDATE ... FROM (VALUES ...)`` per few hundred rows rather than a statement per
    row. ``casts`` name each column's PostgreSQL type (``bigint``, ``jsonb``; the id is a
    bigint). SQLite before 3.33 has no ``UPDATE ... FROM``: there, one statement per row.
    """
    if not rows:
        return
    conn = session.connection()
    sets = ", ".join(f"{c} = v.{c}" for c in columns)
    names = ", ".join(("id", *columns))
    if conn.dialect.name == "sqlite":
        if sqlite3.sqlite_version_info < (3, 33):
            assigns = ", ".join(f"{c} = ?" for c in columns)
            conn.exec_driver_sql(
                f"UPDATE {table} SET {assigns} WHERE id = ?", [(*r[1:], r[0]) for r in rows]
            )
            return
        one = "(" + ", ".join("?" for _ in range(len(columns) + 1)) + ")"
        size = min(ROWS_PER_STATEMENT, _sqlite_variables(conn) // (len(columns) + 1))
        # a VALUES table's columns are column1, column2...: named by a CTE
        head = f"WITH v({names}) AS (VALUES "
        tail = f") UPDATE {table} SET {sets} FROM v WHERE {table}.id = v.id"
    else:
        types = casts or {}
        one = "(" + ", ".join(
            f"%s::{types.get(c, 'bigint')}" for c in ("id", *columns)
        ) + ")"  # fmt: skip
        size = min(ROWS_PER_STATEMENT, 65_535 // (len(columns) + 1))
        head = f"UPDATE {table} SET {sets} FROM (VALUES "
        tail = f") AS v({names}) WHERE {table}.id = v.id"
    for i in range(0, len(rows), max(1, size)):
        part = rows[i : i + size]
        conn.exec_driver_sql(
            head + ", ".join([one] * len(part)) + tail,
            tuple(itertools.chain.from_iterable(part)),
        )


def driver_datetime(dialect: str, moment: dt.datetime) -> Any:
    """A UTC datetime as the driver takes it for a ``UTCDateTime`` column (SQLAlchemy's text
    format on SQLite)."""
    if dialect == "sqlite":
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def _sqlite_variables(conn: Any) -> int:
    raw = conn.connection.dbapi_connection
    getlimit = getattr(raw, "getlimit", None)  # Python 3.11+
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if getlimit else 999


def stage_mark(session: Session, stage: str) -> Any:
    """The high-water mark of an incremental stage (a ``checkpoints`` row), locked for update.

    Stages keep the largest id they have processed under ``stage:<name>``; reading and
    advancing it in the batch's own transaction makes each batch all-or-nothing.
    """
    from audit.store.models import Checkpoint

    mark = session.get(Checkpoint, stage, with_for_update=True)
    if mark is None:
        mark = Checkpoint(source=stage, seq=0)
        session.add(mark)
    return mark


STATISTICS = "stage:statistics:"  # + table: its largest id when SQLite last analysed it


def refresh_statistics(
    engine: Engine, share: float = 0.1, only: Collection[str] | None = None
) -> list[str]:
    """Bring the query planner's statistics up to date for the tables a run filled.

    A freshly filled database has none, and the planner then guesses (a dashboard query
    over a minute on a new 100k-message PostgreSQL store); autovacuum gets there, but later
    than the first user. A table is analysed when it changed by more than ``share`` of its
    rows since it was last analysed: on PostgreSQL by the server's own counters, on SQLite
    by its largest id against the one noted (``checkpoints``) when it was last analysed,
    reading a bounded sample of each index. Both are cheap when nothing changed. ``only``
    limits it to these tables (between the stages of a run: the table a stage just filled,
    which the next stage reads). Returns the tables analysed.
    """
    from sqlalchemy import text

    stale: list[str] = []
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            stale = sorted(
                name
                for name, live, changed in conn.execute(
                    text(
                        "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables"
                        " WHERE schemaname = current_schema()"
                    )
                )
                if changed > 50 + share * live and (only is None or name in only)
            )
            for name in stale:
                conn.exec_driver_sql(f'ANALYZE "{name}"')
        return stale
    if engine.dialect.name != "sqlite":  # pragma: no cover - only the two are supported
        return stale
    from audit.store.models import Base, Checkpoint

    tables = [
        t
        for t in Base.metadata.sorted_tables
        if "id" in t.c
        and t.c.id.primary_key
        and t.c.id.type.python_type is int
        and (only is None or t.name in only)
    ]
    with session_scope(engine) as session:
        noted = dict(
            session.execute(
                select(Checkpoint.source, Checkpoint.seq).where(
                    Checkpoint.source.startswith(STATISTICS)
                )
            ).all()
        )
        sizes = {t.name: session.scalar(select(func.max(t.c.id))) or 0 for t in tables}
        for name, size in sizes.items():
            before = noted.get(STATISTICS + name, 0)
            if size - before > 50 + share * before:
                stale.append(name)
        if stale:
            session.execute(text("PRAGMA analysis_limit=1000"))
            for name in stale:
                session.execute(text(f'ANALYZE "{name}"'))
                mark = session.get(Checkpoint, STATISTICS + name)
                if mark is None:
                    session.add(Checkpoint(source=STATISTICS + name, seq=sizes[name]))
                else:
                    mark.seq = sizes[name]
    return stale
