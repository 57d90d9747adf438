"""``audit worker``: a Celery worker with the project's settings."""

from __future__ import annotations

import socket

from audit.cluster import require_cluster
from audit.config import Settings


def start_worker(
    settings: Settings,
    concurrency: int,
    queues: list[str] | None = None,
    name: str | None = None,
    loglevel: str = "INFO",
) -> None:
    """Run a worker until it is stopped (TERM: finishes its tasks; KILL: they are re-queued).

    Before taking any task it opens the database and loads the word lists and models, so
    that a worker that cannot work says so at once instead of failing task after task.
    """
    from audit.cluster.app import chosen_queues, configure, queue_names
    from audit.cluster.tasks import context, use_settings
    from audit.pipeline import open_engine

    require_cluster(settings, open_engine(settings))
    queues = chosen_queues(settings, queues) if queues else queue_names(settings)
    app = configure(settings)
    use_settings(settings)
    context()  # fails here, with the reason, if the database or the word lists cannot be read
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues)}",
        f"--loglevel={loglevel}",
        f"--hostname={name or 'audit'}@{socket.gethostname()}",
        # one process does the work when concurrency is 1 (nothing forked); else a pool
        f"--pool={'solo' if concurrency == 1 else 'prefork'}",
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv=argv)
