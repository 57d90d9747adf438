"""Paraphrase detectors: one calibrated message-level model per finding category, for what a
word list cannot enumerate ("走我自己的号", "私下找我", "我敢拍胸脯").

Each detector runs on the roles its category applies to (diversion, promise and fraud on
staff messages, complaint on customer messages, abuse, privacy and illegal on both) and
reports a finding with rule ``model.<category>`` only when its calibrated probability reaches
the threshold chosen at training time for precision (model card ``models/detectors.md``), and
only when the word lists found nothing of that category in the message: a listed term
explains itself better.

A finding spans the whole message, but it is judged in context like a listed hit
(``audit.scan.context.excuse`` with ``MODEL_RULES``): ``locate`` finds the words that weigh
most for the category (each TF-IDF feature's share of the linear score, spread over the
characters it covers, mapped back to the original text), and a negation, a question, a past,
a condition, a quotation ... reaching those words drops the finding. 「不存在稳赚不赔的产品」
「她说“你们都是骗子”」 then stay quiet while 「稳赚不赔」 alone is reported.

The bank is pickled by reference inside ``models/detectors.joblib``: the class name and module
path are part of the artifact format. ``audit train`` builds it (``detect_train``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.domain import Severity
from audit.quality import clf_text
from audit.scan.context import (
    MODEL_RULES,
    NEGATION,
    NEGATION_REACH,
    QUOTATION,
    Policy,
    cue_spans,
    excuse,
    reported_spans,
)
from audit.scan.finding import Finding, listed_categories
from audit.scan.segment import tokenizer

CATEGORIES = ("diversion", "promise", "fraud", "abuse", "complaint", "privacy", "illegal")
# Which roles a category's detector reads; a message of unknown role (None) gets all.
CATEGORY_ROLES: dict[str, frozenset[str]] = {
    "diversion": frozenset({"staff"}),
    "promise": frozenset({"staff"}),
    "fraud": frozenset({"staff"}),
    "abuse": frozenset({"staff", "customer"}),
    "complaint": frozenset({"customer"}),
    # staff asking for codes, passwords or ID photos; a customer sending them
    "privacy": frozenset({"staff", "customer"}),
    # gambling, drugs, sex, weapons, fake base stations: offered or sought by either side
    "illegal": frozenset({"staff", "customer"}),
}
# A model finding has no listed term behind it: medium, so it is reviewed, not escalated.
SEVERITY: dict[str, Severity] = {c: Severity.MEDIUM for c in CATEGORIES}
DIGITS = 4
# The located words: the character weighing most and its neighbours weighing at least this
# share of it, at most SPAN_LIMIT characters.
SPAN_SHARE = 0.5
SPAN_LIMIT = 8
# A finding whose category's positive weight lies at least this much in quoted or reported
# words (「...」, 他说...) is someone else's words, wherever its heaviest characters are.
REPORTED_SHARE = 0.5
# A message that normalizes to fewer characters says too little to paraphrase anything: 「人呢」
# (人, its particle dropped) would weigh as the 人 of 贱人. One-character insults are listed.
MIN_CHARS = 2
# Words that say nothing of a category but open or glue many of its seeds (这个价格..., 我们...):
# a feature made of nothing else keeps its weight in the probability but is left out when the
# words a finding rests on are located, so that 「这个理财不保本」 is located on 保本 (and
# judged negated), not on 这个.
GENERIC = frozenset("这那个些我你他她它们的了是也都就还在和与跟给把被吗吧啊嘛么")
# A negator is part of the violation when the category's weight lies in words that run from
# it into the located words (不用本人, 不会涨价, 无实名): at least this much of the linear score
# (coefficient x TF-IDF). 不保证收益 weighs the other way and stays negated.
NEGATED_WEIGHT = 0.1
# MODEL_RULES without negation, for a finding whose negator is part of what it found
_UNNEGATED: Policy = {
    c: {k: v for k, v in rules.items() if k != NEGATION} for c, rules in MODEL_RULES.items()
}


@dataclass
class DetectorBank:
    """Shared text features and one calibrated classifier per category."""

    features: Any  # a fitted clf_text FeatureUnion
    classifiers: dict[str, Any]  # category -> fitted CalibratedClassifierCV
    thresholds: dict[str, float]  # category -> lowest probability that is reported

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, one column per category in ``CATEGORIES`` order (all roles)."""
        x = self.features.transform(list(texts))
        return np.column_stack([self.classifiers[c].predict_proba(x)[:, 1] for c in CATEGORIES])

    def detect_many(
        self,
        texts: Sequence[str],
        roles: Sequence[str | None],
        listed: Sequence[set[str]] | None = None,
    ) -> list[list[Finding]]:
        """Model findings per message; ``listed``: the categories the scanner already found
        in each message (``listed_categories``; no model finding is added for those)."""
        if len(texts) != len(roles):
            raise ValueError(f"{len(texts)} texts but {len(roles)} roles")
        out: list[list[Finding]] = [[] for _ in texts]
        if not texts:
            return out
        from audit.quality.classifiers import unchecked

        with unchecked():
            probabilities = self.predict_proba(texts)
        for i, (whole, role) in enumerate(zip(texts, roles, strict=True)):
            # the models read a long message's beginning only (clf_text.MAX_CLASSIFIED): what
            # they found is looked for, judged and reported there, at a chat message's cost
            text = whole[: clf_text.MAX_CLASSIFIED]
            for k, category in enumerate(CATEGORIES):
                if role is not None and role not in CATEGORY_ROLES[category]:
                    continue
                if listed is not None and category in listed[i]:
                    continue
                p = round(float(probabilities[i, k]), DIGITS)
                if p < self.thresholds[category]:
                    continue
                if len(clf_text.normalize(text)) < MIN_CHARS:
                    continue
                located = self.locate(text, category)
                if located is not None and self._excused(text, role, category, located):
                    continue  # negated, asked, quoted ... (see audit.scan.context)
                if QUOTATION in MODEL_RULES[category] and self.reported(text, category):
                    continue  # the weight lies in someone else's words
                out[i].append(
                    Finding(
                        category=category,
                        rule=f"model.{category}",
                        severity=SEVERITY[category],
                        score=p,
                        start=0,
                        end=len(text),
                        matched=text,
                        explanation=f"model {category} p={p:.2f}",
                    )
                )
        return out

    def _excused(
        self, text: str, role: str | None, category: str, located: tuple[int, int]
    ) -> bool:
        """Whether context excuses the finding located at ``located``; a negation only when
        the negator is not part of what the model found (``negated_weight``)."""
        cue = excuse(text, role, category, *located)
        if cue is None:
            return False
        if cue.kind != NEGATION or cue.after:
            return True
        if self.negated_weight(text, category, located) < NEGATED_WEIGHT:
            return True
        return excuse(text, role, category, *located, policy=_UNNEGATED) is not None

    def negated_weight(self, text: str, category: str, located: tuple[int, int]) -> float:
        """The category's weight in the features that run from a cue word ending right
        before (or inside) ``located`` into the located words: 「不用本人」 for 本人, 「不会涨」
        for 涨价. Positive: the model learned the negated phrase as the violation. 0 when
        another cue word is near (不存在稳赚不赔: the first negator speaks of the rest)."""
        near = [
            (a, b) for a, b in cue_spans(text) if a < located[1] and b > located[0] - NEGATION_REACH
        ]
        aligned = _aligned(text)
        if len(near) != 1 or not located[0] - 1 <= near[0][1] <= located[1] or aligned is None:
            return 0.0
        cue_end = near[0][1]
        norm, owners = aligned
        coef = _coefficients(self.classifiers[category])
        indices, data = _feature_row(self.features, text)
        words, chars = _vocabularies(self.features)
        word_names, char_names = _names(words), _names(chars)
        tokens = _token_spans(norm)
        total = 0.0
        for j, value in zip(indices, data, strict=True):
            if j < len(word_names):
                spans = _word_occurrences(word_names[j], tokens)
            else:
                spans = _char_occurrences(char_names[j - len(word_names)], norm)
            # occurrences holding the negator's last character and going on past it
            bridging = sum(
                1
                for a, b in spans
                if owners[a][0] < cue_end < owners[b - 1][1] and owners[b - 1][1] > located[0]
            )
            if bridging:
                total += float(coef[j] * value) * bridging / len(spans)
        return total

    def influence(self, text: str, category: str, generic: bool = True) -> np.ndarray | None:
        """Each original character's share of the category's linear score: every feature
        present contributes coefficient x TF-IDF value, spread evenly over the characters of
        its occurrences (without ``generic``: the features made only of ``GENERIC``
        characters, spaces and punctuation contribute nothing). None when the features'
        normalization cannot be mapped back."""
        aligned = _aligned(text)
        if aligned is None:
            return None
        norm, owners = aligned
        coef = _coefficients(self.classifiers[category])
        indices, data = _feature_row(self.features, text)
        words, chars = _vocabularies(self.features)
        n_words = len(words)
        word_names = _names(words)
        char_names = _names(chars)
        tokens = _token_spans(norm)
        per_char = np.zeros(len(norm))
        for j, value in zip(indices, data, strict=True):
            share = float(coef[j] * value)
            name = word_names[j] if j < n_words else char_names[j - n_words]
            if not generic and _generic(name):
                continue
            if j < n_words:
                spans = _word_occurrences(name, tokens)
            else:
                spans = _char_occurrences(name, norm)
            for a, b in spans:
                per_char[a:b] += share / len(spans) / (b - a)
        out = np.zeros(len(text))
        for k, (a, b) in enumerate(owners):
            out[a:b] += per_char[k] / (b - a)
        return out

    def reported(self, text: str, category: str) -> bool:
        """Whether at least ``REPORTED_SHARE`` of the category's positive weight lies in
        quoted or reported words (「...」, 他说...)."""
        spans = reported_spans(text)
        if not spans:
            return False
        weights = self.influence(text, category)
        if weights is None:
            return False
        positive = np.clip(weights, 0.0, None)
        total = float(positive.sum())
        if total <= 0:
            return False
        inside = np.zeros(len(text), dtype=bool)
        for a, b in spans:
            inside[a:b] = True
        return float(positive[inside].sum()) >= REPORTED_SHARE * total

    def locate(self, text: str, category: str) -> tuple[int, int] | None:
        """Original ``[start, end)`` of the words weighing most for ``category``: the
        heaviest character and its neighbours of at least ``SPAN_SHARE`` of its weight, less
        the ``GENERIC`` words and cue words at either edge (a negator the model leans on
        speaks of what follows it; one inside the words, 稳赚不赔, is part of them). Features
        of ``GENERIC`` words only are left out: they carry no category of their own."""
        weights = self.influence(text, category, generic=False)
        if weights is None or not len(weights) or weights.max() <= 0:
            return None
        peak = int(weights.argmax())
        floor = weights[peak] * SPAN_SHARE
        start, end = peak, peak + 1
        while end - start < SPAN_LIMIT:
            left = weights[start - 1] if start > 0 else -np.inf
            right = weights[end] if end < len(weights) else -np.inf
            if max(left, right) < floor:
                break
            if left >= right:
                start -= 1
            else:
                end += 1
        cues = cue_spans(text)
        trimmed = True
        while trimmed and start < end:
            trimmed = False
            while start < end and _generic(text[start]):
                start, trimmed = start + 1, True
            while start < end and _generic(text[end - 1]):
                end, trimmed = end - 1, True
            for a, b in cues:
                if a <= start < b:
                    start, trimmed = b, True
                if a < end <= b and start < end:
                    end, trimmed = a, True
        if start >= end:  # nothing but cue words: the words they govern
            start = min(start, len(text) - 1)
            return start, start + 1
        return start, end


