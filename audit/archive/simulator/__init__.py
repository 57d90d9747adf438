"""``audit simulate``: a telecom retail chain's archive, in the real wire format.

Output directory:

* ``archive.jsonl``: chatdata items in seq order, exactly as GetChatData returns them,
  including the occasional duplicate delivery of a msgid;
* ``keys/v<N>.pem``: the private key of each ``publickey_ver`` (the key rotates mid-archive);
* ``directory.json``: the org tree, staff, customers, follow relations, tags and rooms;
* ``ground_truth.jsonl``: the violations injected, per msgid, with exact text offsets;
* ``manifest.json``: what was generated, from which settings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit.archive.keys import write_private_key
from audit.archive.simulator.chats import generate_messages
from audit.archive.simulator.wire import PublicKey, encrypt_item, seeded_rsa_key, write_item
from audit.archive.simulator.world import World, build_world
from audit.archive.sources import ARCHIVE_FILE
from audit.config import SimulatorConfig

DIRECTORY_FILE = "directory.json"
GROUND_TRUTH_FILE = "ground_truth.jsonl"
MANIFEST_FILE = "manifest.json"
KEY_VERSIONS = (1, 2)
DUPLICATE_EVERY = 997  # a re-delivered msgid now and then, as the real service does


@dataclass
class SimulationResult:
    directory: Path
    messages: int = 0
    items: int = 0
    duplicates: int = 0
    violations: int = 0
    first_seq: int = 0
    last_seq: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    key_versions: tuple[int, ...] = KEY_VERSIONS

    def key_files(self) -> dict[int, Path]:
        return {v: self.directory / "keys" / f"v{v}.pem" for v in self.key_versions}


def key_files(directory: Path) -> dict[int, Path]:
    """The private keys a simulated archive was written with, by version."""
    out: dict[int, Path] = {}
    for path in sorted((directory / "keys").glob("v*.pem")):
        if path.stem[1:].isdigit():
            out[int(path.stem[1:])] = path
    return out


def load_world(directory: Path) -> World:
    with (directory / DIRECTORY_FILE).open(encoding="utf-8") as fh:
        return World.from_json(json.load(fh))


def _msg_type(plain: dict[str, Any]) -> str:
    if plain.get("action") == "switch":
        return "switch"
    return str(plain.get("msgtype", ""))


def simulate(
    cfg: SimulatorConfig,
    out: Path,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)
    key_rng = random.Random(f"keys:{cfg.seed}")
    crypt_rng = random.Random(f"crypt:{cfg.seed}")
    world = build_world(cfg, rng)
    (out / DIRECTORY_FILE).write_text(
        json.dumps(world.to_json(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    keys = {}
    for ver in KEY_VERSIONS:
        private = seeded_rsa_key(cfg.key_bits, key_rng)
        write_private_key(private, out / "keys" / f"v{ver}.pem", pkcs8=ver % 2 == 0)
        keys[ver] = PublicKey.of(private)

    start = dt.datetime.fromisoformat(cfg.start).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    rotate_ms = int((start + dt.timedelta(days=cfg.days / 2)).timestamp() * 1000)

    result = SimulationResult(out)
    seq = 1000 + rng.randrange(1000)
    result.first_seq = seq + 1
    last_item: dict[str, Any] | None = None
    with (
        (out / ARCHIVE_FILE).open("w", encoding="utf-8") as archive,
        (out / GROUND_TRUTH_FILE).open("w", encoding="utf-8") as truth,
    ):
        for sim in generate_messages(world, cfg, rng):
            plain = sim.plain
            seq += 1 if crypt_rng.random() > 0.01 else crypt_rng.randint(2, 5)  # seqs have gaps
            msgtime = plain.get("msgtime", plain.get("time", 0))
            ver = KEY_VERSIONS[0] if msgtime < rotate_ms else KEY_VERSIONS[-1]
            item = encrypt_item(plain, seq, ver, keys[ver], crypt_rng)
            write_item(archive, item)
            result.messages += 1
            result.items += 1
            result.by_type[_msg_type(plain)] += 1
            if sim.violations:
                truth.write(
                    json.dumps(
                        {
                            "msgid": plain["msgid"],
                            "violations": [asdict(v) for v in sim.violations],
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                result.violations += len(sim.violations)
                result.by_category.update(v.category for v in sim.violations)
            if last_item is not None and result.messages % DUPLICATE_EVERY == 0:
                seq += 1
                write_item(archive, {**last_item, "seq": seq})
                result.items += 1
                result.duplicates += 1
            last_item = item
            if progress:
                progress(1)
    result.last_seq = seq
    _write_manifest(cfg, result)
    return result


def _write_manifest(cfg: SimulatorConfig, result: SimulationResult) -> None:
    digest = hashlib.sha256()
    with (result.directory / ARCHIVE_FILE).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    manifest = {
        "settings": cfg.model_dump(mode="json"),
        "messages": result.messages,
        "items": result.items,
        "duplicates": result.duplicates,
        "first_seq": result.first_seq,
        "last_seq": result.last_seq,
        "key_versions": list(result.key_versions),
        "by_type": dict(sorted(result.by_type.items())),
        "violations": result.violations,
        "violations_by_category": dict(sorted(result.by_category.items())),
        "archive_sha256": digest.hexdigest(),
    }
    (result.directory / MANIFEST_FILE).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
