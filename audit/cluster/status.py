"""What ``audit status`` shows of the cluster: queue depths, workers alive, tasks failed."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.orm import Session

from audit.cluster import broker_shown
from audit.config import Settings
from audit.store.quarantine import failure_counts

FAILED_PREFIX = "cluster:"


def cluster_status(
    settings: Settings, session: Session, ping_timeout: float = 1.0
) -> dict[str, Any]:
    """``{"broker", "queues": {name: messages waiting}, "workers": [names],
    "tasks_failed": {task: n}, "error"}``; ``error`` says why the broker could not be asked."""
    failed = {
        stage[len(FAILED_PREFIX) :]: n
        for stage, n in failure_counts(session).items()
        if stage.startswith(FAILED_PREFIX)
    }
    out: dict[str, Any] = {
        "broker": broker_shown(settings),
        "queues": {},
        "workers": [],
        "tasks_failed": failed,
        "error": None,
    }
    try:
        from audit.cluster.app import configure, queue_names

        app = configure(settings)
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=ping_timeout)
            for name in queue_names(settings):
                out["queues"][name] = _depth(conn, name)
        replies = app.control.ping(timeout=ping_timeout) or []
        out["workers"] = sorted(name for reply in replies for name in reply)
    except Exception as exc:  # broker down, wrong credentials, Celery missing
        out["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return out


def _depth(conn: Any, queue: str) -> int:
    """Messages waiting in ``queue`` (0 when it was never declared)."""
    channel = conn.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception:  # NOT_FOUND closes the channel: the queue does not exist yet
        return 0
    finally:
        with contextlib.suppress(Exception):
            channel.close()
