"""A small simulated archive shared by the integration tests (built once per session)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.archive import simulator
from audit.archive.sources import ARCHIVE_FILE
from audit.config import SimulatorConfig

SMALL = SimulatorConfig(
    seed=11,
    regions=1,
    cities_per_region=2,
    stores=3,
    staff_per_store=3,
    customers_per_staff=8,
    days=2,
    messages=2500,
    key_bits=1024,
)


@dataclass(frozen=True)
class SimArchive:
    directory: Path
    manifest: dict[str, Any]

    @property
    def archive(self) -> Path:
        return self.directory / ARCHIVE_FILE

    def items(self) -> list[dict[str, Any]]:
        with self.archive.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    def msgids(self) -> set[str]:
        return {item["msgid"] for item in self.items()}


def build(directory: Path, cfg: SimulatorConfig = SMALL) -> SimArchive:
    simulator.simulate(cfg, directory)
    manifest = json.loads((directory / simulator.MANIFEST_FILE).read_text("utf-8"))
    return SimArchive(directory, manifest)
