"""Task results that outlive a broker restart.

Celery's ``rpc://`` backend sends each result to a reply queue of the coordinator's, which
it declares to be deleted with its last consumer: when the broker restarts, the queue goes
with the coordinator's connection, and a result a worker sends before the coordinator has
declared it again is dropped. The stage would then wait for a result that never comes.

Here the reply queue stays (durable, not deleted with its consumer; the coordinator deletes
it when its run is over, and the broker when nobody has used it for ``result_expires``) and
the results are persistent messages, so a result sent while the coordinator reconnects waits
in the queue for it. A worker sending a result while the broker is down keeps trying for
about ten minutes (:data:`PUBLISH_RETRY`, also the coordinator's policy for sending tasks).
"""

from __future__ import annotations

from typing import Any

from celery.backends.rpc import RPCBackend

# publishing while the broker is down: try again every few seconds, about ten minutes long
PUBLISH_RETRY: dict[str, Any] = {
    "max_retries": 120,
    "interval_start": 0,
    "interval_step": 1,
    "interval_max": 5,
}

RPC_URLS = ("rpc://", "rpc")
BACKEND = f"{__name__}:DurableRPCBackend"


class DurableRPCBackend(RPCBackend):
    retry_policy = PUBLISH_RETRY

    @property
    def binding(self) -> Any:
        return self.Queue(
            self.oid,
            self.exchange,
            self.oid,
            durable=True,
            auto_delete=False,
            expires=self.expires,
        )

    def as_uri(self, include_password: bool = True) -> str:
        return "rpc://"
