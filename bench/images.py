"""The image stage: how fast and how well it reads the simulator's pictures.

Simulates an archive with pictures (a seed the decoder and word lists were not tuned on),
then, on one core:

* the QR pass (OpenCV decode) and OCR (RapidOCR) in images per second, over every distinct
  picture;
* QR recall on personal contact, group and payment codes (the payload decoded and classified
  as such), and the operator's own codes (official account, WeCom contact) flagged;
* OCR-based privacy findings on screenshots with a phone, ID or bank card number (recall:
  the number found), and false alarms (any finding) on ordinary pictures (photos, plan
  pages, bills);
* with ``--pipeline``: the share of ``audit run``'s time the image stage takes, on a fresh
  SQLite database over the same archive (all stages, default settings, one image worker).

Counts are per picture in the archive (a picture sent twice counts twice, as a reviewer
would see it) and per distinct content.

    python bench/images.py                          # 40,000 messages (the demo), seed 11
    python bench/images.py --messages 8000 --pipeline
    python bench/images.py --sim data/sim           # an archive made before
    python bench/images.py --sim data/sim --pipeline --ocr flagged
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np

from audit.archive import simulator
from audit.archive.simulator.pictures import IMAGE_TRUTH_FILE, MEDIA_DIR
from audit.config import ImagesConfig, SimulatorConfig, load_settings
from audit.images.ocr import read_lines
from audit.images.qr import decode
from audit.images.read import ImageReading, image_findings
from audit.pipeline import load_scanner

QR_KINDS = {"personal_qr", "group_qr", "pay_wechat", "pay_alipay"}
OWN_KINDS = {"official_qr", "wecom_qr"}
PRIVACY_KINDS = {"shot_phone", "shot_id", "shot_bank"}
ORDINARY_KINDS = {"photo", "plan_page", "bill"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", type=Path, help="Use this simulated archive instead of making one.")
    ap.add_argument("--messages", type=int, default=40_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--pipeline", action="store_true", help="Also time audit run on it.")
    ap.add_argument("--ocr", default="all", help="[images] ocr for --pipeline: all|flagged|off")
    ap.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-images-"))
    sim = args.sim
    if sim is None:
        sim = tmp / "sim"
        t0 = time.perf_counter()
        cfg = SimulatorConfig(seed=args.seed, messages=args.messages)
        simulator.simulate(cfg, sim)
        print(f"simulated {args.messages} messages in {time.perf_counter() - t0:.1f}s -> {sim}")
    truth = [json.loads(line) for line in (sim / IMAGE_TRUTH_FILE).open(encoding="utf-8")]
    shas = sorted({t["sha256"] for t in truth})
    images = {
        sha: np.asarray(
            cv2.imdecode(
                np.frombuffer((sim / MEDIA_DIR / f"{sha}.png").read_bytes(), np.uint8),
                cv2.IMREAD_COLOR,
            ),
            dtype=np.uint8,
        )
        for sha in shas
    }
    t0 = time.perf_counter()
    codes = {sha: tuple(decode(img)) for sha, img in images.items()}
    qr_s = time.perf_counter() - t0
    read_lines(images[shas[0]])  # load the model outside the timing
    t0 = time.perf_counter()
    lines = {sha: tuple(read_lines(img)) for sha, img in images.items()}
    ocr_s = time.perf_counter() - t0

    scanner = load_scanner(load_settings(None, environ={}))
    allow = tuple(ImagesConfig().allow_payloads)
    figures: dict[str, Any] = {
        "pictures": len(truth),
        "distinct": len(shas),
        "by_kind": dict(sorted(Counter(t["kind"] for t in truth).items())),
        "qr_images_per_s": round(len(shas) / qr_s, 1),
        "ocr_images_per_s": round(len(shas) / ocr_s, 2),
        "ocr_s_per_image": round(ocr_s / len(shas), 3),
    }
    for scope, rows in (("per_picture", truth), ("per_content", _distinct(truth))):
        hit: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for t in rows:
            reading = ImageReading(codes[t["sha256"]], lines[t["sha256"]])
            found = image_findings(reading, scanner, t["role"], allow)
            kind = t["kind"]
            if kind in QR_KINDS:
                total["qr"] += 1
                hit["qr"] += any(
                    f.finding.rule.startswith("qr.") and f.detail["payload"] == t["content"]
                    for f in found
                )
            elif kind in OWN_KINDS:
                total["own"] += 1
                hit["own"] += bool(found)
            elif kind in PRIVACY_KINDS:
                total["privacy"] += 1
                hit["privacy"] += any(
                    f.finding.category == "privacy" and f.finding.matched == t["content"]
                    for f in found
                )
            else:
                total["ordinary"] += 1
                hit["ordinary"] += bool(found)
        figures[scope] = {
            "qr_recall": _ratio(hit["qr"], total["qr"]),
            "own_codes_flagged": f"{hit['own']}/{total['own']}",
            "privacy_recall": _ratio(hit["privacy"], total["privacy"]),
            "ordinary_false_alarm_rate": _ratio(hit["ordinary"], total["ordinary"]),
        }
    if args.pipeline:
        figures["pipeline"] = _pipeline(sim, tmp, args.ocr)
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} cores (timed on one)"
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", "utf-8")


def _distinct(truth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for t in truth:
        seen.setdefault((t["sha256"], t["role"]), t)
    return list(seen.values())


def _ratio(hit: int, total: int) -> str:
    return f"{hit}/{total} = {hit / total:.3f}" if total else "0/0"


def _pipeline(sim: Path, tmp: Path, ocr: str) -> dict[str, Any]:
    from audit.archive.sources import SimulatedServer
    from audit.pipeline import key_files, load_keys, open_engine, run
    from audit.store.db import migrate

    settings = load_settings(
        None,
        environ={},
        overrides={
            "database": {"url": f"sqlite:///{tmp / 'bench.db'}"},
            "archive": {"simulator_dir": str(sim)},
            "media": {"directory": str(tmp / "media")},
            "images": {"workers": 1, "ocr": ocr},
        },
    )
    engine = open_engine(settings, check_schema=False)
    migrate(engine)
    source = SimulatedServer(sim)
    keys = load_keys(settings, key_files(settings, source))
    report = run(settings, engine, source, keys, load_scanner(settings))
    total = sum(report.seconds.values())
    return {
        "ocr": ocr,
        "seconds": {k: round(v, 1) for k, v in report.seconds.items()},
        "images_share": round(report.seconds.get("images", 0.0) / total, 3),
        "images": report.as_dict().get("images"),
    }


if __name__ == "__main__":
    main()
