"""Context judgement measured: no judgement, the rules, and a learned model, on one half of
the labelled set.

For each message: false alarm when a clean message keeps a counted finding (score >= 0.5),
recall over the labelled spans. The model is scored by 5-fold cross-validation over
messages (seeded): it is trained on the hits of four folds and judges the fifth, so it never
judges a hit it was trained on. The rules were written against the tuning half, so on that
half they have seen every message; the test half is where the two compare fairly.

``--lists`` scans with other word lists, for instance the default lists plus every
labelled span of the tuning half (what better lists would find), so that context judgement
is tried on many more hits than today's lists produce.

    python bench/context.py                                        # tuning half, default lists
    python bench/context.py --lists DIR --data tests/data/eval/v2/tuning.jsonl
    python bench/context.py --held-out tests/data/eval/v2/test.jsonl  # once, at the end
    python bench/context.py --data tests/data/eval/context/train.jsonl \
        --data tests/data/eval/v2/tuning.jsonl --data tests/data/eval/v3/tuning.jsonl \
        --held-out tests/data/eval/context/dev.jsonl

``--data`` may be repeated: the sets are pooled. ``--held-out FILE``: the model is trained on
all of ``--data`` and both are scored on FILE.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import audit.scan.scanner as scanner_module
from audit.scan.context import Decider, MessageCues, applied_cues, decide, judge
from audit.scan.context_model import LabelledHit, train
from audit.scan.evaluate import DEFAULT_MIN_SCORE, EvalMessage, load_eval_set
from audit.scan.finding import Finding
from audit.scan.normalize import Normalized, normalize
from audit.scan.scanner import Scanner

FOLDS = 5
SEED = 20261207


@dataclass(frozen=True)
class Scanned:
    message: EvalMessage
    raw: list[Finding]  # before context judgement


@dataclass(frozen=True)
class Tally:
    clean: int
    false_alarms: int
    labels: int
    found: int

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.clean + other.clean,
            self.false_alarms + other.false_alarms,
            self.labels + other.labels,
            self.found + other.found,
        )

    def line(self, name: str) -> str:
        fa = self.false_alarms / self.clean if self.clean else 0.0
        recall = self.found / self.labels if self.labels else 1.0
        return (
            f"{name:<26} false alarms {self.false_alarms:>3}/{self.clean:<3} = {fa:.3f}   "
            f"recall {self.found:>3}/{self.labels:<3} = {recall:.3f}"
        )


def scan_raw(scanner: Scanner, messages: Sequence[EvalMessage]) -> list[Scanned]:
    """Findings as the scanner made them before its context hook."""
    hook = scanner_module.judge_context

    def unjudged(
        text: str,
        norm: Normalized,
        role: str | None,
        findings: list[Finding],
        decider: Decider = decide,
    ) -> list[Finding]:
        return findings

    scanner_module.judge_context = unjudged
    try:
        return [Scanned(m, scanner.scan(m.text, m.role)) for m in messages]
    finally:
        scanner_module.judge_context = hook


def tally(scanned: Sequence[Scanned], decider: Decider | None) -> Tally:
    clean = false_alarms = labels = found = 0
    for item in scanned:
        m = item.message
        findings = item.raw
        if decider is not None:
            findings = judge(m.text, normalize(m.text), m.role, findings, decider)
        counted = [f for f in findings if f.score >= DEFAULT_MIN_SCORE]
        if not m.labels:
            clean += 1
            false_alarms += bool(counted)
        for label in m.labels:
            labels += 1
            found += any(
                f.category == label.category and f.start < label.end and label.start < f.end
                for f in counted
            )
    return Tally(clean, false_alarms, labels, found)


def labelled_hits(scanned: Sequence[Scanned]) -> list[LabelledHit]:
    hits = []
    for item in scanned:
        m = item.message
        cues = MessageCues(m.text, normalize(m.text))
        for f in item.raw:
            violation = any(
                x.category == f.category and x.start < f.end and f.start < x.end for x in m.labels
            )
            applied = tuple(applied_cues(cues, f, m.role))
            hits.append(LabelledHit(f.category, m.role, applied, violation))
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", help="repeatable, pooled")
    parser.add_argument("--lists", type=Path, default=Path("wordlists"))
    parser.add_argument("--held-out", type=Path, help="score on this set, trained on --data")
    args = parser.parse_args()
    data = args.data or [Path("tests/data/eval/v2/tuning.jsonl")]
    scanner = Scanner.from_directory(args.lists)
    scanned = scan_raw(scanner, [m for path in data for m in load_eval_set(path)])
    if args.held_out:
        fitted = train(labelled_hits(scanned), seed=SEED)
        held = scan_raw(scanner, load_eval_set(args.held_out))
        trained = ", ".join(map(str, data))
        print(f"{len(held)} messages from {args.held_out}, model trained on {trained}")
        print(tally(held, None).line("no context judgement"))
        print(tally(held, decide).line("rules"))
        print(tally(held, fitted.decide).line("model"))
        return
    order = list(range(len(scanned)))
    random.Random(SEED).shuffle(order)
    folds = [sorted(order[i::FOLDS]) for i in range(FOLDS)]
    model = Tally(0, 0, 0, 0)
    for k, fold in enumerate(folds):
        rest = [scanned[i] for j, f in enumerate(folds) if j != k for i in f]
        fitted = train(labelled_hits(rest), seed=SEED)
        model = model + tally([scanned[i] for i in fold], fitted.decide)
    with_cues = [h for h in labelled_hits(scanned) if h.applied]
    print(f"{len(scanned)} messages from {', '.join(map(str, data))}, lists {args.lists}")
    print(
        f"{len(with_cues)} hits with cues "
        f"({sum(h.violation for h in with_cues)} violations, "
        f"{sum(not h.violation for h in with_cues)} clean)"
    )
    print(tally(scanned, None).line("no context judgement"))
    print(tally(scanned, decide).line("rules"))
    print(model.line(f"model ({FOLDS}-fold)"))


if __name__ == "__main__":
    main()
