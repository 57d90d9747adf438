"""The classifiers compiled to arrays score exactly as the trained pipelines do, and a start
from the cache does without scikit-learn."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audit.quality.classifiers import load_scorers
from audit.quality.compiled import BATCH, Pipeline, cache_key, compile_scorers, load_fast
from audit.resources import SOURCE_ROOT

MODELS = SOURCE_ROOT / "models"
DATA = SOURCE_ROOT / "tests" / "data" / "quality"


def _texts() -> list[str]:
    texts = [
        json.loads(line)["text"]
        for path in sorted(DATA.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rng = random.Random(3)
    alphabet = "0123456789-\u200b 加我微信电话号码qQ@.abc，。！？您哦呢~\u3000１＠\t\n"
    hostile = [
        "",
        " ",
        "\u200b",
        "\n\n  \t",
        "1-" * 3000,
        "1\u200b" * 3000,
        "加我微信" * 1000,
        "".join(rng.choice(alphabet) for _ in range(5000)),
        *("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80))) for _ in range(300)),
    ]
    return texts + hostile


@pytest.fixture(scope="module")
def both() -> tuple[object, object]:
    scorers = load_scorers(MODELS)
    return scorers, compile_scorers(scorers)


def test_compiled_probabilities_are_the_pipelines_bit_for_bit(both: tuple) -> None:  # type: ignore[type-arg]
    scorers, compiled = both
    texts = _texts()
    assert len(texts) > 1500
    for name, pipeline in scorers.pipelines.items():
        fast = compiled.pipelines[name]
        assert isinstance(fast, Pipeline)
        assert np.array_equal(fast.predict_proba(texts), pipeline.predict_proba(texts)), name
    assert np.array_equal(
        compiled.detectors.predict_proba(texts), scorers.detectors.predict_proba(texts)
    )
    roles = [("staff", "customer", None)[i % 3] for i in range(len(texts))]
    assert compiled.score_many(texts, roles) == scorers.score_many(texts, roles)
    assert compiled.detect_many(texts, roles) == scorers.detect_many(texts, roles)
    assert compiled.versions == scorers.versions


def test_rows_and_batch_matrices_score_alike(both: tuple) -> None:  # type: ignore[type-arg]
    """A few texts are featurized row by row, a batch as one sparse matrix (``BATCH``): both
    give the pipelines' probabilities bit for bit, whatever the batch's size."""
    scorers, compiled = both
    texts = _texts()
    features = compiled.detectors.features
    assert isinstance(features.transform(texts[: BATCH - 1]), list)
    assert not isinstance(features.transform(texts[:BATCH]), list)
    rng = random.Random(11)
    start = 0
    while start < len(texts):
        size = rng.choice([1, 2, BATCH - 1, BATCH, BATCH + 1, 200])
        chunk = texts[start : start + size]
        start += size
        for name, pipeline in scorers.pipelines.items():
            fast = compiled.pipelines[name].predict_proba(chunk)
            assert np.array_equal(fast, pipeline.predict_proba(chunk)), (name, size)
        assert np.array_equal(
            compiled.detectors.predict_proba(chunk), scorers.detectors.predict_proba(chunk)
        )


def test_a_start_from_the_cache_imports_no_scikit_learn(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load_fast(MODELS, cache)
    assert (cache / str(cache_key(MODELS))).is_file()
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from audit.quality.compiled import load_fast\n"
        f"s = load_fast(Path({str(MODELS)!r}), Path({str(cache)!r}))\n"
        "out = s.score_many(['说了多少遍了', '我要投诉你们'], ['staff', 'customer'])\n"
        "print(json.dumps([out, 'sklearn' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        cwd=SOURCE_ROOT,
    )  # fmt: skip
    scores, imported = json.loads(done.stdout)
    assert imported is False
    assert scores == first.score_many(["说了多少遍了", "我要投诉你们"], ["staff", "customer"])


def test_other_model_bytes_are_another_key(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for path in MODELS.iterdir():
        (models / path.name).write_bytes(path.read_bytes())
    before = cache_key(models)
    meta = models / "staff_discourtesy.json"
    meta.write_text(meta.read_text(encoding="utf-8") + " ", encoding="utf-8")
    assert cache_key(models) not in (None, before)
    (models / "detectors.joblib").unlink()
    assert cache_key(models) is None
