"""Widgets the pages share: the period picker and formatting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from audit import reports

NO_DATA = (
    "数据库里还没有会话数据。请运行 `audit demo` 生成演示数据，"
    "或运行 `audit run` 拉取并分析会话存档。\n\n"
    "No chat data yet: run `audit demo` for a demo, or `audit run` to pull and analyse the archive."
)


def picked_range(value: object, default: reports.Period) -> tuple[dt.date, dt.date]:
    """``st.date_input`` gives a 0, 1 or 2-tuple while a range is being picked."""
    if isinstance(value, dt.date):
        return value, value
    dates = [d for d in value if isinstance(d, dt.date)] if isinstance(value, tuple) else []
    if len(dates) == 2:
        return dates[0], dates[1]
    if len(dates) == 1:
        return dates[0], dates[0]
    return default.start, default.end


def period_input(period: reports.Period, key: str, where: object = st) -> tuple[dt.date, dt.date]:
    widget = where.date_input  # type: ignore[attr-defined]
    return picked_range(
        widget(
            f"日期（{period.tz}）Dates, local time",
            value=(period.start, period.end),
            format="YYYY-MM-DD",
            key=key,
        ),
        period,
    )


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress factory (see :mod:`audit.progress`) drawing a Streamlit bar."""
    bar = st.progress(0.0, text=f"{label} …")
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if total:
            bar.progress(min(done / total, 1.0), text=f"{label}: {done:,} / {total:,}")

    yield advance
    bar.empty()


def pct(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.0%}"


def num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if value is None or value != value else fmt.format(value)
