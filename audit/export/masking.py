"""Masking personal data in text that leaves the system (exports, digests).

What is masked, and how:

- **Numbers and addresses** found by the scanner's normalization and recognizers (mobile
  phones, resident ID numbers, bank cards, e-mail, QQ and WeChat ids: the same code that raises
  ``privacy`` findings, so what the scanner learns to read, masking hides), read in the text with
  full-width forms made half-width (an e-mail with ＠). Masking errs on the safe side beyond
  that: any remaining run of 11 or more digits of the normalized text (a phone, ID or card the
  recognizers declined because of its context, e.g. after 尾号, or with a failed checksum); a
  number given in pieces (前七位1380013，后四位8000) whose pieces together make one the
  recognizers' patterns accept; and a contact id without a cue word (tony-811, wxid_a1b2c3).
- **Names** of the people in the conversation (staff and customers, given by the caller), the
  same surname with a title (张先生, 王经理), and a name introduced as such (我叫…, 姓名：…).

Each value becomes a bracketed token, **consistent within one** :class:`Pseudonyms` (one
export): the same phone number is ``[手机号-K7Q2M4XA]`` on every row, the same customer
``客户-3F2QZ7LM`` in a column and ``[客户-3F2QZ7LM]`` in the text, the same staff member
``员工3`` everywhere. Text that is stored or shown again and again (alert titles, excerpts on
a page) uses :class:`LabelsOnly`, the bare label (``[手机号]``), which links nothing and never
changes. Finding spans move with the text:
:meth:`Masked.span` maps an offset of the original to the masked text.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from audit.images import QR_RULE
from audit.scan.normalize import normalize
from audit.scan.recognizers import (
    Hit,
    NumberRecognizer,
    Recognizer,
    TextView,
    default_recognizers,
)
from audit.store.access import PERSON_LABELS, Principal, keyed_token
from audit.store.models import Severity

# recognizer NAME -> the token's label
RECOGNIZED = {
    "mobile_cn": "手机号",
    "resident_id_cn": "身份证号",
    "bank_card": "银行卡号",
    "email": "邮箱",
    "qq_number": "QQ号",
    "wechat_id": "微信号",
    "bare_contact_id": "账号",
}
LONG_NUMBER = 11  # digits in a row (normalized) that are masked whatever the recognizers say
PIECE_GAP = 8  # normalized characters that may separate the pieces of one number
INTRODUCED = re.compile(r"(?:我叫|姓名[是为:：\s]*|名字[是叫为:：\s]*)([\u4e00-\u9fff]{2,3})")
TITLES = "先生|女士|小姐|经理|老师|师傅|阿姨|大哥|大姐|姐|哥"
# a cheap test before the recognizers: digits of any width, Chinese numerals, @, an ASCII
# letter (ids, spelled-out addresses, letters for digits), or a WeChat cue
_MAYBE = re.compile(r"[0-9０-９零〇一二三四五六七八九幺两@＠艾]|微|威|薇|徽|维|[A-Za-zＡ-Ｚａ-ｚ]")
_HALFWIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}


class BareContactIdRecognizer(Recognizer):
    """An account id with no cue word before it (``tony-811``, ``wxid_a1b2c3``, ``zhang2024x``).

    For masking only: too loose for a finding (it would flag product codes in every chat), but
    text leaving the system must not carry a WeChat or QQ id because nobody wrote 微信 before
    it. An id is 6-20 ASCII letters, digits, ``_`` and ``-``, starts with a letter, and holds
    ``_`` or ``-`` or at least three digits (so iPhone15 or Mate60 stay readable).
    """

    NAME = "bare_contact_id"
    LABEL = "account id"
    CATEGORY = "privacy"
    RULE = "privacy.contact_id"
    SEVERITY = Severity.LOW
    NORMALIZED = False
    PATTERN = re.compile(
        r"(?<![A-Za-z0-9_@.-])[A-Za-z][A-Za-z0-9_-]{5,19}(?![A-Za-z0-9_@-]|\.[A-Za-z])", re.ASCII
    )

    def analyze(self, view: TextView) -> list[Hit]:
        return [
            Hit(m.start(), m.end(), 0.5, "account id without a cue")
            for m in self.PATTERN.finditer(view.original)
            if re.search(r"[_-]|(?:[0-9].*){3}", m.group())
        ]


@cache
def _recognizers() -> tuple[Recognizer, ...]:
    return (*default_recognizers(), BareContactIdRecognizer())


class LabelsOnly:
    """Pseudonyms that are the bare label: for text stored or shown more than once."""

    def token(self, label: str, value: str) -> str:
        return label

    def __len__(self) -> int:
        return 0


class Pseudonyms:
    """Stand-ins that are the same for the same value within one export.

    Staff, reviewers and surnames are few (bounded by the company), so they get readable
    numbers (员工3). Customers, phone numbers, ids and the like are as many as the export is
    long; remembering each would make memory grow with the export, so their token is a keyed
    hash instead (客户-K7Q2M4XA, :func:`audit.store.access.keyed_token`): consistent within
    the export, unlinkable across exports (a fresh random key each time), and it needs no
    memory at all.
    """

    NUMBERED = frozenset({"员工", "审核员", "姓"})

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)
        self._tokens: dict[tuple[str, str], str] = {}
        self._counts: Counter[str] = Counter()

    def token(self, label: str, value: str) -> str:
        if label not in self.NUMBERED:
            return keyed_token(self._key, label, value)  # 40 bits, 8 characters
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


QR_PAYLOAD = "二维码内容"


def mask_name(name: str) -> str:
    """张伟 -> 张*: enough for a supervisor to recognise their own staff, not more."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


