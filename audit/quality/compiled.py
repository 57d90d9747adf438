"""The classifiers and paraphrase detectors as plain arrays: scoring without scikit-learn.

Loading the trained pipelines imports scikit-learn and unpickles them, seconds that a command
scoring a few messages (``audit inspect``) spends before it reads its first line.
:func:`load_fast` does that once: it reads what the fitted pipelines compute with (each
vectorizer's n-gram range, vocabulary and idf, each classifier's coefficients, intercept and
sigmoid calibration) into the scan cache (``audit.scan.automaton.cache_dir``), keyed by the
bytes of the model files and scikit-learn's version; a later start loads that with numpy
alone. Scoring repeats the pipelines' arithmetic in their order (float32 TF-IDF, the l2 norm
summed in double, the dot product summed in column order), so the probabilities are the
pipelines', bit for bit (``tests/quality/test_compiled.py`` holds them to it).

Text goes through the models' own :func:`audit.quality.clf_text.normalize` and ``tokenize``.
A pipeline of another shape than ``audit train`` builds is not compiled: it is used as
loaded. Anything :func:`audit.quality.classifiers.load_scorers` refuses is refused the same.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from audit.quality.classifiers import DETECTORS, MODEL_NAMES, Scorers, load_scorers
from audit.quality.clf_text import normalize, tokenize
from audit.quality.detectors import DetectorBank

FORMAT = 1  # of the cached arrays; a change in this module's arithmetic bumps it
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's char analyzer folds these to one space
# From this many texts on, a batch is featurized and scored as one sparse matrix (scipy's
# sparse products sum each row's terms in column order, as scikit-learn's do); fewer, as
# Python rows, so that a command reading one message does not import scipy.
BATCH = 32
_COLUMN = itemgetter(1)  # of an Aho-Corasick match (end, column)

# one message's features: column indices (ascending) and float32 TF-IDF values
Row = tuple[np.ndarray, np.ndarray]


class NotCompilable(Exception):
    """The pipeline is not the shape this module computes."""


@dataclass(frozen=True)
class Vectorizer:
    """One fitted ``TfidfVectorizer`` of ``clf_text.build_features``."""

    analyzer: str  # "word" (jieba words) or "char"
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]
    idf: np.ndarray  # float32

    def ngrams(self, text: str) -> list[str]:
        doc = normalize(text)
        if self.analyzer == "char":
            doc = _WHITE_SPACES.sub(" ", doc)
            units: Sequence[str] = doc
            join = ""
        else:
            units = tokenize(doc)
            join = " "
        low, high = self.ngram_range
        out = list(units) if low == 1 else []
        for n in range(max(low, 2), min(high, len(units)) + 1):
            out += [join.join(units[i : i + n]) for i in range(len(units) - n + 1)]
        return out

    @cached_property
    def _automaton(self) -> Any:
        """The character vocabulary as an Aho-Corasick automaton: its matches in a text are
        the text's character n-grams that are in the vocabulary, each occurrence once."""
        import ahocorasick

        automaton = ahocorasick.Automaton()
        for gram, column in self.vocabulary.items():
            automaton.add_word(gram, column)
        automaton.make_automaton()
        return automaton

    def counts(self, text: str) -> Counter[int]:
        """How often each vocabulary column occurs in ``text`` (absent columns left out)."""
        doc = normalize(text)
        if self.analyzer == "char" and self.vocabulary:
            doc = _WHITE_SPACES.sub(" ", doc)
            return Counter(map(_COLUMN, self._automaton.iter(doc)))
        vocabulary = self.vocabulary
        return Counter(vocabulary[g] for g in self.ngrams(text) if g in vocabulary)

    def row(self, text: str) -> Row:
        counts: dict[int, int] = {}
        vocabulary = self.vocabulary
        for gram in self.ngrams(text):
            j = vocabulary.get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        columns = np.array(sorted(counts), dtype=np.int64)
        values = np.array([counts[j] for j in columns.tolist()], dtype=np.float32)
        np.log(values, values)  # sublinear tf
        values += 1.0
        values *= self.idf[columns]
        total = 0.0  # the l2 norm as scikit-learn sums it: float32 squares, in double
        for square in (values * values).tolist():
            total += square
        if total != 0.0:
            values = (values.astype(np.float64) / math.sqrt(total)).astype(np.float32)
        return columns, values


