"""``audit worker --queues``: queues by kind or full name, the ``images`` queue among them, and
a clear refusal of a name that is no queue of the project's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cluster_support import environment

from audit.cluster import ClusterError
from audit.cluster.app import KINDS, chosen_queues, queue_names
from audit.config import load_settings


def test_queues_are_named_by_kind_or_in_full() -> None:
    settings = load_settings(None, environ={"AUDIT_CLUSTER__QUEUE_PREFIX": "corp"})
    assert KINDS == ("decrypt", "scan", "images", "analyse")
    assert queue_names(settings) == ["corp.decrypt", "corp.scan", "corp.images", "corp.analyse"]
    assert chosen_queues(settings, ["images"]) == ["corp.images"]
    assert chosen_queues(settings, ["corp.images", " scan", "images"]) == [
        "corp.images",
        "corp.scan",
    ]
    with pytest.raises(ClusterError, match=r"no queue 'ocr'; the queues are decrypt, scan, images"):
        chosen_queues(settings, ["images", "ocr"])
    with pytest.raises(ClusterError, match=r"no queue 'audit\.images'"):
        chosen_queues(settings, ["audit.images"])  # another prefix's


@pytest.mark.postgres
def test_a_worker_given_an_unknown_queue_refuses_to_start(
    make_db: Callable[[], str], tmp_path: Path
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "worker", "--queues", "images,pictures"],
        env=environment(make_db(), tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "--queues: no queue 'pictures'; the queues are decrypt, scan, images, analyse" in (
        proc.stderr
    )