_NAMES: dict[int, list[str]] = {}
_PUNCTUATION = re.compile(r"[\s\W_]")


def _generic(name: str) -> bool:
    """Whether a feature's name holds nothing but ``GENERIC`` characters (and spaces,
    punctuation): 这个, 我们, 「也 不」 is not (不 is a cue word)."""
    chars = _PUNCTUATION.sub("", name)
    return all(c in GENERIC for c in chars)


def _coefficients(classifier: Any) -> np.ndarray:
    """The linear model's coefficients, of the fitted calibrated classifier or of its compiled
    form (:mod:`audit.quality.compiled`, which ``audit inspect`` loads)."""
    coef = getattr(classifier, "coef", None)
    if coef is None:
        coef = classifier.calibrated_classifiers_[0].estimator.coef_
    return np.asarray(coef).ravel()


def _feature_row(features: Any, text: str) -> tuple[Any, Any]:
    """The (columns, values) of ``text``'s feature row, fitted or compiled features alike."""
    out = features.transform([text])
    if isinstance(out, list):  # compiled: one (columns, values) pair per text
        columns, values = out[0]
        return columns, values
    row = out.tocsr()
    return row.indices, row.data


def _vocabularies(features: Any) -> tuple[dict[str, int], dict[str, int]]:
    """The word and the character vocabularies, in column order (words first)."""
    vectorizers = getattr(features, "vectorizers", None)
    if vectorizers is not None:  # compiled
        words, chars = vectorizers
        return words.vocabulary, chars.vocabulary
    (_, fitted_words), (_, fitted_chars) = features.transformer_list
    return fitted_words.vocabulary_, fitted_chars.vocabulary_


