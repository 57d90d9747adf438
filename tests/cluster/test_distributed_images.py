"""The image stage fanned out over worker processes (``images`` tasks, on their own queue)
gives the rows of a single-process ``audit run``: the pictures' readings, the per-message
records, the findings and what follows from them (scores, alerts, daily tables).

A small archive of its own, with pictures (the shared one has none, to keep the other
cluster tests fast): 800 messages, 20 pictures of 17 contents, some forwarded in chat records.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cluster_support import Worker, coordinator, environment, finish
from rows import TABLES, differences, dump
from sqlalchemy import text

from audit.config import SimulatorConfig
from audit.store.db import make_engine

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PICTURES = SimulatorConfig(
    seed=23,
    regions=1,
    cities_per_region=1,
    stores=2,
    staff_per_store=2,
    customers_per_staff=5,
    days=1,
    messages=800,
    key_bits=1024,
)
IMAGE_TABLES = (*TABLES, "image_scans", "message_images")


@pytest.fixture(scope="module")
def picture_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from audit.archive import simulator
    from audit.archive.simulator.pictures import unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("cluster-pictures") / "sim"
    simulator.simulate(PICTURES, directory, workers=1)
    return directory


def _images_env(media: Path) -> dict[str, str]:
    return {
        "AUDIT_IMAGES__ENABLED": "true",
        "AUDIT_IMAGES__WORKERS": "1",
        "AUDIT_IMAGES__BATCH_SIZE": "4",  # several tasks
        "AUDIT_MEDIA__DIRECTORY": str(media),
    }


def _state(url: str) -> tuple[dict[str, Any], int, list[Any]]:
    """The rows, the number of image runs (one per task), the failures recorded."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            runs = conn.scalar(text("select count(*) from scan_runs where mode = 'images'"))
            failures = list(conn.execute(text("select stage, item, error from stage_failures")))
        return dump(engine, IMAGE_TABLES), int(runs or 0), failures
    finally:
        engine.dispose()


def _images_line(stderr: str) -> str:
    (line,) = [x for x in stderr.splitlines() if x.startswith("images ")]
    return re.sub(r" \(\d+\.\ds\)$", "", line)


def test_image_tasks_give_the_single_process_rows(
    make_db: Callable[[], str],
    picture_archive: Path,
    workers: Callable[..., Worker],
    tmp_path: Path,
) -> None:
    single = make_db()
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "run", "--path", str(picture_archive)],
        env=environment(
            single,
            picture_archive,
            AUDIT_CLUSTER__BROKER_URL="",
            **_images_env(tmp_path / "media-single"),
        ),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    expected, single_runs, _ = _state(single)
    assert single_runs == 1
    # the pictures were read: some with findings, chat-record pictures among them
    assert len(expected["image_scans"]) == 17
    assert re.match(r"images +20 read \(17 new contents, ", _images_line(proc.stderr))
    assert sum(dict(r)["state"] == "read" for r in expected["message_images"]) == 20
    msgtype = {dict(r)["msgid"]: dict(r)["msgtype"] for r in expected["messages"]}
    read = [dict(r) for r in expected["message_images"] if dict(r)["state"] == "read"]
    assert sum(msgtype[r["message_id"][0]] == "chatrecord" for r in read) >= 1
    image_rules = [dict(r)["rule"] for r in expected["findings"]]
    assert sum(rule.startswith(("qr.", "ocr.")) for rule in image_rules) >= 3

    url = make_db()
    env = environment(url, picture_archive, **_images_env(tmp_path / "media-cluster"))
    workers("pa", env)
    workers("pb", env)
    _, err = finish(coordinator(env, picture_archive))
    rows, runs, failures = _state(url)
    # the same summary line: the tasks' counts add up to the single run's
    assert _images_line(err) == _images_line(proc.stderr)
    assert not differences(expected, rows)
    assert rows == expected
    assert runs > 1  # fanned out: one image run per task
    assert failures == []


def test_image_tasks_read_the_sdk_sources_pictures(
    make_db: Callable[[], str],
    workers: Callable[..., Worker],
    standin_sdk: Path,
    tmp_path: Path,
) -> None:
    """Pulled from the official SDK (its stand-in, tests/standin_sdk.c), the pictures are
    fetched by the ``images`` tasks through GetMediaData on the workers."""
    from standin_sdk import EXPECTED, standin_archive

    served = standin_archive(tmp_path / "wecom")
    url = make_db()
    env = environment(
        url,
        tmp_path / "no-simulated-archive",
        **_images_env(tmp_path / "media"),
        **served.env(standin_sdk),
        AUDIT_IMAGES__OCR="off",
    )
    workers("sa", env)
    _, err = finish(
        subprocess.Popen(
            [sys.executable, "-m", "audit", "run", "--distributed"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    assert _images_line(err) == (
        "images        2 read (2 new contents, 2 with QR, 0 OCR), 2 findings, backlog 0"
    )
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text(
                    "select m.msgid, f.rule, f.matched from findings f"
                    " join messages m on m.id = f.message_id where f.rule like 'qr.%'"
                )
            ).all()
            failures = list(conn.execute(text("select stage, item, error from stage_failures")))
    finally:
        engine.dispose()
    assert {m: (r, t) for m, r, t in found} == EXPECTED
    assert failures == []
