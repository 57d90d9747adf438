"""Helpers of the cluster tests (broker, databases, worker processes), importable by the test
modules as ``cluster_support`` (every test directory has its own ``conftest``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from audit.config import SimulatorConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BROKER_URL = os.environ.get("AUDIT_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
PREFIX = f"audittest{uuid.uuid4().hex[:8]}"
ARCHIVE = SimulatorConfig(
    seed=23,
    regions=1,
    cities_per_region=2,
    stores=3,
    staff_per_store=3,
    customers_per_staff=8,
    days=2,
    messages=2000,
    key_bits=1024,
    images=False,
)
# several tasks per stage, so that a worker can die in the middle of one and others remain
TASK_SIZES = {
    "AUDIT_CLUSTER__DECRYPT_BATCH": "500",
    "AUDIT_CLUSTER__SCAN_BATCH": "500",
    "AUDIT_CLUSTER__SCORE_BATCH": "150",
    "AUDIT_CLUSTER__PARTITIONS": "4",
    "AUDIT_CLUSTER__MAX_RETRIES": "2",
    "AUDIT_CLUSTER__RETRY_BACKOFF_MAX": "2",
    "AUDIT_CLUSTER__TASK_TIMEOUT": "900",
}


def delete_queues(broker: str, prefix: str) -> None:
    """The session's queues (durable: they would outlive it)."""
    from kombu import Connection

    from audit.cluster.app import KINDS

    with Connection(broker, connect_timeout=3) as conn:
        for kind in KINDS:
            channel = conn.channel()
            try:
                channel.queue_delete(queue=f"{prefix}.{kind}")
            except Exception:  # never declared in this session
                pass
            finally:
                with contextlib.suppress(Exception):
                    channel.close()


def environment(db_url: str, archive: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
            "AUDIT_DATABASE__URL": db_url,
            "AUDIT_ARCHIVE__SIMULATOR_DIR": str(archive),
            "AUDIT_IMAGES__ENABLED": "false",
            "AUDIT_CLUSTER__BROKER_URL": BROKER_URL,
            "AUDIT_CLUSTER__QUEUE_PREFIX": PREFIX,
            "C_FORCE_ROOT": "1",  # containers run as root
            **TASK_SIZES,
            **extra,
        }
    )
    if os.environ.get("AUDIT_SCAN_CACHE"):
        env["AUDIT_SCAN_CACHE"] = os.environ["AUDIT_SCAN_CACHE"]
    return env


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def coordinator(env: dict[str, str], archive: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "audit", "run", "--distributed", "--path", str(archive), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 1200) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-4000:]}"
    return out, err
