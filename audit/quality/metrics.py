"""Service-quality metrics of one conversation, measured the way contact centres measure them.

Pure functions over :class:`Msg` values: no database, so every rule here can be tested on a
hand-built conversation with a known answer. The pipeline turns stored messages into ``Msg``
lists; :func:`compute_metrics` returns a :class:`ConversationMetrics` whose :meth:`to_json`
goes into ``Score.metrics``.

The clock, in the order it is applied:

1. Only messages that someone typed count: robots, system records, ``switch`` records and
   ``recall`` records are dropped (a recall neither asks nor answers).
2. A *burst* is a run of consecutive customer messages; it is answered by the next staff
   message, and the response time runs from the burst's FIRST message (the customer has been
   waiting since then). In a group chat any staff member's message answers.
3. Each response time is measured twice: wall-clock seconds, and business seconds (only the
   time inside business hours on business days, :class:`BusinessClock`). The SLA counts
   business seconds, so a question at 20:58 answered at 09:02 next morning took 4 minutes.
4. A trailing burst with no staff reply is *unanswered at the end*, unless every message in it
   is only closing words (谢谢, 好的, OK, 👌 ...) or a sticker, which need no reply.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
import re
import statistics
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from audit.days import DEFAULT_ZONE, zone

if TYPE_CHECKING:
    from audit.config import QualityConfig

ConversationKindName = Literal["single", "room", "internal"]

STAFF = "staff"
CUSTOMER = "customer"

# A customer message that is only these (repeated, combined, with particles and punctuation)
# needs no reply. Compared lower-cased; traditional spellings listed where they differ.
DEFAULT_CLOSING_WORDS: tuple[str, ...] = (
    "谢谢您", "谢谢你", "感谢您", "谢谢", "謝謝", "感谢", "感謝", "多谢", "多謝", "谢了", "谢啦",
    "辛苦了", "辛苦", "麻烦了", "麻烦您了",
    "好的", "好滴", "好嘞", "好", "行", "可以", "没问题", "沒問題", "明白", "了解", "知道了",
    "收到", "嗯", "恩", "哦", "噢", "喔", "ok", "okay", "thanks", "thank you", "thx",
    "拜拜", "再见", "再見", "bye", "👌", "👍", "🙏", "🤝", "😊", "🙂", "🌹", "[ok]", "[握手]",
    "[抱拳]", "[玫瑰]", "[微笑]", "[强]",
)  # fmt: skip
# particles that may trail a closing word without making it a question (好的呀, 谢谢啦, 好吧)
CLOSING_PARTICLES = "啦了哈呀啊哦喔嘞咯吧呢~"
# message types that never need a reply when they end a conversation (a sticker)
CLOSING_MSGTYPES = frozenset({"emotion"})

# Phrases, as in the scorecard's ``greetings`` (which the shipped card sets): compared folded
# (case, width and punctuation ignored); a leading ``^`` holds only at the start of a message
# (在的 answers a customer, 存在的 does not); ``…`` stands for up to ``PHRASE_GAP`` characters
# (我是…店 reads 我是人民路店的小司马).
DEFAULT_GREETING_WORDS: tuple[str, ...] = (
    "您好", "你好", "欢迎", "很高兴为您服务", "很高兴为你服务", "为您服务", "早上好",
    "上午好", "中午好", "下午好", "晚上好", "哈喽", "hello", "嗨", "女士好", "先生好", "小姐好",
    "老师好", "^在的", "^在呢", "^在哦", "^在呀", "^在滴", "^在在", "^在嘞", "我是…店的",
    "我是…门店", "我是…营业厅", "我是…客服", "我是…顾问",
)  # fmt: skip
PHRASE_START = "^"
PHRASE_GAP_MARK = "…"
PHRASE_GAP = 12
DEFAULT_CLOSING_STAFF_WORDS: tuple[str, ...] = (
    "感谢", "谢谢", "祝您", "祝你", "再见", "拜拜", "有问题随时", "随时联系", "随时找我",
    "欢迎再来", "欢迎下次", "欢迎您再次", "生活愉快", "还有其他", "还有什么可以帮", "还有什么需要",
    "请您评价", "满意度",
)  # fmt: skip
# a closing is looked for in the last staff messages only: 谢谢 at the start is no closing
CLOSING_WINDOW = 3

# which messages a classifier score is read from; other keys: every message
SCORE_ROLES: Mapping[str, str] = {"customer_negative": CUSTOMER, "staff_discourtesy": STAFF}
NEGATIVE_THRESHOLD = 0.5

_COUNTED_KINDS = frozenset({STAFF, CUSTOMER})
_IGNORED_ACTIONS = frozenset({"recall", "switch"})


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Msg:
    """One archived message, as the metrics see it."""

    at: dt.datetime  # aware
    kind: str  # "staff" | "customer" | "robot" | "system"
    sender: str
    text: str = ""
    msgtype: str = "text"
    action: str = "send"  # "send" | "recall" | "switch"
    scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"naive datetime {self.at!r}: pass an aware datetime")


def _parse_hhmm(value: str, where: str) -> dt.time | None:
    """``"09:00"`` -> 09:00; ``"24:00"`` -> None (the end of the day)."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
    if not match:
        raise ValueError(f"{where}: {value!r} is not HH:MM")
    hour, minute = int(match[1]), int(match[2])
    if (hour, minute) == (24, 0):
        return None
    if hour > 23 or minute > 59:
        raise ValueError(f"{where}: {value!r} is not a time of day")
    return dt.time(hour, minute)


