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
    images=False,  # the pictures have their own tests (tests/images); OCR is slow
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


def write_file_archive(
    directory: Path, plains: list[dict[str, Any]], seed: int = 1
) -> tuple[Path, Path]:
    """Encrypt hand-written messages into a file archive; returns (archive, key file v1)."""
    import random

    from audit.archive.keys import write_private_key
    from audit.archive.simulator.wire import PublicKey, encrypt_item, seeded_rsa_key, write_item

    rng = random.Random(seed)
    key = seeded_rsa_key(1024, rng)
    key_path = directory / "v1.pem"
    write_private_key(key, key_path)
    path = directory / "archive.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for seq, plain in enumerate(plains, 1):
            write_item(fh, encrypt_item(plain, seq, 1, PublicKey.of(key), rng))
    return path, key_path


def chat(
    msgid: str,
    sender: str,
    to: str,
    minute: int,
    text: str = "",
    msgtype: str = "text",
    **payload: Any,
) -> dict[str, Any]:
    """A one-to-one message at 2025-11-17 10:00 China time plus ``minute`` minutes."""
    base_ms = 1763344800000  # 2025-11-17T02:00:00Z
    body = payload or {"content": text}
    return {
        "msgid": msgid,
        "action": "send",
        "from": sender,
        "tolist": [to],
        "roomid": "",
        "msgtime": base_ms + minute * 60_000,
        "msgtype": msgtype,
        msgtype: body,
    }
