"""The local days and org units an export covers: what every export query starts from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from audit.days import DEFAULT_ZONE, day_bounds


@dataclass(frozen=True)
class ExportWindow:
    start: dt.date | None = None  # local days, both ends included; None: unbounded
    end: dt.date | None = None
    timezone: str = DEFAULT_ZONE
    org_unit_ids: tuple[int, ...] | None = None  # expanded (see access.expand); None: company

    def describe(self) -> dict[str, object]:
        """The window as plain data, for the audit log."""
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "timezone": self.timezone,
            "org_unit_ids": list(self.org_unit_ids) if self.org_unit_ids is not None else None,
        }

    def days(self, column: ColumnElement[Any] | Any) -> list[ColumnElement[bool]]:
        """SQL: the UTC timestamp ``column`` falls on the window's local days (none: any)."""
        if not (self.start or self.end):
            return []
        lo, hi = day_bounds(
            self.start or dt.date(1970, 1, 1), self.end or dt.date(9999, 12, 30), self.timezone
        )
        return [column >= lo, column < hi]
