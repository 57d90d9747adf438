"""The Celery application, configured from the project's settings (``[cluster]``).

Delivery is at least once: a task is acknowledged only when it has finished
(``task_acks_late``), put back on its queue when the worker running it dies
(``task_reject_on_worker_lost``), and each worker process reserves one task at a time
(prefetch 1), so a dead worker strands at most the task it was running. The stages are
idempotent, which makes a second delivery harmless.

A broker restart loses nothing: the task queues are durable and their messages persistent,
every message sent is confirmed by the broker (else sent again, :data:`PUBLISH_RETRY`),
workers reconnect for as long as it takes, a task running meanwhile is run again (its
acknowledgement went with the old connection), and the results travel through a reply queue
that outlives the restart (:mod:`audit.cluster.results`); the coordinator reconnects while
it waits (:mod:`audit.cluster.coordinator`).

``celery -A audit.cluster.app worker`` works too (Flower: ``celery -A audit.cluster.app
flower``): the settings then come from ``AUDIT_CONFIG`` and the ``AUDIT_*`` environment.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from audit.cluster import ClusterError
from audit.cluster.results import BACKEND, PUBLISH_RETRY, RPC_URLS
from audit.config import ConfigError, Settings, load_settings

app = Celery("audit", include=["audit.cluster.tasks"])

# the queues, by the kind of work: CPU-bound (decrypt, scan), pictures (QR and OCR: slow, and
# only on hosts with the ``images`` extra) and database-bound (the rest)
KINDS = ("decrypt", "scan", "images", "analyse")


def queue_names(settings: Settings) -> list[str]:
    return [f"{settings.cluster.queue_prefix}.{kind}" for kind in KINDS]


def chosen_queues(settings: Settings, names: Sequence[str]) -> list[str]:
    """The queues ``audit worker --queues`` names, by kind (``images``) or in full
    (``audit.images``); a name of no queue of the project's is an error listing them."""
    known = queue_names(settings)
    out = []
    for name in (n.strip() for n in names):
        queue = f"{settings.cluster.queue_prefix}.{name}" if name in KINDS else name
        if queue not in known:
            raise ClusterError(
                f"--queues: no queue {name!r}; the queues are {', '.join(KINDS)} "
                f"({', '.join(known)})"
            )
        if queue not in out:
            out.append(queue)
    return out


def configure(settings: Settings) -> Celery:
    """Point :data:`app` at the configured broker, with the project's delivery policy."""
    cfg = settings.cluster
    prefix = cfg.queue_prefix
    app.conf.update(
        broker_url=cfg.broker_url,
        result_backend=BACKEND if cfg.result_backend in RPC_URLS else cfg.result_backend,
        result_persistent=True,
        broker_transport_options={"confirm_publish": True},
        task_publish_retry=True,
        task_publish_retry_policy=PUBLISH_RETRY,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=f"{prefix}.analyse",
        task_routes={
            "audit.cluster.tasks.decrypt": {"queue": f"{prefix}.decrypt"},
            "audit.cluster.tasks.scan": {"queue": f"{prefix}.scan"},
            "audit.cluster.tasks.images": {"queue": f"{prefix}.images"},
            "audit.cluster.tasks.*": {"queue": f"{prefix}.analyse"},
        },
        task_annotations={
            "*": {"max_retries": cfg.max_retries, "retry_backoff_max": cfg.retry_backoff_max}
        },
        broker_connection_retry_on_startup=True,
        broker_connection_retry=True,
        broker_connection_max_retries=None,  # a worker waits for the broker however long
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # a result is waited for at most task_timeout; twice that leaves room for an outage
        result_expires=2 * cfg.task_timeout,
        timezone=settings.quality.timezone,
        enable_utc=True,
    )
    return app


def _from_environment() -> None:
    """Configured at import from the environment, for ``celery -A audit.cluster.app``;
    ``audit worker`` and ``audit run --distributed`` configure it again from their settings."""
    try:
        settings = load_settings()
    except ConfigError:
        return
    if settings.cluster.broker_url:
        configure(settings)


_from_environment()