def _names(vocabulary: dict[str, int]) -> list[str]:
    """Feature names by column, computed once per vocabulary."""
    key = id(vocabulary)
    if key not in _NAMES:
        names = [""] * len(vocabulary)
        for name, column in vocabulary.items():
            names[column] = name
        _NAMES[key] = names
    return _NAMES[key]


def _aligned(text: str) -> tuple[str, list[tuple[int, int]]] | None:
    """``clf_text.normalize(text)`` and, per normalized character, the original characters
    it comes from; None when the step-by-step mapping does not give the same text."""
    chars: list[str] = []
    owners: list[tuple[int, int]] = []
    for i, char in enumerate(text[: clf_text.MAX_CLASSIFIED]):
        for piece in unicodedata.normalize("NFKC", char).lower():
            chars.append(piece)
            owners.append((i, i + 1))
    simplified = str(clf_text._t2s().convert("".join(chars)))
    if len(simplified) != len(chars):
        return None
    merged: list[str] = []
    spans: list[tuple[int, int]] = []
    for char, owner in zip(simplified.replace("您", "你"), owners, strict=True):
        kind = "0" if _DIGIT.match(char) else " " if char.isspace() else char
        if kind in "0 " and merged and merged[-1] == kind and len(kind) == 1:
            spans[-1] = (spans[-1][0], owner[1])  # a run of digits or spaces: one character
            continue
        merged.append(kind)
        spans.append(owner)
    stripped = _strip("".join(merged), spans)
    joined = stripped[0]
    keep = [True] * len(joined)
    for match in clf_text._PARTICLES.finditer(joined):
        for k in range(*match.span()):
            keep[k] = False
    plain = _strip(
        "".join(c for c, k in zip(joined, keep, strict=True) if k),
        [x for x, k in zip(stripped[1], keep, strict=True) if k],
    )
    joined, spans = plain if plain[0] else stripped
    if joined != clf_text.normalize(text):
        return None
    return joined, spans


