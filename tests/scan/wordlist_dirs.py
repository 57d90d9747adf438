"""A word-list directory for a test: the given files, and an empty file (category off on
purpose) for every category the test does not need, since a missing file is an error."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from audit.domain import CATEGORIES


def write_lists(directory: Path, files: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for category in CATEGORIES:
        (directory / f"{category}.txt").touch()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory
