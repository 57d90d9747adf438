"""``audit run --distributed`` on two worker processes gives the rows a single-process
``audit run`` gives, also when a worker is killed in the middle of a task, and a second
coordinator pulls nothing twice; so does a cycle of ``audit watch --distributed``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cluster_support import (
    BROKER_URL,
    PREFIX,
    OtherHost,
    Worker,
    coordinator,
    environment,
    finish,
    netns_skip_reason,
)
from rows import differences, dump

from audit.store.db import make_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _rows(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        return dump(engine)
    finally:
        engine.dispose()


def _failures(url: str) -> list[tuple[str, str, str]]:
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(text("select stage, item, error from stage_failures"))
            ]
    finally:
        engine.dispose()


def _summary(stderr: str) -> list[str]:
    """The per-stage lines of the run report, without their timings."""
    names = ("directory", "pull", "decrypt", "conversations", "scan", "scores", "alerts")
    return [
        re.sub(r" \(\d+\.\ds\)$", "", line)
        for line in stderr.splitlines()
        if line.split(" ", 1)[0] in names
    ]


def _pulled(stderr: str) -> int:
    m = re.search(r"^pull +\d+ received, (\d+) new", stderr, re.M)
    assert m, stderr[-2000:]
    return int(m.group(1))


def _assert_single_process_rows(baseline: dict[str, Any], url: str) -> None:
    """The database at ``url`` holds the single-process run's rows, and no task failed."""
    assert not differences(baseline["rows"], _rows(url))
    assert _rows(url) == baseline["rows"]
    assert _failures(url) == []


