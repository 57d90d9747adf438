"""The pipeline spread over worker hosts: Celery tasks over a broker, one PostgreSQL store.

``audit run --distributed`` (:mod:`audit.cluster.coordinator`) pulls and stores the envelopes
itself, under the pipeline's advisory lock, then hands each stage to the workers as tasks
(:mod:`audit.cluster.tasks`) and waits for them stage by stage; ``audit worker``
(:mod:`audit.cluster.worker`) runs the tasks. The tasks wrap the very stage functions that
``audit run`` calls, over one range or partition each, so that a distributed run and a
single-process run leave the same rows.

Nothing here is imported by the single-process pipeline: Celery is needed only on hosts
that run a coordinator or a worker (``pip install 'wecom-audit[cluster]'``).
"""

from __future__ import annotations

from sqlalchemy import Engine

from audit.config import ConfigError, Settings, mask_url


class ClusterError(Exception):
    """The cluster cannot do what was asked; worded for the operator."""


def require_cluster(settings: Settings, engine: Engine) -> None:
    """Distributed mode needs PostgreSQL, a broker and Celery: refuse clearly otherwise."""
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            f"distributed mode needs PostgreSQL (database.url is {engine.dialect.name}): "
            "workers on several hosts cannot share a SQLite file"
        )
    if not settings.cluster.broker_url:
        raise ConfigError(
            "distributed mode needs a broker: set [cluster] broker_url "
            "(or AUDIT_CLUSTER__BROKER_URL), e.g. amqp://USER:PASSWORD@HOST:5672/VHOST"
        )
    try:
        import celery  # noqa: F401
    except ImportError:
        raise ConfigError(
            "distributed mode needs Celery: pip install 'wecom-audit[cluster]'"
        ) from None


def broker_shown(settings: Settings) -> str:
    return mask_url(settings.cluster.broker_url)
