"""What a worker must share with its coordinator to produce the same results.

The coordinator sends its fingerprint with every task; a worker whose own differs refuses the
task (:class:`VersionMismatch`, naming what differs) instead of mixing results of two
word lists, two model versions or two schema versions in one store.
"""

from __future__ import annotations

import json
from typing import Any

from audit.config import Settings
from audit.scan.scanner import Scanner

# what is compared, and how it is named in a refusal
LABELS = {
    "wordlist_hash": "word-list hash",
    "scanner_version": "scanner version",
    "model_versions": "model versions",
    "scorecard_version": "scorecard version",
    "schema_revision": "schema revision",
}


class VersionMismatch(Exception):
    """This worker's word lists, models or schema are not the coordinator's."""


def schema_head() -> str:
    """The schema revision this code works with (the head of its migrations)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from audit.store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def fingerprint(settings: Settings, scanner: Scanner) -> dict[str, str]:
    from audit.pipeline import load_card, load_classifiers

    scorers = load_classifiers(settings)
    models: dict[str, Any] = dict(scorers.versions) if scorers else {}
    return {
        "wordlist_hash": scanner.wordlist_hash,
        "scanner_version": str(scanner.version),
        "model_versions": json.dumps(models, sort_keys=True, ensure_ascii=False),
        "scorecard_version": load_card(settings).version,
        "schema_revision": schema_head(),
    }


def differences(coordinator: dict[str, str], worker: dict[str, str]) -> list[str]:
    """One phrase per difference, e.g. ``word-list hash: coordinator 1a2b…, worker 3c4d…``."""
    out = []
    for key, label in LABELS.items():
        theirs, mine = coordinator.get(key), worker.get(key)
        if theirs != mine:
            out.append(f"{label}: coordinator {_short(theirs)}, this worker {_short(mine)}")
    return out


def check(coordinator: dict[str, str], worker: dict[str, str], host: str) -> None:
    diff = differences(coordinator, worker)
    if diff:
        raise VersionMismatch(
            f"worker {host} refuses the task, it would mix results: " + "; ".join(diff)
        )


def _short(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value if len(value) <= 24 else value[:12] + "…"
