"""``audit inspect``: the scanner and classifiers as a JSON-lines filter.

Each input line is ``{"id": ..., "text": ..., "role": "staff"|"customer"}`` (role optional),
or ``{"id": ..., "image": PATH, "role": ...}`` for a picture (its QR codes and OCR text, see
:mod:`audit.images.read`); each output line has the same ``id``, its ``findings`` and
``scores`` (an image's findings also carry ``box``, ``source`` and ``payload`` or ``text``).
A line that cannot be read gives ``{"id": <id or null>, "error": "line N: <reason>"}`` and the
stream goes on, so output and input stay one to one (blank lines aside).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from audit.scan.finding import Finding, listed_categories
from audit.scan.scanner import ROLES, Scanner

Scorer = Callable[[str, str | None], float]
# The paraphrase detectors (``Scorers.detect_many``): texts, roles, categories already found.
Detect = Callable[[Sequence[str], Sequence[str | None], Sequence[set[str]]], list[list[Finding]]]


@dataclass(frozen=True)
class InspectStats:
    ok: int
    errors: int
    findings: int


class _BadLine(Exception):
    def __init__(self, ident: Any, reason: str) -> None:
        super().__init__(reason)
        self.ident = ident
        self.reason = reason


def inspect_stream(
    lines: Iterable[str],
    out: TextIO,
    scanner: Scanner,
    scorers: Mapping[str, Scorer] | None = None,
    classify: Callable[[str, str | None], Mapping[str, float]] | None = None,
    image_allow: Sequence[str] = (),
    detect: Detect | None = None,
) -> InspectStats:
    """``scorers``: one function per score name; ``classify``: all of a role's scores at once
    (the classifiers' ``Scorers.score``). Both fill the output's ``scores``. ``detect``: the
    paraphrase detectors, whose findings follow the scanner's."""
    ok = errors = findings = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            ident, text, role = _parse(line)
            if text is None:  # an image line
                record: dict[str, Any] = {"id": ident, **_image(line, scanner, image_allow)}
                ok += 1
                findings += len(record["findings"])
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                continue
        except _BadLine as bad:
            record = {"id": bad.ident, "error": f"line {number}: {bad.reason}"}
            errors += 1
        else:
            found = scanner.scan(text, role)
            if detect is not None:
                found = found + detect([text], [role], [listed_categories(found)])[0]
            record = {
                "id": ident,
                "findings": [f.as_dict() for f in found],
                "scores": {
                    **(classify(text, role) if classify else {}),
                    **{name: score(text, role) for name, score in (scorers or {}).items()},
                },
            }
            ok += 1
            findings += len(found)
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()
    return InspectStats(ok=ok, errors=errors, findings=findings)


def _image(line: str, scanner: Scanner, allow: Sequence[str]) -> dict[str, Any]:
    from audit.images.read import ImageUnreadable, inspect_image

    data = json.loads(line)
    try:
        return inspect_image(data["image"], data.get("role"), scanner, allow)
    except (OSError, ImageUnreadable) as exc:
        raise _BadLine(data.get("id"), f"image {data['image']}: {exc}") from None


def _parse(line: str) -> tuple[Any, str | None, str | None]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _BadLine(None, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise _BadLine(None, "expected a JSON object")
    ident = data.get("id")
    text = data.get("text")
    if text is None and "image" in data:
        if not isinstance(data["image"], str) or not data["image"]:
            raise _BadLine(ident, "'image' must be a file path")
    elif text is None:
        raise _BadLine(ident, "missing 'text'")
    elif not isinstance(text, str):
        raise _BadLine(ident, "'text' must be a string")
    role = data.get("role")
    if role is not None and role not in ROLES:
        raise _BadLine(ident, f"unknown role {role!r} (expected 'staff' or 'customer')")
    return ident, text, role
