"""The cluster's share of the command line: what ``audit run --distributed``,
``audit watch --distributed``, ``audit status`` and ``audit worker`` call (the commands
themselves only parse options and print)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from audit.archive.sources import ArchiveSource
from audit.cluster import require_cluster
from audit.config import Settings
from audit.pipeline import RunReport
from audit.progress import ProgressFactory
from audit.scan.scanner import Scanner


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def analyse_distributed_cmd(
    settings: Settings,
    engine: Engine,
    scanner: Scanner,
    progress: ProgressFactory,
    full_scan: bool = False,
) -> RunReport:
    """``audit scan [--full] --distributed``: the stages after decryption, on the workers."""
    require_cluster(settings, engine)
    from audit.cluster.coordinator import Coordinator

    return Coordinator(settings, engine, scanner, progress, _say).analyse(full_scan)


def run_distributed_cmd(
    settings: Settings,
    engine: Engine,
    source: ArchiveSource,
    scanner: Scanner,
    progress: ProgressFactory,
    full_scan: bool = False,
) -> RunReport:
    require_cluster(settings, engine)  # before anything is imported or pulled
    from audit.cluster.coordinator import run_distributed

    return run_distributed(settings, engine, source, scanner, progress, full_scan, _say)


def watch_distributed(
    settings: Settings, engine: Engine, scanner: Scanner, progress: ProgressFactory
) -> Callable[[ArchiveSource, Callable[[], bool]], RunReport]:
    """``audit watch --distributed``: what each cycle runs, under the cycle's pipeline lock."""
    require_cluster(settings, engine)  # before the first cycle
    from audit.cluster.coordinator import Coordinator

    coordinator = Coordinator(settings, engine, scanner, progress, _say)
    return lambda source, stop: coordinator.run(source, stop=stop, locked=True)


def status_lines(data: dict[str, Any]) -> list[str]:
    """``audit status``'s cluster lines (集群: cluster)."""
    lines = [f"cluster     broker {data['broker']}"]
    if data.get("error"):
        lines.append(f"cluster     broker unreachable: {data['error']}")
    else:
        depths = ", ".join(f"{q} {n}" for q, n in data["queues"].items())
        lines.append(f"queues      {depths} (waiting / 排队)")
        workers = data["workers"]
        lines.append(
            f"workers     {len(workers)} alive (在线)"
            + (f": {', '.join(workers)}" if workers else "")
        )
    failed = data["tasks_failed"]
    total = sum(failed.values())
    detail = ", ".join(f"{k} {v}" for k, v in failed.items())
    lines.append(f"tasks failed {total} (失败)" + (f": {detail} (audit failures)" if total else ""))
    return lines
