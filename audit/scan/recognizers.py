"""Recognizers: personal data and contact ids found by pattern, not by word list.

In the manner of presidio, a recognizer is mostly data: ``PATTERNS`` (name, regex, score),
optional ``CONTEXT`` words it needs nearby, and a ``validate`` hook (a checksum: True makes
the hit certain, False drops it). Numbers are looked for in the *normalized* text, where
full-width and Chinese digits are ASCII and separators are gone (138 0013 8000 reads
13800138000), then mapped back to the original.

Because separators are gone, two numbers written next to each other ("13800138000 10086")
merge into one run of digits. A candidate number must therefore start and end on a *break*
of its run: the run's edges, or a place where the original had something between two digits.
13800138000 inside 1380013800010086 is not a phone number; 138 0013 8000 is.

Not findings: hotlines and service numbers (10086, 12315, 95xxx, 400/800), numbers after
订单/单号/尾号/验证码 and the like, and numbers followed by a unit (元, 块, 年, ...).

Work is linear in the text: context words are looked for only within their window, a
message yields at most ``TextView.MAX_SPANS`` candidate numbers (a run of digits with a
separator after every digit would otherwise give 21 per digit), and the e-mail recognizer
looks at each separator (@, at, 艾特, #) once, with bounded patterns on either side.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from audit.domain import Severity
from audit.scan.normalize import NUMBER_MIN, Normalized
from audit.scan.wordlist import ROLE_SETS


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]
    score: float  # without validation
    validated: float = 1.0  # when validate() says True


@dataclass(frozen=True)
class Hit:
    start: int  # original offsets
    end: int
    score: float
    detail: str  # for the explanation: the pattern, and whether a checksum held
    technique: str = "pattern"  # or "spelled_out" (tony at qq dot com), see Finding


_HALFWIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}
_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")  # what _HALFWIDTH changes
_NUMBER_RUN = re.compile(r"[0-9]+x?")
_FIVE_DIGITS = re.compile(r"[0-9]{5}")
_ID_CHAR = re.compile(r"[0-9_-]")
_LETTER = re.compile(r"[A-Za-zＡ-Ｚａ-ｚ]")  # what half-width makes an ASCII letter


@lru_cache(maxsize=256)
def _literal(word: str) -> re.Pattern[str]:
    return re.compile(re.escape(word))


class TextView:
    """One message as recognizers see it: original, normalized, and candidate numbers."""

    MAX_NUMBER = 21  # +86 and a 19-digit card leave room; longer runs are split on breaks
    MAX_SPANS = 256  # candidate numbers per message chunk: no real message has this many

    def __init__(self, original: str, norm: Normalized) -> None:
        self.original = original
        self.norm = norm
        self._word_ends: dict[tuple[str, ...], list[int]] = {}
        # worked out on first use (functools.cached_property takes a lock on every call)
        self._halfwidth: str | None = None
        self._has_number: bool | None = None
        self._numbers: tuple[tuple[int, int], ...] | None = None

    @property
    def halfwidth(self) -> str:
        """The original with full-width ASCII made half-width: same length, same offsets."""
        if self._halfwidth is None:
            # most texts have no full-width ASCII, and translating by a dict costs a failed
            # lookup for every other character
            has_fullwidth = _FULLWIDTH.search(self.original) is not None
            self._halfwidth = (
                self.original.translate(_HALFWIDTH) if has_fullwidth else self.original
            )
        return self._halfwidth

    @property
    def has_number(self) -> bool:
        """Whether any recognizer of numbers can find something (five digits in a row)."""
        if self._has_number is None:
            self._has_number = _FIVE_DIGITS.search(self.norm.text) is not None
        return self._has_number

    @property
    def numbers(self) -> tuple[tuple[int, int], ...]:
        """Normalized spans of digits (an ID's final x included) that start and end on breaks."""
        if self._numbers is None:
            self._numbers = self._candidate_numbers()
        return self._numbers

    def _candidate_numbers(self) -> tuple[tuple[int, int], ...]:
        text, offsets = self.norm.text, self.norm.offsets
        spans: list[tuple[int, int]] = []
        for run in _NUMBER_RUN.finditer(text):
            start, end = run.span()
            if end - start < NUMBER_MIN:
                continue  # no span of it is long enough
            breaks = {start, end}
            if offsets[end - 1] - offsets[start] != end - 1 - start:
                # something between two of its digits in the original: the breaks, found
                # without a Python step per digit (a megabyte of 1-1-1-... is one run)
                inner = offsets[start : end + 1]
                gaps = map(operator.sub, itertools.islice(inner, 1, end - start), inner)
                breaks.update(itertools.compress(range(start + 1, end), map((1).__lt__, gaps)))
            if text[end - 1] == "x":
                breaks.add(end - 1)  # only a resident ID takes the x
            ordered = sorted(breaks)
            for i, left in enumerate(ordered):
                for right in ordered[i + 1 : i + 1 + self.MAX_NUMBER]:
                    if right - left > self.MAX_NUMBER:
                        break
                    if right - left >= NUMBER_MIN:
                        spans.append((left, right))
                if len(spans) >= self.MAX_SPANS:
                    return tuple(spans[: self.MAX_SPANS])
        return tuple(spans)

    def word_before(self, start: int, words: tuple[str, ...], window: int) -> bool:
        """Whether one of ``words`` ends within ``window`` normalized chars before ``start``."""
        ends = self._word_ends.get(words)
        if ends is None:  # once per message and word list: one C-level search per word
            text = self.norm.text  # (most words are in no message: a substring test first)
            ends = sorted(
                m.end() for word in words if word in text for m in _literal(word).finditer(text)
            )
            self._word_ends[words] = ends
        i = bisect.bisect_right(ends, start)
        return i > 0 and ends[i - 1] >= start - window


class Recognizer(ABC):
    NAME: ClassVar[str]  # permanent identifier
    LABEL: ClassVar[str]  # what it finds, for explanations
    CATEGORY: ClassVar[str]
    RULE: ClassVar[str]
    SEVERITY: ClassVar[Severity]
    ROLES: ClassVar[frozenset[str]] = ROLE_SETS["both"]
    PRIORITY: ClassVar[int] = 0  # wins when hits of the same length overlap
    NORMALIZED: ClassVar[bool] = True  # hits are read in the normalized text

    @abstractmethod
    def analyze(self, view: TextView) -> list[Hit]: ...


class NumberRecognizer(Recognizer):
    PATTERNS: ClassVar[tuple[Pattern, ...]]
    CONTEXT: ClassVar[tuple[str, ...]] = ()  # when set, one must precede the number
    CONTEXT_WINDOW: ClassVar[int] = 6

    NOT_AFTER: ClassVar[tuple[str, ...]] = (
        "订单", "单号", "尾号", "编号", "工单", "流水号", "快递", "运单", "工号", "验证码", "邮编",
    )  # fmt: skip
    NOT_BEFORE: ClassVar[str] = "元块毛角万亿年月日时点分秒次个张台兆gmk"
    # the shortest and longest number PATTERNS match (a test holds them to it)
    LENGTHS: ClassVar[tuple[int, int]] = (NUMBER_MIN, TextView.MAX_NUMBER)
    SERVICE_NUMBER: ClassVar[re.Pattern[str]] = re.compile(
        r"1[0-9]{4}|9[56][0-9]{3,4}|[48]00[0-9]{7}"
    )

    def validate(self, value: str) -> bool | None:
        """True: certain; False: not this after all; None: no opinion."""
        return None

    def analyze(self, view: TextView) -> list[Hit]:
        if not view.has_number or not self.may_have_context(view):
            return []
        hits = []
        text = view.norm.text
        shortest, longest = self.LENGTHS
        for start, end in view.numbers:
            if not shortest <= end - start <= longest:
                continue  # no pattern of this recognizer matches a number this long
            value = text[start:end]
            for pattern in self.PATTERNS:
                if not pattern.regex.fullmatch(value):
                    continue
                if self._ignored(view, start, end, value):
                    break
                verdict = self.validate(value)
                if verdict is False:
                    break
                o_start, o_end = view.norm.span(start, end)
                o_start = self.widen(view.original, o_start)
                detail = f"pattern {pattern.name}" + (", checksum valid" if verdict else "")
                score = pattern.validated if verdict else pattern.score
                hits.append(Hit(o_start, o_end, score, detail))
                break
        return hits

    def widen(self, original: str, start: int) -> int:
        """Let the original span take in a sign the normalization dropped."""
        return start

    def _ignored(self, view: TextView, start: int, end: int, value: str) -> bool:
        text = view.norm.text
        if self.SERVICE_NUMBER.fullmatch(value):
            return True
        if end < len(text) and text[end] in self.NOT_BEFORE:
            return True
        if view.word_before(start, self.NOT_AFTER, 4):
            return True
        return not self.has_context(view, start, end)

    def has_context(self, view: TextView, start: int, end: int) -> bool:
        """Whether a context word the recognizer needs precedes the number (when it needs one)."""
        return not self.CONTEXT or view.word_before(start, self.CONTEXT, self.CONTEXT_WINDOW)

    def may_have_context(self, view: TextView) -> bool:
        """False when ``has_context`` is False for every number of the message: a cheap
        look at the whole message first."""
        return not self.CONTEXT or any(word in view.norm.text for word in self.CONTEXT)


class MobilePhoneRecognizer(NumberRecognizer):
    NAME = "mobile_cn"
    LABEL = "mainland mobile number"
    CATEGORY = "privacy"
    RULE = "privacy.phone"
    SEVERITY = Severity.MEDIUM
    PRIORITY = 1
    PATTERNS = (
        Pattern("mobile_cn_86", re.compile(r"(?:00)?861[3-9][0-9]{9}"), 0.9),
        Pattern("mobile_cn", re.compile(r"1[3-9][0-9]{9}"), 0.9),
    )
    LENGTHS = (11, 15)

    def widen(self, original: str, start: int) -> int:
        if start > 0 and original[start - 1] in "+＋":
            return start - 1
        return start


class ResidentIdRecognizer(NumberRecognizer):
    NAME = "resident_id_cn"
    LABEL = "resident ID number"
    CATEGORY = "privacy"
    RULE = "privacy.resident_id"
    SEVERITY = Severity.HIGH
    PRIORITY = 4
    PATTERNS = (
        Pattern(
            "resident_id_18",
            re.compile(r"[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])[0-9]{5}[0-9x]"),
            0.5,
        ),
    )
    LENGTHS = (18, 18)
    WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

    def validate(self, value: str) -> bool | None:
        """GB 11643 check character; the birth date must be a real day too."""
        day = int(value[12:14])
        if not 1 <= day <= 31:
            return False
        total = sum(int(d) * w for d, w in zip(value[:17], self.WEIGHTS, strict=True))
        return "10x98765432"[total % 11] == value[17]


class BankCardRecognizer(NumberRecognizer):
    NAME = "bank_card"
    LABEL = "bank card number"
    CATEGORY = "privacy"
    RULE = "privacy.bank_card"
    SEVERITY = Severity.HIGH
    PRIORITY = 3
    PATTERNS = (
        # UnionPay, Visa, Mastercard prefixes make a valid Luhn sum more telling
        Pattern("card_known_prefix", re.compile(r"(?:62|4|5[1-5])[0-9]{14,17}"), 0.3, 1.0),
        Pattern("card_16_19", re.compile(r"[1-9][0-9]{15,18}"), 0.2, 0.8),
    )
    LENGTHS = (15, 19)

    def validate(self, value: str) -> bool | None:
        """Luhn (mod 10)."""
        total = 0
        for i, char in enumerate(reversed(value)):
            digit = int(char)
            if i % 2:
                digit = digit * 2 - 9 if digit > 4 else digit * 2
            total += digit
        return total % 10 == 0


class QqNumberRecognizer(NumberRecognizer):
    NAME = "qq_number"
    LABEL = "QQ number"
    CATEGORY = "diversion"
    RULE = "diversion.contact_id"
    SEVERITY = Severity.HIGH
    PRIORITY = 2
    CONTEXT = ("qq", "扣扣", "企鹅", "q号", "球球")
    PATTERNS = (Pattern("qq_with_context", re.compile(r"[1-9][0-9]{4,10}"), 0.8),)
    LENGTHS = (5, 11)
    # a bare Q with a colon just before the number, in the original: Q：2839105566
    CUE = re.compile(r"(?<![A-Za-z0-9])[qQＱｑ]\s{0,2}[:：]\s{0,2}$")
    ANY_CUE = re.compile(r"[qQＱｑ]\s{0,2}[:：]")  # what every CUE match holds

    def may_have_context(self, view: TextView) -> bool:
        return super().may_have_context(view) or self.ANY_CUE.search(view.original) is not None

    def has_context(self, view: TextView, start: int, end: int) -> bool:
        if super().has_context(view, start, end):
            return True
        o_start = view.norm.span(start, end)[0]
        return self.CUE.search(view.original, max(0, o_start - 6), o_start) is not None


# what people call the @ sign when they write an address out: 艾特 (its sound), 圈a and 圈圈a
# (an a in a ring), 小老鼠 (its shape)
AT_WORDS = "艾特|圈圈a|圈a|圈|小老鼠|老鼠"


class EmailRecognizer(Recognizer):
    """On the original text made half-width (normalization drops the @ and the dots), so
    ``tony＠qq.com`` counts; also written out: ``tony at qq dot com``, ``tony(at)qq.com``,
    ``tony#qq.com``, ``tony艾特qq点com``, and the Chinese names of the @ sign (``tony圈a qq点com``,
    ``tony 小老鼠 163.com``: ``AT_WORDS``). A written-out address must end in a known top-level
    domain: "me at home" is not an address.

    Each separator is looked at once: the local part is the run of address characters
    ending at it (a bounded match on the text reversed), the domain a bounded pattern after it.
    """

    NAME = "email"
    LABEL = "email address"
    CATEGORY = "privacy"
    RULE = "privacy.email"
    SEVERITY = Severity.MEDIUM
    NORMALIZED = False
    # between an address character and a domain character: a separator with neither (a @
    # or # among other signs, an 'at' in a sentence) is passed over by the regex engine
    SEPARATOR = re.compile(
        r"(?<=[A-Za-z0-9._%+-])\s{0,3}(?:(@)|[(\[（【]\s{0,2}at\s{0,2}[)\]）】]|\sat\s|"
        rf"{AT_WORDS}|#)\s{{0,3}}(?=[A-Za-z0-9-])",
        re.IGNORECASE,
    )
    LOCAL_BACKWARDS = re.compile(r"[A-Za-z0-9._%+-]{1,65}")
    _DOT = r"\s{0,2}(?:\.|dot|[(\[（【]\s{0,2}dot\s{0,2}[)\]）】]|点|。|#)\s{0,2}"
    TLDS = r"(?:com|cn|net|org|edu|gov|io|cc|me|hk|tw|top|vip|xyz|info|co)"
    DOMAIN = re.compile(
        r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,3}\.[A-Za-z]{2,24}(?![A-Za-z0-9])",
        re.ASCII,
    )
    SPELLED_DOMAIN = re.compile(
        rf"[A-Za-z0-9-]{{1,63}}(?:{_DOT}[A-Za-z0-9-]{{1,63}}){{0,2}}{_DOT}{TLDS}(?![A-Za-z0-9])",
        re.ASCII | re.IGNORECASE,
    )

    def analyze(self, view: TextView) -> list[Hit]:
        if not _MAY_BE_EMAIL.search(view.original):
            return []
        text = view.halfwidth
        backwards = text[::-1]  # the local part is read backwards from its separator
        hits = []
        for sep in itertools.islice(self.SEPARATOR.finditer(text), MAX_SEPARATORS):
            local = self.LOCAL_BACKWARDS.match(backwards, len(text) - sep.start())
            if local is None or local.end() - local.start() > 64:
                continue  # no address characters before it, or more than an address holds
            start = sep.start() - (local.end() - local.start())
            while start < sep.start() and not text[start].isalnum():
                start += 1  # the local part starts with a letter or digit
            if start == sep.start():
                continue
            spelled = sep.group(1) is None
            domain = (self.SPELLED_DOMAIN if spelled else self.DOMAIN).match(text, sep.end())
            if domain is None and not spelled:
                domain = self.SPELLED_DOMAIN.match(text, sep.end())
                spelled = domain is not None
            if domain is None:
                continue
            detail = "written out" if spelled else "pattern email"
            technique = "spelled_out" if spelled else "pattern"
            hits.append(Hit(start, domain.end(), 0.9 if spelled else 0.95, detail, technique))
        return hits


