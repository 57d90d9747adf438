"""The export file formats. Light on purpose: the command line imports it on every start."""

from __future__ import annotations

from typing import Literal

Format = Literal["jsonl", "csv", "xlsx"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "xlsx")
