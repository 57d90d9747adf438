"""``audit simulate``: a telecom retail chain's archive, in the real wire format.

Output directory:

* ``archive.jsonl``: chatdata items in seq order, exactly as GetChatData returns them,
  including the occasional duplicate delivery of a msgid;
* ``keys/v<N>.pem``: the private key of each ``publickey_ver`` (the key rotates mid-archive);
* ``directory.json``: the org tree, staff, customers, follow relations, tags and rooms;
* ``ground_truth.jsonl``: the violations injected, per msgid, with exact text offsets;
* ``media/`` and ``image_truth.jsonl``: the pictures of image messages, and what each shows
  (unless ``images`` is off; see :mod:`audit.archive.simulator.pictures`);
* ``manifest.json``: what was generated, from which settings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import random
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit.archive.keys import write_private_key
from audit.archive.simulator.chats import generate_messages
from audit.archive.simulator.wire import PublicKey, encrypt_item, seeded_rsa_key
from audit.archive.simulator.world import World, build_world
from audit.archive.sources import ARCHIVE_FILE
from audit.config import SimulatorConfig

log = logging.getLogger(__name__)

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
    pictures: int = 0
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


CHUNK = 2000  # messages encrypted together, each chunk with its own seeded generator


# (message, seq, publickey_ver, seq of a duplicate delivery right after it, or 0)
Pending = tuple[dict[str, Any], int, int, int]


def _encrypt_chunk(chunk_seed: str, chunk: list[Pending], keys: dict[int, PublicKey]) -> list[str]:
    rng = random.Random(chunk_seed)
    lines = []
    for plain, seq, ver, dup_seq in chunk:
        item = encrypt_item(plain, seq, ver, keys[ver], rng)
        lines.append(json.dumps(item, separators=(",", ":")) + "\n")
        if dup_seq:  # the service re-delivers a message now and then, under a new seq
            lines.append(json.dumps({**item, "seq": dup_seq}, separators=(",", ":")) + "\n")
    return lines


class _Encryptor:
    """Encrypts chunks in order, in worker processes when there are several cores.

    Each chunk's randomness comes from (seed, chunk number), so the archive is the same
    byte for byte whatever the number of workers.
    """

    def __init__(self, seed: int, keys: dict[int, PublicKey], workers: int) -> None:
        self.seed, self.keys, self.workers = seed, keys, workers
        self.count = 0
        self.pool: ProcessPoolExecutor | None = None
        self.pending: deque[Future[list[str]]] = deque()

    def __enter__(self) -> _Encryptor:
        if self.workers > 1:
            self.pool = ProcessPoolExecutor(self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, chunk: list[Pending]) -> list[list[str]]:
        """Queue a chunk; returns the chunks finished meanwhile, in order."""
        chunk_seed = f"crypt:{self.seed}:{self.count}"
        self.count += 1
        if self.pool is None:
            return [_encrypt_chunk(chunk_seed, chunk, self.keys)]
        self.pending.append(self.pool.submit(_encrypt_chunk, chunk_seed, chunk, self.keys))
        done = []
        while len(self.pending) > 2 * self.workers:  # bounded: memory stays flat
            done.append(self.pending.popleft().result())
        return done

    def drain(self) -> list[list[str]]:
        done = [f.result() for f in self.pending]
        self.pending.clear()
        return done


def simulate(
    cfg: SimulatorConfig,
    out: Path,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
) -> SimulationResult:
    """Write a simulated archive to ``out``; ``workers`` encrypt in parallel (0: per core)."""
    if not workers:
        workers = (os.cpu_count() or 1) if cfg.messages > 2 * CHUNK else 1
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)
    key_rng = random.Random(f"keys:{cfg.seed}")
    gap_rng = random.Random(f"gaps:{cfg.seed}")
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
    chunk: list[Pending] = []
    pictures = None
    if cfg.images:
        from audit.archive.simulator.pictures import PictureMaker, unavailable

        reason = unavailable()
        if reason is None:
            pictures = PictureMaker(cfg.seed, out)
        else:  # the archive is still whole; its image messages just have no files
            log.warning("simulated without pictures: %s", reason)
    with (
        (out / ARCHIVE_FILE).open("w", encoding="utf-8") as archive,
        (out / GROUND_TRUTH_FILE).open("w", encoding="utf-8") as truth,
        _Encryptor(cfg.seed, keys, workers) as encryptor,
    ):

        def flush(done: list[list[str]]) -> None:
            for lines in done:
                archive.writelines(lines)
                if progress:
                    progress(len(lines))

        for sim in generate_messages(world, cfg, rng):
            plain = sim.plain
            if pictures is not None:
                result.pictures += len(pictures.attach(plain))
            seq += 1 if gap_rng.random() > 0.01 else gap_rng.randint(2, 5)  # seqs have gaps
            msgtime = plain.get("msgtime", plain.get("time", 0))
            ver = KEY_VERSIONS[0] if msgtime < rotate_ms else KEY_VERSIONS[-1]
            result.messages += 1
            dup_seq = 0
            if result.messages % DUPLICATE_EVERY == 0:
                seq += 1
                dup_seq = seq
                result.duplicates += 1
            chunk.append((plain, seq - (1 if dup_seq else 0), ver, dup_seq))
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
            if len(chunk) == CHUNK:
                flush(encryptor.submit(chunk))
                chunk = []
        if chunk:
            flush(encryptor.submit(chunk))
        flush(encryptor.drain())
    if pictures is not None:
        pictures.close()
    result.items = result.messages + result.duplicates
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
        "pictures": result.pictures,
        "archive_sha256": digest.hexdigest(),
    }
    (result.directory / MANIFEST_FILE).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