_MAY_BE_EMAIL = re.compile(r"[@＠#＃圈鼠]|at|艾特", re.IGNORECASE)
MAX_SEPARATORS = 256  # per message chunk: each is looked at with bounded patterns
MAX_CUES = 256  # contact cues per message chunk, likewise
# a written-out separator between address characters (cheap test for the fast path)
_SPELLED_EMAIL = re.compile(
    rf"[A-Za-z0-9]\s*(?:[(\[（【]\s*at\s*[)\]）】]|\sat\s|{AT_WORDS}|[#＃])\s*[A-Za-z0-9]",
    re.IGNORECASE,
)


def may_hold_contact(text: str) -> bool:
    """Whether ``text`` may hold what only the recognizers see and the automaton cannot:
    a contact cue with a colon (V：tony-811) or an e-mail written out (tony(at)qq点com).
    Substring tests first: most messages have no colon, #, 艾特 or 'at'."""
    if (":" in text or "：" in text) and WeChatIdRecognizer.CUE.search(text):
        return True
    hint = "#" in text or "＃" in text or "艾特" in text or "at" in text or "AT" in text
    hint = hint or "圈" in text or "鼠" in text
    return hint and _SPELLED_EMAIL.search(text) is not None


class WeChatIdRecognizer(Recognizer):
    """A WeChat id offered after a context word: 微信号: abc_123, 加我vx：wx-2024a.

    The context word is found in the normalized text (so 微 信 and V信 count), the id itself in
    the original just after it (full-width letters made half-width), where its _ and -
    survive. An id must hold a digit, _ or -:
    all-letter words after 微信 are too often plain English.
    """

    NAME = "wechat_id"
    LABEL = "WeChat id"
    CATEGORY = "diversion"
    RULE = "diversion.contact_id"
    SEVERITY = Severity.HIGH
    PRIORITY = 2
    NORMALIZED = False
    TRIGGERS: ClassVar[tuple[str, ...]] = (
        "微信", "威信", "薇信", "徽信", "维信", "v信", "vx", "wx", "weixin", "wechat", "绿泡泡",
    )  # fmt: skip
    # an id starts with a letter within a few characters of filler: a context word with no
    # letter or digit soon after it (加我微信加我微信...) is passed over by the regex engine,
    # and leaves the cues of a message to those that may be followed by an id
    CONTEXT = re.compile(
        r"(?:微信|威信|薇信|徽信|维信|v信|vx|wx|weixin|wechat|绿泡泡)(?:号|hao|id)?"
        r"(?=[^A-Za-z0-9]{0,12}[A-Za-z0-9])"
    )
    # a short cue with a colon, in the original: V：tony-811, v:, 薇:, 微：, and WeChat said
    # with a homophone of 信 (卫星：, 薇芯：, v芯：)
    # (the lookahead of its first characters lets the regex engine skip to them: a pattern
    # starting with the lookbehind is tried at every character of the message)
    CUE = re.compile(
        r"(?=[vVwWＶｖ薇微威卫维])(?<![A-Za-z0-9])(?:[vV][xX]?|[wW][xX]|[Ｖｖ]|薇|微|威|卫|维)"
        r"[芯星心]?\s{0,2}[:：=＝]"
    )
    # zero-width characters are filler too (微信\u200btony_811)
    FILLER = (
        r"(?:[\s:：=＝,，\-—~～·.。、()（）\[\]【】\"'“”‘’\u200b-\u200d\u2060\ufeff]"
        r"|是|为|號|号|码|id|ID){0,6}"
    )
    ID = re.compile(FILLER + r"([A-Za-z][A-Za-z0-9_-]{5,19})(?![A-Za-z0-9_@-])", re.ASCII)

    def analyze(self, view: TextView) -> list[Hit]:
        if _LETTER.search(view.original) is None:
            return []  # an id starts with a letter, and there is none (加我微信加我微信...)
        hits = []
        for context in itertools.islice(self.CONTEXT.finditer(view.norm.text), MAX_CUES):
            if view.norm.text.endswith("企业", 0, context.start()):
                continue  # 企业微信号 is the WeCom account the chat is on
            after = view.norm.span(context.start(), context.end())[1]
            hits.extend(self._id_at(view, after, context.group()))
        for cue in itertools.islice(self.CUE.finditer(view.original), MAX_CUES):
            hits.extend(self._id_at(view, cue.end(), cue.group()))
        return hits

    def _id_at(self, view: TextView, after: int, cue: str) -> list[Hit]:
        if _LETTER.search(view.original, after, after + 40) is None:
            return []  # an id starts with a letter (加我微信加我微信... has none)
        # only what may follow the cue is made half-width: filler and an id fit in 40
        found = self.ID.match(view.original[after : after + 40].translate(_HALFWIDTH))
        if found and _ID_CHAR.search(found.group(1)):
            start, end = after + found.start(1), after + found.end(1)
            return [Hit(start, end, 0.8, f"id after '{cue}'")]
        return []


def default_recognizers() -> tuple[Recognizer, ...]:
    return (
        MobilePhoneRecognizer(),
        ResidentIdRecognizer(),
        BankCardRecognizer(),
        QqNumberRecognizer(),
        EmailRecognizer(),
        WeChatIdRecognizer(),
    )
