"""The Celery application, configured from the project's settings (``[cluster]``).

Delivery is at least once: a task is acknowledged only when it has finished
(``task_acks_late``), put back on its queue when the worker running it dies
(``task_reject_on_worker_lost``), and each worker process reserves one task at a time
(prefetch 1), so a dead worker strands at most the task it was running. The stages are
idempotent, which makes a second delivery harmless.

``celery -A audit.cluster.app worker`` works too (Flower: ``celery -A audit.cluster.app
flower``): the settings then come from ``AUDIT_CONFIG`` and the ``AUDIT_*`` environment.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from audit.cluster import ClusterError
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
        result_backend=cfg.result_backend,
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
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        result_expires=24 * 3600,
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
