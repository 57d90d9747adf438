"""What distributed mode refuses, and how a task behaves when delivered twice or failing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import ROOT, environment
from rows import dump
from sqlalchemy import Engine, select, text

from audit.config import load_settings
from audit.store.db import make_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.mark.parametrize("command", ["run", "watch"])
def test_distributed_on_sqlite_is_one_clear_line(
    sqlite_url: str, archive: Path, command: str
) -> None:
    env = environment(sqlite_url, archive)
    proc = subprocess.run(
        [sys.executable, "-m", "audit", command, "--distributed", "--path", str(archive)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: distributed mode needs PostgreSQL (database.url is sqlite): "
        "workers on several hosts cannot share a SQLite file"
    ]


def test_the_embedded_run_imports_no_celery(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from audit.cli import cli\n"
        f"db = 'sqlite:///{tmp_path}/a.db'\n"
        "for args in (['init'], ['simulate', '--out', sys.argv[1], '--messages', '60',"
        " '--stores', '1', '--days', '1', '--no-images'], ['run', '--path', sys.argv[1]],"
        " ['status']):\n"
        "    r = CliRunner().invoke(cli, ['--db', db, *args])\n"
        "    assert r.exit_code == 0, (args, r.output)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu')))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "AUDIT_IMAGES__ENABLED": "false"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "sim")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------- tasks run in this process


@pytest.fixture(scope="module")
def ran(baseline: dict[str, Any], archive: Path) -> Iterator[tuple[str, Any]]:
    """The baseline's database (its rows are already read), and the task module configured
    for it: tasks called here run in this process, as a worker runs them."""
    from audit.cluster import tasks

    url = baseline["url"]
    tasks.use_settings(load_settings(environ=environment(url, archive)))
    tasks._context = None
    yield url, tasks
    tasks._context = None
    tasks._settings = None


def _engine_rows(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        return dump(engine)
    finally:
        engine.dispose()


def _all_ids(engine: Engine, table: str) -> list[int]:
    with engine.connect() as conn:
        return [int(i) for i in conn.scalars(text(f"select id from {table} order by id"))]


def test_every_task_delivered_again_changes_nothing(
    ran: tuple[str, Any], baseline: dict[str, Any]
) -> None:
    url, tasks = ran
    fp = tasks.context().fingerprint
    engine = tasks.context().engine
    top = max(_all_ids(engine, "messages"))
    assert tasks.decrypt(fp=fp, lo=0, hi=top)["decrypted"] == 0
    for part in range(3):
        assert tasks.conversations(fp=fp, part=part, parts=3, upto=top)["messages"] == 0
    tasks.consent(fp=fp)
    assert tasks.scan(fp=fp, lo=0, hi=top, full=False)["messages"] == 0
    rescan = tasks.scan(fp=fp, lo=0, hi=top, full=True)
    assert (rescan["findings"], rescan["removed"]) == (len(baseline["rows"]["findings"]), 0)
    convs = _all_ids(engine, "conversations")
    assert tasks.scores(fp=fp, ids=convs)["stats"]["conversations"] == len(convs)
    tasks.alerts(fp=fp)
    tasks.daily(fp=fp)
    assert _engine_rows(url) == baseline["rows"]


def test_a_worker_with_other_word_lists_refuses_saying_so(ran: tuple[str, Any]) -> None:
    from audit.cluster.fingerprint import VersionMismatch

    _, tasks = ran
    fp = dict(tasks.context().fingerprint)
    fp["wordlist_hash"] = "0" * 64
    fp["schema_revision"] = "0001"
    with pytest.raises(VersionMismatch) as err:
        tasks.decrypt(fp=fp, lo=0, hi=10)
    assert str(err.value).startswith("worker ")
    assert (
        "refuses the task, it would mix results: word-list hash: coordinator 000000000000…"
        in str(err.value)
    )
    head = dict(tasks.context().fingerprint)["schema_revision"]  # the migrations' head
    assert head != "0001"
    assert f"; schema revision: coordinator 0001, this worker {head}" in str(err.value)


def test_a_task_that_keeps_failing_is_recorded_with_its_reason(ran: tuple[str, Any]) -> None:
    """Run as a worker runs it (retries with backoff, then given up): the failure is in
    stage_failures, where `audit failures` lists it."""
    from audit.store.models import StageFailure

    url, tasks = ran
    fp = tasks.context().fingerprint
    result = tasks.scan.apply(kwargs={"fp": fp, "lo": "x", "hi": 5, "full": False})
    assert result.failed()
    with tasks.context().engine.connect() as conn:
        rows = conn.execute(select(StageFailure.stage, StageFailure.item, StageFailure.error)).all()
    assert [(s, i) for s, i, _ in rows] == [("cluster:scan", "scan lo=x hi=5 full=False")]
    assert rows[0][2].startswith("ProgrammingError: (psycopg.errors.UndefinedFunction)")
    env = environment(url, Path("."))
    listed = subprocess.run(
        [sys.executable, "-m", "audit", "failures"], env=env, capture_output=True, text=True
    )
    assert "cluster:scan" in listed.stdout + listed.stderr


def test_a_worker_loads_an_officers_word_list_edit_instead_of_refusing(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The coordinator's lists changed by a dashboard edit: a running worker reloads its own
    (the same edit, from the database) and takes the task; other lists are still refused."""
    from audit.cluster import tasks
    from audit.cluster.fingerprint import VersionMismatch
    from audit.domain import CATEGORIES, Role
    from audit.pipeline import load_scanner
    from audit.scan.wordlist import load_wordlists
    from audit.store import wordlist_edits
    from audit.store.access import Principal
    from audit.store.db import session_scope

    lists = tmp_path / "lists"
    lists.mkdir()
    for category in CATEGORIES:
        (lists / f"{category}.txt").write_text("加我微信\n" if category == "diversion" else "")
    settings = load_settings(
        None,
        environ={},
        overrides={
            "database": {"url": sqlite_url},
            "quality": {"models": str(tmp_path)},  # none: the lists alone
            "scan": {"wordlists": str(lists)},
        },
    )
    saved = tasks._settings, tasks._context
    tasks.use_settings(settings)
    tasks._context = None
    try:
        worker = tasks.context()
        before = dict(worker.fingerprint)
        officer = Principal(user_id=1, username="officer", role=Role.COMPLIANCE, unit_ids=None)
        with session_scope(worker.engine) as s:
            wordlist_edits.add_term(
                s,
                officer,
                load_wordlists(lists),
                category="diversion",
                term="私聊转账码",
            )
        edited = load_scanner(settings, worker.engine)  # the coordinator's, after the edit
        assert edited.wordlist_hash != before["wordlist_hash"]
        ctx = tasks._checked({**before, "wordlist_hash": edited.wordlist_hash})
        assert ctx.scanner.wordlist_hash == edited.wordlist_hash
        assert [f.rule for f in ctx.scanner.scan("私聊转账码", "staff")] == [
            "diversion.si_liao_zhuan_zhang_ma"
        ]
        with pytest.raises(VersionMismatch, match="word-list hash"):
            tasks._checked({**before, "wordlist_hash": "0" * 64})
    finally:
        tasks._settings, tasks._context = saved
