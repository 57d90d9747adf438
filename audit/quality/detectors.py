"""Paraphrase detectors: one calibrated message-level model per finding category, for what a
word list cannot enumerate ("走我自己的号", "私下找我", "我敢拍胸脯").

Each detector runs on the roles its category applies to (diversion, promise and fraud on
staff messages, complaint on customer messages, abuse on both) and reports a finding with
rule ``model.<category>`` only when its calibrated probability reaches the threshold chosen
at training time for precision (model card ``models/detectors.md``), and only when the word
lists found nothing of that category in the message: a listed term explains itself better.

The bank is pickled by reference inside ``models/detectors.joblib``: the class name and module
path are part of the artifact format. ``audit train`` builds it (``detect_train``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.domain import Severity
from audit.scan.finding import Finding

CATEGORIES = ("diversion", "promise", "fraud", "abuse", "complaint")
# Which roles a category's detector reads; a message of unknown role (None) gets all.
CATEGORY_ROLES: dict[str, frozenset[str]] = {
    "diversion": frozenset({"staff"}),
    "promise": frozenset({"staff"}),
    "fraud": frozenset({"staff"}),
    "abuse": frozenset({"staff", "customer"}),
    "complaint": frozenset({"customer"}),
}
# A model finding has no listed term behind it: medium, so it is reviewed, not escalated.
SEVERITY: dict[str, Severity] = {c: Severity.MEDIUM for c in CATEGORIES}
DIGITS = 4


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
        in each message (no model finding is added for those)."""
        if len(texts) != len(roles):
            raise ValueError(f"{len(texts)} texts but {len(roles)} roles")
        out: list[list[Finding]] = [[] for _ in texts]
        if not texts:
            return out
        from audit.quality.classifiers import unchecked

        with unchecked():
            probabilities = self.predict_proba(texts)
        for i, (text, role) in enumerate(zip(texts, roles, strict=True)):
            for k, category in enumerate(CATEGORIES):
                if role is not None and role not in CATEGORY_ROLES[category]:
                    continue
                if listed is not None and category in listed[i]:
                    continue
                p = round(float(probabilities[i, k]), DIGITS)
                if p < self.thresholds[category]:
                    continue
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
        listed = {f.category for f in found}
        return found + self._bank.detect_many([text], [role], [listed])[0]
