"""Widgets the pages share: the period picker (with presets), ids from the URL, links to the
drill-down pages, a pager, and formatting (percent with one decimal, minutes, sample sizes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd
import streamlit as st

from audit import days, reports
from audit.store.access import Principal

# how a report's store :data:`reports.UNASSIGNED` (messages not yet in a conversation) reads
UNASSIGNED_LABEL = "（未归属门店 unassigned）"

AGGREGATES_ONLY = "此角色只看汇总 / this role sees aggregates only"

NO_DATA = (
    "数据库里还没有会话数据。请运行 `audit demo` 生成演示数据，"
    "或运行 `audit run` 拉取并分析会话存档。\n\n"
    "No chat data yet: run `audit demo` for a demo, or `audit run` to pull and analyse the archive."
)


def people_only(who: Principal) -> None:
    """Stop a page about people for a role that sees aggregates only (the navigation hides
    such pages from it; the queries refuse anyway)."""
    if not who.sees_people:
        st.error(f"{AGGREGATES_ONLY}.")
        st.stop()


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
    return "—" if value is None or value != value else f"{value:.1%}"


# --------------------------------------------------------------------------- presets

PRESETS = ("今天", "昨天", "近7天", "本月", "自定义")
CUSTOM = "自定义"


def preset_range(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The local days of a preset: today, yesterday, the 7 days ending today, this month."""
    if name == "今天":
        return today, today
    if name == "昨天":
        yesterday = today - dt.timedelta(days=1)
        return yesterday, yesterday
    if name == "近7天":
        return today - dt.timedelta(days=6), today
    if name == "本月":
        return today.replace(day=1), today
    raise ValueError(f"unknown date preset {name!r}; expected one of {PRESETS}")


def local_today(tz: str) -> dt.date:
    return days.local_date(dt.datetime.now(dt.UTC), tz)


def preset_input(
    period: reports.Period, key: str, where: object = st, default: str = CUSTOM
) -> tuple[dt.date, dt.date]:
    """A preset picker (今天, 昨天, 近7天, 本月, 自定义) in the configured zone; 自定义 shows the
    date picker, which starts on the days with data (``period``)."""
    a, b = where.columns([3, 2])  # type: ignore[attr-defined]
    choice = a.segmented_control(
        "日期 Dates", PRESETS, default=default, key=f"{key}_preset", selection_mode="single"
    )
    if choice is None or choice == CUSTOM:
        return period_input(period, key, b)
    start, end = preset_range(choice, local_today(period.tz))
    b.caption(f"{start:%Y-%m-%d} – {end:%Y-%m-%d}（{period.tz}）")
    return start, end


# --------------------------------------------------------------------------- ids and links

MAX_ID = 2**63 - 1  # the largest BIGINT: a longer number would overflow the database driver


def id_param(name: str) -> int | None:
    """The id in ``?name=``: ``None`` when absent, ``-1`` (never an id, so "not found") for
    anything but 1..MAX_ID in ASCII digits (int() would also take "1_000" and full-width)."""
    raw = st.query_params.get(name)
    if raw is None or raw == "":
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 0 < int(raw) <= MAX_ID:
        return -1
    return int(raw)


def open_by_id(param: str, label: str, hint: str) -> int:
    """A form to open one item by its number (``?param=``), and the id asked for: stops the
    page with ``hint`` when none is, ``-1`` for one that cannot be an id (see :func:`id_param`)."""
    with st.form(f"{param}_go"):
        a, b = st.columns([3, 1])
        typed = a.text_input(label, value=st.query_params.get(param, ""))
        if b.form_submit_button("打开 Open"):
            st.query_params.clear()
            if typed.strip():
                st.query_params[param] = typed.strip()
            st.rerun()
    picked = id_param(param)
    if picked is None:
        st.info(hint)
        st.stop()
    return picked


def link(page: str, param: str, value: object) -> str | None:
    """A relative link to a drill-down page (``staff?staff=12``): relative, so it also works
    under a configured base path. ``None`` for a missing id."""
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return None
    return f"{page}?{param}={int(value)}"  # type: ignore[call-overload]


def link_column(label: str, help: str | None = None) -> object:
    """An id shown as a link (its number as the text)."""
    return st.column_config.LinkColumn(label, display_text=r".*=(\d+)$", help=help)


# the people's drill-down pages: (column label, help) of a link to one
PERSON_PAGES = {
    "staff": ("员工 #", "员工详情 staff page"),
    "customer": ("客户 #", "客户详情 customer page"),
}


def person_links(frame: pd.DataFrame, kind: str) -> list[str | None]:
    """Links to the ``kind`` (staff | customer) page of each row's ``<kind>_id``."""
    return [link(kind, kind, i) for i in frame[f"{kind}_id"]]


def person_link_column(kind: str) -> object:
    """The column of :func:`person_links`: the id as a link to the person's page."""
    return link_column(*PERSON_PAGES[kind])


def selected_rows(event: object) -> list[int]:
    """The positions of the rows picked in a ``st.dataframe(on_select="rerun")``."""
    selection = getattr(event, "selection", None) or {}
    rows = selection.get("rows", []) if isinstance(selection, dict) else selection.rows
    return [int(r) for r in rows]


def open_clicked(event: object, ids: pd.Series, page: str, param: str) -> None:
    """Open ``page?param=<id of the clicked row>`` in this tab (a table drawn with
    ``on_select="rerun", selection_mode="single-row"``; ``ids`` in the table's row order)."""
    rows = selected_rows(event)
    if rows and rows[0] < len(ids) and not pd.isna(ids.iloc[rows[0]]):
        st.switch_page(page, query_params={param: str(int(ids.iloc[rows[0]]))})


