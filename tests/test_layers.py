"""The pure modules stay pure: importing the scanner (and ``audit inspect``) loads no database
library, no pandas and no simulator. Checked in a fresh interpreter, whose ``sys.modules``
shows everything the import pulled in, however indirectly. The whole layer contract is
``[tool.importlinter]`` in pyproject.toml, checked by ``make lint``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "pandas", "audit.store", "audit.archive.simulator")


def _loaded_by(module: str) -> list[str]:
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"import {module}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["audit.scan.scanner", "audit.scan.inspect"])
def test_the_scanner_loads_no_database_and_no_simulator(module: str) -> None:
    loaded = _loaded_by(module)
    assert module in loaded  # the probe really imported it
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []


def test_the_probe_sees_a_heavy_import() -> None:
    # the check above can fail: the reports do load the database library and pandas
    loaded = _loaded_by("audit.reports")
    assert "sqlalchemy" in loaded and "pandas" in loaded and "audit.store.models" in loaded