class Masker:
    """Masks text and pseudonymises people for one export (or one digest).

    ``enabled=False`` passes everything through (an authorised unmasked export), so callers
    need only one code path.
    """

    def __init__(
        self, enabled: bool = True, pseudonyms: Pseudonyms | LabelsOnly | None = None
    ) -> None:
        self.enabled = enabled
        self.pseudonyms = pseudonyms if pseudonyms is not None else Pseudonyms()

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

    def payload(self, payload: str) -> str:
        """A decoded QR code's payload, masked whole: it is the address of an account (a
        personal WeChat card, a collection code), whatever the text recognizers make of it."""
        if not self.enabled or not payload:
            return payload
        return f"[{self.pseudonyms.token(QR_PAYLOAD, payload)}]"

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
            # full-width forms half-width (same offsets): recognizers reading the original
            # text see ＠ as @
            view = TextView(text.translate(_HALFWIDTH), normalize(text))
            for recognizer in _recognizers():
                label = RECOGNIZED.get(recognizer.NAME)
                if label is None:
                    continue
                for hit in recognizer.analyze(view):
                    value = re.sub(r"\s", "", view.original[hit.start : hit.end])
                    found.append((hit.start, hit.end, self.pseudonyms.token(label, value)))
            for start, end, digits in _numbers(view):
                found.append((start, end, self.pseudonyms.token("号码", digits)))
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


def _numbers(view: TextView) -> list[tuple[int, int, str]]:
    """Original spans of digits to mask beyond the recognizers' hits: long runs of the
    normalized text, and the pieces of a number split by words (``前七位1380013，后四位8000``)
    when the pieces together make a number one of the recognizers' patterns accepts."""
    text = view.norm.text
    runs = [m.span() for m in re.finditer(r"[0-9]+", text)]
    out: list[tuple[int, int, str]] = []
    for start, end in runs:
        if end - start >= LONG_NUMBER:
            out.append((*view.norm.span(start, end), text[start:end]))
    # recognizers that need a cue word (QQ) would take any digits: only self-evident numbers
    numbers = [r for r in _recognizers() if isinstance(r, NumberRecognizer) and not r.CONTEXT]
    for i in range(len(runs)):
        for j in range(i + 1, min(i + 3, len(runs))):
            if runs[j][0] - runs[j - 1][1] > PIECE_GAP:
                break
            pieces = runs[i : j + 1]
            value = "".join(text[a:b] for a, b in pieces)
            if any(
                p.regex.fullmatch(value) and r.validate(value) is not False
                for r in numbers
                for p in r.PATTERNS
            ):
                out += [(*view.norm.span(a, b), value) for a, b in pieces]
    return out


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


# --------------------------------------------------------------------------- shown and stored


def stored_masker() -> Masker:
    """For text that is stored (alert titles): masked with bare labels, whoever reads it."""
    return Masker(pseudonyms=LabelsOnly())


def masker_for(principal: Principal | None) -> Masker:
    """The masker for showing text to ``principal`` (``None``: nobody in particular, e.g. a
    digest's recipients): personal data masked unless they may unmask (as for exports)."""
    return Masker(enabled=principal is None or not principal.may_unmask, pseudonyms=LabelsOnly())


def masked_image_finding(
    masker: Masker, rule: str, matched: str, explanation: str
) -> tuple[str, str]:
    """A picture's finding's matched words and explanation as ``masker`` lets them be shown.

    Its offsets index the text read in the picture (or the QR payload), not the message's
    text, so it is masked on its own: a QR payload whole (the explanation quotes its start),
    OCR text as any text."""
    if not masker.enabled:
        return matched, explanation
    if rule.startswith(QR_RULE):
        shown = masker.payload(matched)
        quoted = matched[:80]
        return shown, masker.text(explanation.replace(quoted, shown) if quoted else explanation)
    return masker.text(matched), masker.text(explanation)


EXCERPT_CONTEXT = 24  # characters either side of the finding


def masked_excerpt(
    masker: Masker,
    text: str,
    start: int | None,
    end: int | None,
    names: Mapping[str, str] | None = None,
    context: int = EXCERPT_CONTEXT,
) -> str:
    """The part of ``text`` around ``[start, end)``, masked by ``masker``, on one line: every
    excerpt of a message that is shown (digests, pages) is cut by this one function."""
    masked = masker.mask(text, names)
    if start is None or end is None:
        start, end = 0, 0
    else:
        start, end = masked.span(start, end)
    lo = max(0, start - context)
    hi = min(len(masked.text), max(end, start) + context)
    piece = " ".join(masked.text[lo:hi].split())
    return ("…" if lo > 0 else "") + piece + ("…" if hi < len(masked.text) else "")
