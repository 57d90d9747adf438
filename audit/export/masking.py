"""Masking personal data in text that leaves the system (exports, digests).

What is masked, and how:

- **Numbers and addresses** found by the scanner's recognizers (mobile phones, resident ID
  numbers, bank cards, e-mail, QQ and WeChat ids: the same code that raises ``privacy`` findings,
  so full-width digits, Chinese numerals and inserted spaces are caught here too), plus any
  remaining run of 11 or more digits (a phone, ID or card the recognizers declined because of
  its context, e.g. after 尾号 or with a failed checksum: masking errs on the safe side).
- **Names** of the people in the conversation (staff and customers, given by the caller), the
  same surname with a title (张先生, 王经理), and a name introduced as such (我叫…, 姓名：…).

Each value becomes a bracketed token, **consistent within one** :class:`Pseudonyms` (one
export): the same phone number is ``[手机号-K7Q2M4XA]`` on every row, the same customer
``客户-3F2QZ7LM`` in a column and ``[客户-3F2QZ7LM]`` in the text, the same staff member
``员工3`` everywhere. Finding spans move with the text:
:meth:`Masked.span` maps an offset of the original to the masked text.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from audit.scan.normalize import normalize
from audit.scan.recognizers import Recognizer, TextView, default_recognizers

# recognizer NAME -> the token's label
RECOGNIZED = {
    "mobile_cn": "手机号",
    "resident_id_cn": "身份证号",
    "bank_card": "银行卡号",
    "email": "邮箱",
    "qq_number": "QQ号",
    "wechat_id": "微信号",
}
PERSON_LABELS = {"staff": "员工", "customer": "客户", "user": "审核员", "sender": "用户"}
LONG_NUMBER = re.compile(r"[0-9０-９](?:[ \-－]?[0-9０-９]){10,}")
INTRODUCED = re.compile(r"(?:我叫|姓名[是为:：\s]*|名字[是叫为:：\s]*)([\u4e00-\u9fff]{2,3})")
TITLES = "先生|女士|小姐|经理|老师|师傅|阿姨|大哥|大姐|姐|哥"
# a cheap test before the recognizers: digits of any width, Chinese numerals, @, or a WeChat cue
_MAYBE = re.compile(r"[0-9０-９零〇一二三四五六七八九幺两@＠]|微|威|薇|徽|维|[vVwWｖＶｗＷ]")


@cache
def _recognizers() -> tuple[Recognizer, ...]:
    return default_recognizers()


class Pseudonyms:
    """Stand-ins that are the same for the same value within one export.

    Staff, reviewers and surnames are few (bounded by the company), so they get readable
    numbers (员工3). Customers, phone numbers, ids and the like are as many as the export is
    long; remembering each would make memory grow with the export, so their token is a keyed
    hash instead (客户-K7Q2M4XA): consistent within the export, unlinkable across exports
    (a fresh random key each time), and it needs no memory at all.
    """

    NUMBERED = frozenset({"员工", "审核员", "姓"})

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(16)
        self._tokens: dict[tuple[str, str], str] = {}
        self._counts: Counter[str] = Counter()

    def token(self, label: str, value: str) -> str:
        if label not in self.NUMBERED:
            digest = hashlib.blake2b(
                f"{label}\x00{value}".encode(), key=self._key, digest_size=5
            ).digest()
            return f"{label}-{base64.b32encode(digest).decode()}"  # 40 bits, 8 characters
        key = (label, value)
        token = self._tokens.get(key)
        if token is None:
            self._counts[label] += 1
            token = f"{label}{self._counts[label]}"
            self._tokens[key] = token
        return token

    def __len__(self) -> int:
        return len(self._tokens)


@dataclass(frozen=True)
class Edit:
    start: int  # original
    end: int
    new_start: int  # masked
    new_end: int


@dataclass(frozen=True)
class Masked:
    """A masked text and the edits that made it, to carry spans across."""

    text: str
    edits: tuple[Edit, ...] = ()

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The masked span of original ``[start, end)``; a span touching a token takes it whole."""
        return self._at(start, left=True), self._at(end, left=False)

    def _at(self, offset: int, *, left: bool) -> int:
        shift = 0
        for e in self.edits:
            if offset <= e.start:
                break
            if offset < e.end:
                return e.new_start if left else e.new_end
            shift = e.new_end - e.end
        return offset + shift