@dataclass(frozen=True)
class BusinessClock:
    """Business hours on business days, in a local time zone.

    ``open`` and ``close`` are local times; ``close`` ``None`` means midnight at the end of the
    day (``"24:00"``). When ``close`` is not after ``open`` the hours run overnight (22:00-06:00)
    and belong to the day they open on; equal times mean round the clock. ``days`` are ISO
    weekdays (1 Monday ... 7 Sunday) on which the hours open.
    """

    tz: ZoneInfo
    open: dt.time
    close: dt.time | None
    days: frozenset[int]

    @classmethod
    def parse(
        cls, hours: str, days: Iterable[int] = range(1, 8), tz: str = DEFAULT_ZONE
    ) -> BusinessClock:
        """From the config's ``"09:00-21:00"``, ISO weekdays and zone name."""
        start, sep, end = hours.partition("-")
        if not sep:
            raise ValueError(f"business hours {hours!r}: expected HH:MM-HH:MM")
        opening = _parse_hhmm(start, "business hours")
        if opening is None:
            raise ValueError(f"business hours {hours!r}: cannot open at 24:00")
        day_set = frozenset(days)
        if not day_set <= set(range(1, 8)):
            raise ValueError(f"business days {sorted(day_set)}: ISO weekdays are 1..7")
        return cls(zone(tz), opening, _parse_hhmm(end, "business hours"), day_set)

    @classmethod
    def from_config(cls, quality: QualityConfig) -> BusinessClock:
        """From a :class:`audit.config.QualityConfig`."""
        return cls.parse(quality.business_hours, quality.business_days, quality.timezone)

    def windows(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The UTC instants the hours opening on local ``day`` span, or None on a day off."""
        if day.isoweekday() not in self.days:
            return None
        start = dt.datetime.combine(day, self.open, tzinfo=self.tz)
        if self.close is None:
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=self.tz)
        elif self.close > self.open:
            end = dt.datetime.combine(day, self.close, tzinfo=self.tz)
        else:  # overnight, or round the clock when equal
            end = dt.datetime.combine(day + dt.timedelta(days=1), self.close, tzinfo=self.tz)
        # subtracting aware datetimes of one zone ignores DST: compare in UTC
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    def business_seconds(self, a: dt.datetime, b: dt.datetime) -> float:
        """Seconds of ``[a, b]`` inside business hours; 0 when ``b`` is not after ``a``."""
        a, b = a.astimezone(dt.UTC), b.astimezone(dt.UTC)
        if b <= a:
            return 0.0
        total = 0.0
        # from the day before a's local day: an overnight window opened then may cover a
        day = a.astimezone(self.tz).date() - dt.timedelta(days=1)
        last = b.astimezone(self.tz).date()
        while day <= last:
            window = _windows(self, day)
            if window is not None:
                lo, hi = max(a, window[0]), min(b, window[1])
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += dt.timedelta(days=1)
        return total

    def business_seconds_until(self, starts: Sequence[dt.datetime], b: dt.datetime) -> list[float]:
        """:meth:`business_seconds` from each of ``starts`` to the one end ``b`` (a page's
        waiting customers until now): the windows between are laid out once and summed in
        whole microseconds, so each wait costs a bisection instead of a walk over its days
        (the sum is exact; the walk adds floats, which can differ in the last bit)."""
        if not starts:
            return []
        b = b.astimezone(dt.UTC)
        aware = [a.astimezone(dt.UTC) for a in starts]
        day = min(aware).astimezone(self.tz).date() - dt.timedelta(days=1)
        last = b.astimezone(self.tz).date()
        spans: list[tuple[dt.datetime, dt.datetime]] = []
        while day <= last:
            window = _windows(self, day)
            if window is not None and min(b, window[1]) > window[0]:
                if spans and window[0] < spans[-1][1]:  # overlapping (a DST fold): walk each
                    return [self.business_seconds(a, b) for a in aware]
                spans.append((window[0], min(b, window[1])))
            day += dt.timedelta(days=1)
        micro = dt.timedelta(microseconds=1)
        # after[i]: whole microseconds in spans i and later
        after = [0] * (len(spans) + 1)
        for i in range(len(spans) - 1, -1, -1):
            after[i] = after[i + 1] + (spans[i][1] - spans[i][0]) // micro
        ends = [hi for _, hi in spans]
        out = []
        for a in aware:
            i = bisect.bisect_right(ends, a)  # the first span still open after a
            if b <= a or i == len(spans):
                out.append(0.0)
                continue
            lo, hi = spans[i]
            out.append(((hi - max(a, lo)) // micro + after[i + 1]) / 1_000_000)
        return out


@functools.lru_cache(maxsize=4096)
def _windows(clock: BusinessClock, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
    """:meth:`BusinessClock.windows`, remembered: a page measures thousands of waits that
    cross the same few weeks of days."""
    return clock.windows(day)


# --------------------------------------------------------------------------- text rules


class _Unfolded(dict[int, int | None]):
    """What :func:`_fold` keeps of a character, decided once per character and then looked up
    by ``str.translate`` in C: punctuation, spaces, controls, marks (U+FE0F) and emoji
    modifiers (skin tones) go, ``[`` and ``]`` stay."""

    def __missing__(self, code: int) -> int | None:
        category = unicodedata.category(chr(code))
        dropped = chr(code) not in "[]" and (category[0] in "PZCM" or category == "Sk")
        self[code] = None if dropped else code
        return self[code]


_UNFOLDED = _Unfolded()


def _fold(text: str) -> str:
    """Lower case, NFKC, without spaces and punctuation (emoji and ``[表情]`` codes stay)."""
    return unicodedata.normalize("NFKC", text).lower().translate(_UNFOLDED)


def is_closing_only(text: str, closing_words: Sequence[str] = DEFAULT_CLOSING_WORDS) -> bool:
    """True when ``text`` says nothing but closing words: 好的谢谢, OK👌, 嗯嗯, 谢谢啦!"""
    rest = _fold(text)
    if not rest:
        return False  # an empty text (e.g. an image) is not a closing word
    words = _folded_words(tuple(closing_words))
    while rest:
        for word in words:
            if rest.startswith(word):
                rest = rest[len(word) :]
                break
        else:
            if rest[0] in CLOSING_PARTICLES:
                rest = rest[1:]
            else:
                return False
    return True


@functools.lru_cache(maxsize=32)
def _folded_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """Folded, longest first (so 好的 is taken before 好), without empties."""
    return tuple(sorted({_fold(w) for w in words if _fold(w)}, key=len, reverse=True))


def phrase_problem(phrase: str) -> str | None:
    """Why ``phrase`` cannot be a phrase (see :data:`DEFAULT_GREETING_WORDS`), or None."""
    body = phrase[len(PHRASE_START) :] if phrase.startswith(PHRASE_START) else phrase
    if PHRASE_START in body:
        return f"'{PHRASE_START}' may only begin a phrase"
    pieces = body.split(PHRASE_GAP_MARK)
    if not all(_fold(p) for p in pieces):
        return f"nothing to match around '{PHRASE_GAP_MARK}'" if len(pieces) > 1 else "empty"
    return None


@functools.lru_cache(maxsize=32)
def _phrases(words: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for the phrases, on folded text; phrases with a problem are left out."""
    parts = []
    for word in words:
        if phrase_problem(word) is not None:
            continue
        anchored = word.startswith(PHRASE_START)
        pieces = [_fold(p) for p in word.removeprefix(PHRASE_START).split(PHRASE_GAP_MARK)]
        body = f".{{0,{PHRASE_GAP}}}?".join(re.escape(p) for p in pieces)
        if len(pieces) == 1 and pieces[0].isascii() and pieces[0].isalnum():
            body = rf"(?<![a-z0-9]){body}(?![a-z0-9])"  # "hello" not inside another word
        parts.append(rf"\A{body}" if anchored else body)
    return re.compile("|".join(parts) if parts else r"(?!)")


def _mentions(text: str, words: Sequence[str]) -> bool:
    return _phrases(tuple(words)).search(_fold(text)) is not None


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class ConversationMetrics:
    """What :func:`compute_metrics` measured. ``None``: not measurable (nothing to answer)."""

    kind: str
    messages: int  # counted messages: staff and customer, sent (not robots, recalls, switches)
    staff_messages: int
    customer_messages: int
    staff_senders: int
    customer_senders: int
    first_response_seconds: float | None
    first_response_business_seconds: float | None
    response_seconds: tuple[float, ...]  # one per answered burst, wall clock
    response_business_seconds: tuple[float, ...]  # the same, business seconds
    response_median_seconds: float | None
    response_p90_seconds: float | None
    response_business_median_seconds: float | None
    response_business_p90_seconds: float | None
    sla_seconds: float
    within_sla: int  # answered bursts whose business seconds are <= sla_seconds
    sla_breaches: int  # answered bursts over it
    sla_rate: float | None  # within_sla / responses
    unanswered_at_end: bool
    unanswered_messages: int  # messages of the trailing unanswered burst (0 if answered)
    unanswered_since: dt.datetime | None  # the first of them
    closing_only_end: bool  # the trailing burst was only closing words: needs no reply
    greeting: bool  # a staff message greets
    closing: bool  # one of the last staff messages closes politely
    effective: bool  # both sides spoke (internal: two staff members)
    negative_unanswered: bool | None  # None without customer_negative scores
    scores_max: Mapping[str, float]  # per classifier key, over the messages it applies to

    @property
    def responses(self) -> int:
        return len(self.response_seconds)

    def value(self, name: str) -> float | bool | None:
        """A scalar metric by name, for the scorecard (see :data:`METRIC_NAMES`)."""
        if name not in METRIC_NAMES:
            raise KeyError(f"unknown metric {name!r}")
        result: float | bool | None = getattr(self, name)
        return result

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for ``Score.metrics``; :func:`metrics_from_json` reads it back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [round(v, 3) for v in value]
            elif isinstance(value, dt.datetime):
                value = value.astimezone(dt.UTC).isoformat()
            elif isinstance(value, Mapping):
                value = {k: round(v, 4) for k, v in value.items()}
            elif isinstance(value, float):
                value = round(value, 3)
            out[f.name] = value
        out["responses"] = self.responses
        return out


def metrics_from_json(data: Mapping[str, Any]) -> ConversationMetrics:
    values: dict[str, Any] = {}
    for f in fields(ConversationMetrics):
        value = data.get(f.name)
        if f.name in ("response_seconds", "response_business_seconds"):
            value = tuple(float(v) for v in value or ())
        elif f.name == "unanswered_since" and value is not None:
            value = dt.datetime.fromisoformat(value)
        elif f.name == "scores_max":
            value = dict(value or {})
        values[f.name] = value
    return ConversationMetrics(**values)


# the scalars a scorecard may compare: numbers and booleans, not the lists
METRIC_NAMES: frozenset[str] = frozenset(
    f.name
    for f in fields(ConversationMetrics)
    if f.name
    not in {
        "kind",
        "response_seconds",
        "response_business_seconds",
        "scores_max",
        "unanswered_since",
    }
) | {"responses"}


def counted(msgs: Iterable[Msg]) -> list[Msg]:
    """The messages the clock runs on, in time order (see the module docstring)."""
    kept = [m for m in msgs if m.kind in _COUNTED_KINDS and m.action not in _IGNORED_ACTIONS]
    return sorted(kept, key=lambda m: m.at)  # stable: equal times keep their given order


def scores_max(msgs: Iterable[Msg]) -> dict[str, float]:
    """The highest classifier score per key, each key read only from the role it is about."""
    out: dict[str, float] = {}
    for m in msgs:
        for key, value in m.scores.items():
            role = SCORE_ROLES.get(key)
            if role is not None and m.kind != role:
                continue
            out[key] = max(out.get(key, value), value)
    return out


def compute_metrics(
    msgs: Sequence[Msg],
    clock: BusinessClock,
    sla_minutes: float,
    kind: ConversationKindName = "single",
    closing_words: Sequence[str] = DEFAULT_CLOSING_WORDS,
    greeting_words: Sequence[str] = DEFAULT_GREETING_WORDS,
    closing_staff_words: Sequence[str] = DEFAULT_CLOSING_STAFF_WORDS,
) -> ConversationMetrics:
    """Measure one conversation (messages in any order; see the module docstring)."""
    timeline = counted(msgs)
    staff = [m for m in timeline if m.kind == STAFF]
    customers = [m for m in timeline if m.kind == CUSTOMER]
    sla_seconds = sla_minutes * 60

    wall: list[float] = []
    business: list[float] = []
    burst: list[Msg] = []
    for m in timeline:
        if m.kind == CUSTOMER:
            burst.append(m)
        elif burst:  # a staff message answers the open burst
            wall.append((m.at - burst[0].at).total_seconds())
            business.append(clock.business_seconds(burst[0].at, m.at))
            burst = []

    closing_only_end = bool(burst) and all(
        m.msgtype in CLOSING_MSGTYPES or is_closing_only(m.text, closing_words) for m in burst
    )
    unanswered = bool(burst) and not closing_only_end
    within = sum(1 for s in business if s <= sla_seconds)

    if kind == "internal":
        effective = len({m.sender for m in timeline}) >= 2
    else:
        effective = bool(staff) and bool(customers)

    return ConversationMetrics(
        kind=kind,
        messages=len(timeline),
        staff_messages=len(staff),
        customer_messages=len(customers),
        staff_senders=len({m.sender for m in staff}),
        customer_senders=len({m.sender for m in customers}),
        first_response_seconds=wall[0] if wall else None,
        first_response_business_seconds=business[0] if business else None,
        response_seconds=tuple(wall),
        response_business_seconds=tuple(business),
        response_median_seconds=median(wall),
        response_p90_seconds=percentile(wall, 90),
        response_business_median_seconds=median(business),
        response_business_p90_seconds=percentile(business, 90),
        sla_seconds=float(sla_seconds),
        within_sla=within,
        sla_breaches=len(business) - within,
        sla_rate=within / len(business) if business else None,
        unanswered_at_end=unanswered,
        unanswered_messages=len(burst) if unanswered else 0,
        unanswered_since=burst[0].at.astimezone(dt.UTC) if unanswered else None,
        closing_only_end=closing_only_end,
        greeting=any(_mentions(m.text, greeting_words) for m in staff),
        closing=any(_mentions(m.text, closing_staff_words) for m in staff[-CLOSING_WINDOW:]),
        effective=effective,
        negative_unanswered=_negative_unanswered(timeline),
        scores_max=scores_max(timeline),
    )


def _negative_unanswered(timeline: Sequence[Msg]) -> bool | None:
    """The last clearly negative customer message got no staff message after it.

    ``None`` when no customer message carries a ``customer_negative`` score (the classifier
    did not run), so a missing model never reads as "all fine".
    """
    if not any("customer_negative" in m.scores for m in timeline if m.kind == CUSTOMER):
        return None
    last_negative = None
    for i, m in enumerate(timeline):
        if m.kind == CUSTOMER and m.scores.get("customer_negative", 0.0) >= NEGATIVE_THRESHOLD:
            last_negative = i
    if last_negative is None:
        return False
    return not any(m.kind == STAFF for m in timeline[last_negative + 1 :])