def test_two_workers_give_the_single_process_rows(
    baseline: dict[str, Any],
    make_db: Callable[[], str],
    archive: Path,
    workers: Callable[..., Worker],
) -> None:
    url = make_db()
    env = environment(url, archive)
    a, b = workers("wa", env), workers("wb", env)
    _, err = finish(coordinator(env, archive))
    _assert_single_process_rows(baseline, url)
    # the same summary as `audit run` (the scan's run number aside: one per scan task)
    strip_run = lambda lines: [re.sub(r"run \d+: ", "", x) for x in lines]  # noqa: E731
    assert strip_run(_summary(err)) == strip_run(_summary(baseline["stderr"]))
    assert len(_summary(err)) == 7

    # `audit status --json`: the cluster's queues, workers and failed tasks
    status = subprocess.run(
        [sys.executable, "-m", "audit", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cluster = json.loads(status.stdout)["cluster"]
    assert cluster["error"] is None
    kinds = ("decrypt", "scan", "images", "analyse")
    assert cluster["queues"] == {f"{PREFIX}.{k}": 0 for k in kinds}
    assert {w.split("@")[0] for w in cluster["workers"]} >= {"wa", "wb"}
    assert cluster["tasks_failed"] == {}
    assert a.proc.poll() is None and b.proc.poll() is None

    # a second run finds nothing to do and changes nothing
    _, err = finish(coordinator(env, archive))
    assert _pulled(err) == 0
    assert _rows(url) == baseline["rows"]

    # a full rescan fanned out over the workers, with the same lists, changes nothing either
    rescan = subprocess.run(
        [sys.executable, "-m", "audit", "scan", "--full", "--distributed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert rescan.returncode == 0, rescan.stderr[-3000:]
    findings = len(baseline["rows"]["findings"])
    texts = sum(1 for r in baseline["rows"]["messages"] if dict(r)["text"])
    assert re.fullmatch(
        rf"scan run \d+: {texts} messages, {findings} findings, 0 stale findings removed\n",
        rescan.stdout,
    )
    assert _rows(url) == baseline["rows"]


# (table, n): the kill lands inside the n-th write to the table, i.e. inside a task of the
# stage that writes it: decrypt, conversations, scan, scores, alerts, daily tables
KILLS = [
    ("messages", 2),
    ("conversations", 3),
    ("findings", 2),
    ("scores", 2),
    ("alerts", 1),
    ("conversation_facts", 1),
]


def test_a_worker_killed_mid_task_in_every_stage_changes_nothing(
    baseline: dict[str, Any],
    make_db: Callable[[], str],
    archive: Path,
    workers: Callable[..., Worker],
) -> None:
    """One run, a worker dying in each kind of task: a worker SIGKILLs itself in the middle
    of a task of one stage; the broker gives the task to the next worker, started when the
    previous one has died (so no kill can be dodged by another worker taking every task of
    its stage) and armed to die in the next stage; the last one finishes the run. The stages
    run one after another, so each armed write is still ahead when its worker starts."""
    url = make_db()
    env = environment(url, archive)
    doomed = workers("doomed-0", env, armed=KILLS[0])
    run = coordinator(env, archive)
    for i, kill in enumerate(KILLS):
        assert doomed.proc.wait(1200) == -signal.SIGKILL, (kill, doomed.log.read_text()[-3000:])
        if i + 1 < len(KILLS):
            doomed = workers(f"doomed-{i + 1}", env, armed=KILLS[i + 1])
    workers("heir", env)
    finish(run)
    _assert_single_process_rows(baseline, url)


def test_one_distributed_watch_cycle_gives_the_single_process_rows(
    baseline: dict[str, Any],
    make_db: Callable[[], str],
    archive: Path,
    workers: Callable[..., Worker],
) -> None:
    """`audit watch --distributed`: the cycle pulls here and hands the stages to the workers."""
    url = make_db()
    env = environment(url, archive)
    workers("wa", env)
    watch = subprocess.run(
        [
            *(sys.executable, "-m", "audit", "watch", "--distributed", "--path", str(archive)),
            *("--max-cycles", "1", "--interval", "0"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert watch.returncode == 0, watch.stderr[-4000:]
    assert re.search(r"cycle 1: \+2000 envelopes, \+\d+ messages, 0 failed", watch.stderr)
    assert "stopped after 1 cycle(s)" in watch.stderr
    _assert_single_process_rows(baseline, url)


def test_a_second_coordinator_pulls_nothing_twice(
    baseline: dict[str, Any],
    make_db: Callable[[], str],
    archive: Path,
    workers: Callable[..., Worker],
) -> None:
    url = make_db()
    env = environment(url, archive)
    workers("wa", env)
    workers("wb", env)
    first, second = coordinator(env, archive), coordinator(env, archive)
    (_, err1), (_, err2) = finish(first), finish(second)
    assert sorted([_pulled(err1), _pulled(err2)]) == [0, 2000]
    assert _rows(url) == baseline["rows"]


def test_workers_on_another_host_give_the_single_process_rows(
    baseline: dict[str, Any],
    make_db: Callable[[], str],
    archive: Path,
    workers: Callable[..., Worker],
) -> None:
    """Two workers in a network namespace of their own, as on another host: the broker and
    PostgreSQL are reached over a veth link (their loopback addresses are not reachable
    from there), and the rows are the single-process run's."""
    reason = netns_skip_reason()
    if reason:
        pytest.skip(f"workers on another host not simulated: {reason}")
    url = make_db()
    env = environment(url, archive)
    with OtherHost([url, BROKER_URL]) as host:
        there = {
            **env,
            "AUDIT_DATABASE__URL": host.url(url),
            "AUDIT_CLUSTER__BROKER_URL": host.url(BROKER_URL),
        }
        assert not any(host.reaches(h, p) for h, p in host.services)  # not as they are
        assert all(host.reaches(host.address, p) for _, p in host.services)  # over the link
        remote = [workers(name, there, prefix=host.prefix) for name in ("na", "nb")]
        finish(coordinator(env, archive))
        for worker in remote:
            assert worker.proc.poll() is None, worker.log.read_text()[-3000:]
            worker.stop()
        assert all(f.bytes > 0 for f in host.forwarders.values())
    _assert_single_process_rows(baseline, url)