def mask_name(name: str) -> str:
    """张伟 -> 张*: enough for a supervisor to recognise their own staff, not more."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


class Masker:
    """Masks text and pseudonymises people for one export (or one digest).

    ``enabled=False`` passes everything through (an authorised unmasked export), so callers
    need only one code path.
    """

    def __init__(self, enabled: bool = True, pseudonyms: Pseudonyms | None = None) -> None:
        self.enabled = enabled
        self.pseudonyms = pseudonyms or Pseudonyms()

    def person(self, kind: str, key: object, name: str) -> str:
        """The column value for a person: their pseudonym, or their name when not masking."""
        if not self.enabled:
            return name
        return self.pseudonyms.token(PERSON_LABELS.get(kind, kind), str(key))

    def mask(self, text: str, names: Mapping[str, str] | None = None) -> Masked:
        """``names``: name as written -> its pseudonym (from :meth:`person`)."""
        if not self.enabled or not text:
            return Masked(text)
        spans = self._spans(text, names or {})
        if not spans:
            return Masked(text)
        out: list[str] = []
        edits: list[Edit] = []
        last = 0
        length = 0
        for start, end, token in spans:
            out.append(text[last:start])
            length += start - last
            replacement = f"[{token}]"
            out.append(replacement)
            edits.append(Edit(start, end, length, length + len(replacement)))
            length += len(replacement)
            last = end
        out.append(text[last:])
        return Masked("".join(out), tuple(edits))

    def text(self, text: str, names: Mapping[str, str] | None = None) -> str:
        return self.mask(text, names).text

    def value(self, data: Any, names: Mapping[str, str] | None = None) -> Any:
        """Every string inside JSON-like ``data`` masked (deductions, metrics, details)."""
        if not self.enabled:
            return data
        if isinstance(data, str):
            return self.text(data, names)
        if isinstance(data, dict):
            return {k: self.value(v, names) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.value(v, names) for v in data]
        return data

    # ------------------------------------------------------------------ detection

    def _spans(self, text: str, names: Mapping[str, str]) -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []  # (start, end, token)
        if _MAYBE.search(text):
            view = TextView(text, normalize(text))
            for recognizer in _recognizers():
                label = RECOGNIZED.get(recognizer.NAME)
                if label is None:
                    continue
                for hit in recognizer.analyze(view):
                    value = re.sub(r"\s", "", text[hit.start : hit.end])
                    found.append((hit.start, hit.end, self.pseudonyms.token(label, value)))
            for m in LONG_NUMBER.finditer(text):
                digits = re.sub(r"[ \-－]", "", m.group()).translate(_HALF)
                found.append((m.start(), m.end(), self.pseudonyms.token("号码", digits)))
        for name, token in names.items():
            if len(name) < 2:
                continue  # one character would mask half the language
            for m in re.finditer(re.escape(name), text):
                found.append((m.start(), m.end(), token))
            if _is_cjk(name[0]) and len(name) <= 4:
                # 张先生 may be anyone named 张: a surname token, not the person's
                surname = self.pseudonyms.token("姓", name[0])
                for m in re.finditer(f"{re.escape(name[0])}(?=(?:{TITLES}))", text):
                    found.append((m.start(), m.end(), surname))
        for m in INTRODUCED.finditer(text):
            found.append((m.start(1), m.end(1), self.pseudonyms.token("姓名", m.group(1))))
        return _resolve(found)


_HALF = {0xFF10 + i: 0x30 + i for i in range(10)}


def _is_cjk(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"


def _resolve(found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Non-overlapping spans, longest first where they collide, in text order."""
    found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    out: list[tuple[int, int, str]] = []
    for span in found:
        if out and span[0] < out[-1][1]:
            if span[1] > out[-1][1]:  # overlapping and reaching further: widen the kept one
                start, _, token = out[-1]
                out[-1] = (start, span[1], token)
            continue
        out.append(span)
    return out