def conversation_table(
    frame: pd.DataFrame,
    reads_messages: bool,
    columns: list[str],
    config: Mapping[str, Any],
    key: str,
) -> None:
    """A table of conversations (``frame`` has ``conversation_id``), the conversation first:
    a link for roles that read messages, where a clicked row also opens it in this tab, and
    the bare number for the others. ``columns`` and ``config`` are the rest of the table."""
    shown = frame.assign(
        conversation_link=[
            link("conversation", "conversation", i) for i in frame["conversation_id"]
        ]
    )
    table: dict[str, Any] = {
        "hide_index": True,
        "column_order": ["conversation_link" if reads_messages else "conversation_id", *columns],
        "column_config": {
            "conversation_link": link_column("会话 #", "打开会话 open the conversation"),
            "conversation_id": st.column_config.NumberColumn("会话 #", format="%d"),
            **config,
        },
        "key": key,
    }
    if not reads_messages:
        st.dataframe(shown, **table)
        return
    clicked = st.dataframe(shown, **table, on_select="rerun", selection_mode="single-row")
    open_clicked(clicked, shown["conversation_id"], "views/conversation.py", "conversation")


def conversation_columns(tz: str) -> dict[str, Any]:
    """How a conversation list's start, counts and score read (``reports.conversation_rows``)."""
    return {
        "started_at": st.column_config.DatetimeColumn(
            f"开始时间（{tz}）", format="YYYY-MM-DD HH:mm"
        ),
        "messages": st.column_config.NumberColumn("消息", format="%d"),
        "findings": st.column_config.NumberColumn("违规", format="%d"),
        "alerts": st.column_config.NumberColumn("预警", format="%d"),
        "score": "评分",
    }


# --------------------------------------------------------------------------- rates

MIN_SAMPLE = 20  # fewer cases than this and a rate says more about chance than about service
TOO_FEW = "样本不足"


def rate(value: float | None, n: int, min_n: int = MIN_SAMPLE) -> str:
    """A percentage with one decimal, or 样本不足 below ``min_n`` cases ("—" with none)."""
    if not n or value is None or value != value:
        return "—"
    return TOO_FEW if n < min_n else f"{value:.1%}"


def per_1k(value: float | None, messages: int, min_n: int = MIN_SAMPLE) -> str:
    """Findings per 1,000 messages, or 样本不足 below ``min_n`` messages."""
    if not messages or value is None or value != value:
        return "—"
    return TOO_FEW if messages < min_n else f"{value:.1f}"


def as_text(frame: pd.DataFrame, **formats: Callable[[float | None], str]) -> pd.DataFrame:
    """``frame`` with these columns formatted as text: a table shows a missing number as
    "None", the formats "—"."""
    return frame.assign(**{c: [f(v) for v in frame[c]] for c, f in formats.items()})


def with_rate_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame of :data:`audit.reports.MEASURE_COLUMNS` with its rates as text beside their
    samples (``per_1k_text`` over ``messages``, ``sla_text`` and ``negative_text`` over
    ``scored``), the score as text (``score_text``) and the response median in minutes
    (``response_median_text``)."""

    def texts(column: str, n: str, fmt: Callable[[float | None, int], str]) -> list[str]:
        return [fmt(v, int(k)) for v, k in zip(frame[column], frame[n], strict=True)]

    return frame.assign(
        per_1k_text=texts("findings_per_1k", "messages", per_1k),
        sla_text=texts("sla_rate", "scored", rate),
        negative_text=texts("negative_rate", "scored", rate),
        score_text=[num(v) for v in frame["score_avg"]],
        response_median_text=[minutes(v / 60) for v in frame["response_median_s"]],
    )


def minutes(value: float | None) -> str:
    """Minutes with one decimal ("—" when unknown)."""
    return "—" if value is None or value != value else f"{value:.1f} 分钟"


def lag_line(lag: reports.PipelineLag, tz: str) -> str:
    """How far the analysis is behind the pull, times in the configured zone ``tz``."""

    def at(t: dt.datetime | None) -> str:
        return "—" if t is None else days.local_time(t, tz).strftime("%m-%d %H:%M")

    behind = (
        "尚未分析 nothing analysed yet" if lag.seconds is None else f"{lag.seconds // 60:.0f} 分钟"
    )
    line = (
        f"流水线延迟 Pipeline lag: {behind} "
        f"(已拉取至 {at(lag.pulled_upto)} / 已分析至 {at(lag.analysed_upto)})"
    )
    if lag.pending:
        line += f"；{lag.pending:,} 条待解密 envelopes waiting to be decrypted"
    return line


def num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if value is None or value != value else fmt.format(value)


def pager(state: str, key: str, page: int, pages: int, ends: bool = True) -> None:
    """Buttons that move ``st.session_state[state]`` (the page shown, 1..``pages``):
    previous and next, and with ``ends`` the first and the last; ``key`` prefixes theirs."""

    def go(to: int) -> None:
        st.session_state[state] = max(1, min(to, pages))

    first, last = page == 1, page >= pages
    buttons = [
        ("« 首页 First", "first", 1, first),
        ("‹ 上一页 Prev", "prev", page - 1, first),
        ("下一页 Next ›", "next", page + 1, last),
        ("末页 Last »", "last", pages, last),
    ]
    if not ends:
        buttons = buttons[1:3]
    nav = st.columns([1] * len(buttons) + [8 - len(buttons)])
    for column, (label, name, to, disabled) in zip(nav, buttons, strict=False):
        column.button(label, key=f"{key}_{name}", on_click=go, args=(to,), disabled=disabled)
