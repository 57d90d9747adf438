"""The trained quality classifiers, loaded and checked, scoring messages.

``load_scorers(models_dir)`` loads ``customer_negative`` and ``staff_discourtesy`` from the
files ``audit train`` writes (``<name>.joblib`` + ``<name>.json``) and checks each artifact
against its metadata: format, sha256 of the file, model name, version and data hash, and the
scikit-learn version it was trained with (same major.minor required). Anything missing or
inconsistent raises ``ScorersUnavailable`` naming the file and the remedy; the pipeline
catches it and runs without scores.

The artifacts are pickles: load only the ``models/`` of this project (or one you trained).

    scorers = load_scorers(Path("models"))
    scorers.score("说了多少遍了", "staff")           # {"staff_discourtesy": 0.97}
    scorers.score_many(texts, roles)                  # one dict per message, batched
    scorers.detect_many(texts, roles)                 # paraphrase detectors' findings

The paraphrase detectors (``models/detectors.*``, ``audit.quality.detectors``) load and are
checked the same way; their version is recorded next to the classifiers'.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.quality.detectors import DetectorBank
    from audit.scan.finding import Finding

MODEL_NAMES = ("customer_negative", "staff_discourtesy")
DETECTORS = "detectors"  # the artifact of the paraphrase detectors
# Which models score a message of each role; None (role unknown) gets both.
ROLE_MODELS: dict[str | None, tuple[str, ...]] = {
    "customer": ("customer_negative",),
    "staff": ("staff_discourtesy",),
    None: MODEL_NAMES,
}
FORMAT = 1  # the artifact format this code reads (audit.quality.train.FORMAT)
DIGITS = 4
REMEDY = "rebuild the models with `audit train`"


class ScorersUnavailable(Exception):
    """The classifiers cannot be loaded; the message names the file and the remedy."""


@dataclass
class Scorers:
    """Both classifiers and the paraphrase detectors; ``versions`` maps each model name
    (and ``detectors``) to its version (data+code hash)."""

    pipelines: dict[str, Any]
    versions: dict[str, str]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    detectors: DetectorBank | None = None

    def detect_many(
        self,
        texts: Sequence[str],
        roles: Sequence[str | None],
        listed: Sequence[set[str]] | None = None,
    ) -> list[list[Finding]]:
        """The detectors' findings per message (none without detectors); ``listed``: the
        categories the word lists already found in each message."""
        if self.detectors is None:
            return [[] for _ in texts]
        return self.detectors.detect_many(texts, roles, listed)

    def score(self, text: str, role: str | None) -> dict[str, float]:
        """Probabilities of the models for ``role`` ("customer", "staff", or None: both)."""
        return self.score_many([text], [role])[0]

    def score_many(
        self, texts: Sequence[str], roles: Sequence[str | None]
    ) -> list[dict[str, float]]:
        """``score`` for many messages, one ``predict_proba`` call per model."""
        if len(texts) != len(roles):
            raise ValueError(f"{len(texts)} texts but {len(roles)} roles")
        out: list[dict[str, float]] = [{} for _ in texts]
        wanted: dict[str, list[int]] = {name: [] for name in self.pipelines}
        for i, role in enumerate(roles):
            names = ROLE_MODELS.get(role)
            if names is None:
                raise ValueError(f"role must be 'customer', 'staff' or None, not {role!r}")
            for name in names:
                wanted[name].append(i)
        with unchecked():
            for name, rows in wanted.items():
                if not rows:
                    continue
                batch = [texts[i] for i in rows]
                probabilities = self.pipelines[name].predict_proba(batch)[:, 1]
                for i, p in zip(rows, probabilities, strict=True):
                    out[i][name] = round(float(p), DIGITS)
        return out


def unchecked() -> AbstractContextManager[Any]:
    """Strings in, fitted pipelines: sklearn's per-call validation is a third of the cost of
    scoring one message, and checks nothing that can go wrong here. Pipelines compiled to
    arrays (:mod:`audit.quality.compiled`) do without scikit-learn: it is not imported then."""
    sklearn = sys.modules.get("sklearn")
    if sklearn is None:  # nothing unpickled a scikit-learn estimator
        return nullcontext()
    context: AbstractContextManager[Any] = sklearn.config_context(
        assume_finite=True, skip_parameter_validation=True
    )
    return context


def load_scorers(models_dir: Path) -> Scorers:
    pipelines: dict[str, Any] = {}
    versions: dict[str, str] = {}
    metadata: dict[str, dict[str, Any]] = {}
    for name in MODEL_NAMES:
        meta, pipeline = _load(models_dir, name)
        pipelines[name] = pipeline
        versions[name] = str(meta["version"])
        metadata[name] = meta
    meta, bank = _load(models_dir, DETECTORS)
    versions[DETECTORS] = str(meta["version"])
    metadata[DETECTORS] = meta
    return Scorers(pipelines, versions, metadata, bank)


def _load(models_dir: Path, name: str) -> tuple[dict[str, Any], Any]:
    meta_path = models_dir / f"{name}.json"
    artifact = models_dir / f"{name}.joblib"
    for path in (meta_path, artifact):
        if not path.is_file():
            raise ScorersUnavailable(f"{path}: model file missing; {REMEDY}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScorersUnavailable(
            f"{meta_path}: unreadable model metadata ({exc}); {REMEDY}"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("name") != name:
        raise ScorersUnavailable(
            f"{meta_path}: not format-{FORMAT} metadata of model {name}; {REMEDY}"
        )
    recorded = meta.get("artifact", {}).get("sha256")
    if hashlib.sha256(artifact.read_bytes()).hexdigest() != recorded:
        raise ScorersUnavailable(
            f"{artifact}: does not match the sha256 recorded in {meta_path.name} (corrupt, or "
            f"from another training run); {REMEDY}"
        )
    sklearn_version = _sklearn_version()
    trained_with = str(meta.get("environment", {}).get("scikit-learn", "?"))
    if _minor(trained_with) != _minor(sklearn_version):
        raise ScorersUnavailable(
            f"{artifact}: trained with scikit-learn {trained_with}, installed is "
            f"{sklearn_version}; {REMEDY}"
        )
    try:
        import joblib

        with warnings.catch_warnings():
            # same major.minor checked above; a patch release difference is fine
            warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
            payload = joblib.load(artifact)
    except Exception as exc:  # a pickle can fail in many ways; all mean "retrain"
        raise ScorersUnavailable(f"{artifact}: cannot be loaded ({exc!r}); {REMEDY}") from None
    expected = {k: meta.get(k) for k in ("format", "name", "version", "data_sha256")}
    if not isinstance(payload, dict) or {k: payload.get(k) for k in expected} != expected:
        raise ScorersUnavailable(
            f"{artifact}: name, version or data hash differ from {meta_path.name}; {REMEDY}"
        )
    pipeline = payload.get("pipeline")
    if not hasattr(pipeline, "predict_proba"):
        raise ScorersUnavailable(f"{artifact}: holds no classifier; {REMEDY}")
    return meta, pipeline


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