def _strip(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    left = len(text) - len(text.lstrip())
    right = len(text.rstrip())
    return text[left:right], spans[left:right]


_DIGIT = re.compile(r"\d")


def _token_spans(norm: str) -> list[tuple[str, int, int]]:
    """jieba words of a normalized text with their offsets, spaces left out (as the word
    features see them)."""
    out = []
    at = 0
    for word in tokenizer().cut(norm, HMM=False):
        if not word.isspace():
            out.append((word, at, at + len(word)))
        at += len(word)
    return out


def _word_occurrences(name: str, tokens: list[tuple[str, int, int]]) -> list[tuple[int, int]]:
    parts = name.split(" ")
    n = len(parts)
    return [
        (tokens[k][1], tokens[k + n - 1][2])
        for k in range(len(tokens) - n + 1)
        if all(tokens[k + m][0] == parts[m] for m in range(n))
    ]


def _char_occurrences(name: str, norm: str) -> list[tuple[int, int]]:
    spans = []
    at = norm.find(name)
    while at >= 0:
        spans.append((at, at + len(name)))
        at = norm.find(name, at + 1)
    return spans


class DetectingScanner:
    """A scanner whose ``scan`` adds the paraphrase detectors' findings to the word lists'
    (for ``audit eval`` and anything else that takes a scanner)."""

    def __init__(self, scanner: Any, bank: DetectorBank, detectors_version: str) -> None:
        self._scanner = scanner
        self._bank = bank
        self._version = detectors_version

    @property
    def version(self) -> str:
        return f"{self._scanner.version}+detectors:{self._version}"

    @property
    def wordlist_hash(self) -> str:
        return str(self._scanner.wordlist_hash)

    def scan(self, text: str, role: str | None = None) -> list[Finding]:
        found: list[Finding] = self._scanner.scan(text, role)
        return found + self._bank.detect_many([text], [role], [listed_categories(found)])[0]
