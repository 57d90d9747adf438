"""Split the hand-written messages.txt ONCE into tuning.jsonl and test.jsonl.

    python tests/data/eval/v2/build.py

The split (:class:`audit.scan.evaluate.SplitOnce`) is seeded and stratified by (first marked
category, or "clean") x first tag. It was made once and must never change: a test checks that
the committed halves are what this script produces, and manifest.json holds their checksums.
Tune only against tuning.jsonl; test.jsonl is for the final measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

from audit.scan.evaluate import SplitOnce

SET = SplitOnce(Path(__file__).resolve().parent, ident="v2-{:04d}", seed=20261207)
build, stratum, split, outputs = SET.build, SET.stratum, SET.split, SET.outputs

if __name__ == "__main__":
    SET.main(sys.argv)