@dataclass(frozen=True)
class Features:
    """The ``FeatureUnion``: its vectorizers' columns side by side."""

    vectorizers: tuple[Vectorizer, ...]

    def transform(self, texts: Sequence[str]) -> Any:
        """Rows as (columns, values) pairs; a CSR matrix from ``BATCH`` texts on."""
        if len(texts) >= BATCH:
            return self.matrix(texts)
        rows = []
        for text in texts:
            columns, values, offset = [], [], 0
            for vectorizer in self.vectorizers:
                c, v = vectorizer.row(text)
                columns.append(c + offset)
                values.append(v)
                offset += len(vectorizer.vocabulary)
            rows.append((np.concatenate(columns), np.concatenate(values)))
        return rows

    def matrix(self, texts: Sequence[str]) -> Any:
        """The batch's TF-IDF rows as one float32 CSR matrix, computed as :meth:`transform`'s
        rows are: the same values in the same order, with numpy and scipy doing the
        arithmetic for the whole batch at once."""
        from scipy.sparse import csr_matrix

        columns: list[int] = []
        counts: list[int] = []
        width = len(self.vectorizers)
        lengths = np.zeros(len(texts) * width, dtype=np.int64)
        k = 0
        for text in texts:
            for vectorizer in self.vectorizers:
                found = vectorizer.counts(text)
                columns.extend(found)
                counts.extend(found.values())
                lengths[k] = len(found)
                k += 1
        sizes = [len(v.vocabulary) for v in self.vectorizers]
        offsets = np.tile(np.cumsum([0, *sizes[:-1]], dtype=np.int64), len(texts))
        cols = np.array(columns, dtype=np.int64) + np.repeat(offsets, lengths)
        # each part (one text's columns of one vectorizer) in ascending column order
        parts = len(lengths)
        order = np.argsort(np.repeat(np.arange(parts, dtype=np.int64), lengths) * sum(sizes) + cols)
        cols = cols[order]
        values = np.array(counts, dtype=np.float32)[order]
        idf = np.concatenate([v.idf for v in self.vectorizers])
        np.log(values, values)  # sublinear tf
        values += 1.0
        values *= idf[cols]
        # each vectorizer normalizes its own part of a row: the sum of float32 squares in
        # double, term by term (a sparse product with ones sums in that order)
        indptr = np.zeros(parts + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        squares = csr_matrix(
            ((values * values).astype(np.float64), cols, indptr), (parts, len(idf))
        )
        totals = squares @ np.ones(len(idf))
        norms = np.sqrt(totals)
        norms[totals == 0.0] = 1.0
        values = (values.astype(np.float64) / np.repeat(norms, lengths)).astype(np.float32)
        rows_indptr = indptr[::width]
        return csr_matrix((values, cols, rows_indptr), (len(texts), len(idf)))


@dataclass(frozen=True)
class Calibrated:
    """``CalibratedClassifierCV(LogisticRegression, method="sigmoid", ensemble=False)``."""

    coef: np.ndarray  # float64
    intercept: float
    a: float
    b: float

    def predict_proba(self, rows: Any) -> np.ndarray:
        """Probabilities of (0, 1) per row: ``rows`` as :meth:`Features.transform` gives
        them, (columns, values) pairs or a CSR matrix."""
        if not isinstance(rows, list):  # a batch's matrix: scipy's product, row by row
            decisions = rows.astype(np.float64) @ self.coef
            out = np.empty((rows.shape[0], 2))
            for i, decision in enumerate(decisions.tolist()):
                p = 1.0 / (1.0 + math.exp(self.a * (decision + self.intercept) + self.b))
                out[i] = (1.0 - p, p)
            return out
        out = np.empty((len(rows), 2))
        for i, (columns, values) in enumerate(rows):
            decision = 0.0  # scipy's sparse product: the row's terms in column order
            for x, w in zip(
                values.astype(np.float64).tolist(), self.coef[columns].tolist(), strict=True
            ):
                decision += x * w
            decision += self.intercept
            p = 1.0 / (1.0 + math.exp(self.a * decision + self.b))  # expit(-(a·d + b))
            out[i] = (1.0 - p, p)
        return out


@dataclass(frozen=True)
class Pipeline:
    features: Features
    classifier: Calibrated

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.classifier.predict_proba(self.features.transform(list(texts)))


def compile_scorers(scorers: Scorers) -> Scorers:
    """The same scorers with every pipeline compiled; NotCompilable when one cannot be."""
    pipelines: dict[str, Any] = {}
    for name, pipeline in scorers.pipelines.items():
        steps = getattr(pipeline, "steps", None)
        if not isinstance(steps, list) or len(steps) != 2:
            raise NotCompilable(f"{name}: not a features + classifier pipeline")
        pipelines[name] = Pipeline(_features(steps[0][1]), _calibrated(steps[1][1]))
    bank = scorers.detectors
    if bank is not None:
        bank = DetectorBank(
            _features(bank.features),
            {c: _calibrated(clf) for c, clf in bank.classifiers.items()},
            dict(bank.thresholds),
        )
    return Scorers(pipelines, dict(scorers.versions), dict(scorers.metadata), bank)


def _features(union: Any) -> Features:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from audit.quality import clf_text

    parts = getattr(union, "transformer_list", None)
    if not parts or getattr(union, "transformer_weights", None) is not None:
        raise NotCompilable("features: not an unweighted FeatureUnion")
    out = []
    for _, v in parts:
        plain = (
            type(v) is TfidfVectorizer
            and v.preprocessor is clf_text.normalize
            and not v.lowercase
            and v.strip_accents is None
            and v.stop_words is None
            and not v.binary
            and v.norm == "l2"
            and v.use_idf
            and v.sublinear_tf
            and v.input == "content"
            and (
                (v.analyzer == "word" and v.tokenizer is clf_text.tokenize)
                or (v.analyzer == "char" and v.tokenizer is None)
            )
            and np.dtype(v.dtype) == np.float32
            and v.idf_.dtype == np.float32
        )
        if not plain:
            raise NotCompilable(f"features: {v!r} is not clf_text's vectorizer")
        vocabulary = {str(k): int(i) for k, i in v.vocabulary_.items()}
        if sorted(vocabulary.values()) != list(range(len(vocabulary))) or len(v.idf_) != len(
            vocabulary
        ):
            raise NotCompilable("features: vocabulary and idf do not line up")
        low, high = (int(n) for n in v.ngram_range)
        out.append(Vectorizer(str(v.analyzer), (low, high), vocabulary, v.idf_.copy()))
    return Features(tuple(out))


def _calibrated(model: Any) -> Calibrated:
    from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
    from sklearn.linear_model import LogisticRegression

    inner = getattr(model, "calibrated_classifiers_", [])
    if not (
        type(model) is CalibratedClassifierCV
        and model.method == "sigmoid"
        and len(inner) == 1
        and list(model.classes_) == [0, 1]
        and type(inner[0].estimator) is LogisticRegression
        and len(inner[0].calibrators) == 1
        and type(inner[0].calibrators[0]) is _SigmoidCalibration
    ):
        raise NotCompilable(f"classifier: {model!r} is not one sigmoid-calibrated regression")
    estimator, sigmoid = inner[0].estimator, inner[0].calibrators[0]
    if estimator.coef_.shape[0] != 1 or estimator.coef_.dtype != np.float64:
        raise NotCompilable("classifier: not a binary float64 regression")
    return Calibrated(
        estimator.coef_[0].copy(),
        float(estimator.intercept_[0]),
        float(sigmoid.a_),
        float(sigmoid.b_),
    )


def cache_key(models_dir: Path) -> str | None:
    """A name for the compiled form of the models in ``models_dir``: the model files' bytes,
    scikit-learn's version and this module's format; None when a file is unreadable."""
    digest = hashlib.sha256(f"compiled-scorers|{FORMAT}".encode())
    try:
        digest.update(version("scikit-learn").encode())
        for name in (*MODEL_NAMES, DETECTORS):
            for suffix in (".json", ".joblib"):
                data = (models_dir / f"{name}{suffix}").read_bytes()
                digest.update(f"|{name}{suffix}|{len(data)}|".encode())
                digest.update(hashlib.sha256(data).digest())
    except (OSError, PackageNotFoundError):
        return None
    return f"scorers-{digest.hexdigest()[:32]}.pickle"


def load_fast(models_dir: Path, cache: Path | None) -> Scorers:
    """The scorers of ``models_dir``, compiled, from ``cache`` when it holds them; raises
    what :func:`load_scorers` raises."""
    from audit.scan.automaton import load_cached, store_cached

    key = cache_key(models_dir)
    if key is not None:
        cached = load_cached(cache, key)
        if isinstance(cached, Scorers):
            return cached
    scorers = load_scorers(models_dir)
    try:
        compiled = compile_scorers(scorers)
    except NotCompilable:
        return scorers
    if key is not None:
        store_cached(cache, key, compiled)
    return compiled
