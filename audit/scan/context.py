"""Context judgement: is a hit said negated, asked, past, hypothetical, quoted, of oneself,
or as a notice of the customer's rights?

「我没说要投诉」「上次那个投诉处理完了」「如需投诉可拨打10080」 contain a listed term and are
ordinary service talk. After the scanner has collected a message's findings, ``judge`` looks
around each hit for *cues* and decides, per category and role, what they do to it:

- **suppress**: the hit is dropped. Everything downstream (alerts, scorecard deductions,
  status and digest counts) counts findings whatever their score, so a kept "excused" hit
  would still be the false alarm this step exists to remove.
- **lower**: the hit stays a finding one severity lower with ``LOWERED_SCORE``, still above
  the counting threshold (0.5); ``Finding.context`` and the explanation say why, for the
  reviewer to judge ("question (吗)").
- nothing: a cue that does not excuse this category (「加我微信好吗」 from staff is an offer
  put as a question; a phone number is personal data whatever is said around it).

Cues are function words of Chinese, not compliance policy: they live in ``context_cues.txt``
next to this module, not in the word lists. What each cue does to each category is ``RULES``
below. ``context_model.py`` can learn the decision from labelled hits instead; trained on
the few hits with cues of the tuning set it suppressed almost any hit with a cue, a request
for a verification code included. Trained again with the context set's train half
(``tests/data/eval/context``, written to hold innocent uses of listed kinds of words and
violations next to cues that do not cancel them), it judged that set's dev half about as
the rules do (two false alarms fewer in 261 clean messages, one label more in 158), and a
model over richer features of the surroundings (every cue of the sentence with its side,
clause and distance, punctuation, role, the rules' own verdict) lost recall there: the
rules stay (``bench/context.py`` compares them).

Cues are looked for on the normalized text (spacing, traditional forms and full-width are
undone there) with one pattern shaped as a prefix tree, which matches the longest word at
each place, so that words merely containing a cue character (非常, 特别, 不得不, 有没有) shadow
it. Punctuation, which normalization drops, is read from the original: it bounds clauses
(，。？ ...), marks questions and opens quotations. A hit looks no further than ``WINDOW``
characters each side (hits whose windows overlap share one look), so the cost is linear in
the message; nothing at all runs for a message without hits, and recognizer hits (a phone
number, an e-mail, a WeChat id shown) are never judged.

Scopes, in normalized characters between the cue and the hit:

- negation: a negating verb (不会 不想 没说 不敢 别 ...) up to ``NEGATION_REACH`` before the
  hit in its clause (as far as the other clause cues reach: 「我们不会以任何理由要求您加私人
  微信」); a bare 不/没/无/未 only right before it (``BARE_REACH``) with at most a
  modal or light verb between (没去投诉; 「不退钱我投诉」 negates 退钱, not 投诉). 就/才/但
  between end the scope. A dismissal right after the hit (投诉就算了). 不是…吗 is no
  negation but a request for agreement (「我不是说了要投诉吗」).
- question: a clause ending in ？ or in 吗/么, or an A-not-A form (能不能, 是不是) in the clause;
  a how/where/whom word (怎么, 如何, 找谁) before the hit in its clause (怎么投诉, not
  「找记者来看看你们怎么骗人的」).
- past: 上次/之前/以前... before the hit in its clause, or 处理完/解决了... after it in its
  sentence, unless the sentence says it is not over (还没解决). 已经 alone is not enough:
  「我已经打了12315」 is an escalation.
- conditional: 如果/要是/万一/如遇... before the hit with no 就/那 between (the hit is the
  condition, not the threatened consequence: 「不解决我就投诉」 stays), 的话 after it, or a
  consequence stated as a rule (以后会, 超出后) right before it. It excuses a complaint or a
  promise; a diversion or a fraud only when the condition names someone else doing it
  (「若有人要求您加微信，请拒绝」 warns, 「如有需要请加我个人微信」 offers); never an illegal
  offer, which is often put as the customer's condition (「需要气枪的话可以给您留一把」).
- quotation: a reporting verb (他说, 客户说, 说什么) before the hit in its clause, or the
  hit inside 「」“”『』 or "".
- self-directed: 我/自己 as the nearest person before an insult with only degree words
  between (我真笨, 我就是个傻子, 我今天简直是个二百五), or 如我 right after it (智障如我); an
  insult naming 你/他 is never self-directed.
- rights notice: staff (or an unknown speaker) telling the customer where to complain:
  如需投诉, 可拨打, 您可以向 ... anywhere in the hit's sentence.
"""

from __future__ import annotations

import bisect
import importlib.resources
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache, cached_property
from typing import Any, Final, NamedTuple

from audit.domain import Severity
from audit.scan.finding import Finding
from audit.scan.normalize import Normalized, normalize
from audit.scan.recognizers import default_recognizers

NEGATION: Final = "negation"
QUESTION: Final = "question"
PAST: Final = "past"
CONDITIONAL: Final = "conditional"
QUOTATION: Final = "quotation"
SELF_DIRECTED: Final = "self_directed"
RIGHTS_NOTICE: Final = "rights_notice"
KINDS = (NEGATION, QUESTION, PAST, CONDITIONAL, QUOTATION, SELF_DIRECTED, RIGHTS_NOTICE)

SUPPRESS: Final = "suppress"
LOWER: Final = "lower"
LOWERED_SCORE = 0.6  # still counted (>= 0.5): a reviewer decides

BARE_REACH = 2
CLAUSE_REACH = 12  # past, conditional and quotation cues before the hit
NEGATION_REACH = CLAUSE_REACH  # a negating verb, as far as the other clause cues
SELF_REACH = 6
DISMISSAL_REACH = 3  # 投诉这事就算了
WINDOW = 40  # original characters each side of a hit that its judgement looks at

# The kinds of cue words in ``context_cues.txt``, and the cue each one gives.
CUE_KINDS = {
    "negator": NEGATION,
    "bare": "bare",
    "decoy": "decoy",
    "question": QUESTION,
    "particle": "particle",
    "asking": "asking",
    "past": PAST,
    "resolved": "resolved",
    "unresolved": "unresolved",
    "condition": CONDITIONAL,
    "concessive": "concessive",
    "consequence": "consequence",
    "after": "after_condition",
    "dismissal": "dismissal",
    "reporting": QUOTATION,
    "self": "self",
    "rights": RIGHTS_NOTICE,
}
CUES_RESOURCE = "context_cues.txt"
_PRONOUNS = "我你您他她它"
_SENTENCE_KINDS = frozenset({"resolved", "unresolved", RIGHTS_NOTICE})
_SCOPE_ENDS = ("就", "才", "便", "但", "那么", "则", "而是", "可是", "不过")
# after 就算/即使 ...: the hit holds anyway (就算亏了公司也会兜底, 即使超出也不收费)
_HOLDS_ANYWAY = re.compile("也|都|照样|照常|依然|仍然")
# what may sit between a bare 不/没 and the hit it negates: modals and light verbs (没去投诉,
# 不想打12315), not a verb of its own (不退钱我投诉 negates 退钱)
_BARE_GAP = set("要想去会能再敢用必打找给向跟到了过还也都什么任何这那种个些一所谓的")
_SELF_GAP = set("真太是就个好这那也都像简直可实在有点些么还又今天")
# whose doing a warning is about: someone other than the speaker and the customer
_THIRD_PARTY = re.compile("有人|对方|别人|他人|陌生人|任何人|骗子|不法分子|自称")
_WARNED_OF = frozenset({"diversion", "fraud"})
_LIKE_ME = "如我"  # an insult right before it is said of the speaker (智障如我)


class CueListError(ValueError):
    """A line of the cue list that cannot be used; the message names it."""


def parse_cues(text: str, source: str = CUES_RESOURCE) -> dict[str, str]:
    """``<kind>: word word ...`` lines -> word -> cue kind; raises CueListError naming the line."""
    words: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, sep, rest = line.partition(":")
        where = f"{source}:{number}"
        if not sep or kind.strip() not in CUE_KINDS:
            raise CueListError(
                f"{where}: expected '<kind>: words', kind one of {', '.join(CUE_KINDS)}"
            )
        for word in rest.split():
            known = words.get(word)
            if known is not None and known != CUE_KINDS[kind.strip()]:
                raise CueListError(f"{where}: '{word}' is already a {known} cue")
            words[word] = CUE_KINDS[kind.strip()]
    return words


@cache
def _cue_words() -> tuple[dict[str, str], re.Pattern[str], int]:
    """The cue words, one pattern matching the longest at each place, the longest length."""
    text = importlib.resources.files("audit.scan").joinpath(CUES_RESOURCE).read_text("utf-8")
    words = parse_cues(text)
    return words, re.compile(_trie_pattern(words)), max(map(len, words))


@cache
def _cue_starts() -> re.Pattern[str]:
    """Any first character of a cue word that judges (not of a decoy): a text without one
    has no cue in any window, whatever the windows cut."""
    words = _cue_words()[0]
    starts = sorted({word[0] for word, kind in words.items() if kind != "decoy"})
    return re.compile(f"[{''.join(map(re.escape, starts))}]")


def _trie_pattern(words: Iterable[str]) -> str:
    """A regular expression of ``words`` shaped as their prefix tree: at each place it tries
    one branch per next character (not every word in turn) and, being greedy, matches the
    longest word (有没有 over 没)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(c) + emit(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


# Clause ends (read in the original): an ASCII comma or full stop only outside numbers.
# Written as one character of a class and then what that character needs, the regex engine
# skips ahead to the next such character (an alternation of ``[...]+|,(?!\d)|...`` is tried
# at every character of the text): ``[，。,.](?:(?<=[，。])[，。]*|(?<=,)(?!\d)|...)``.
_CLAUSE_MARKS = "，。！？；\n!?;…～~"
_CLAUSE_END = re.compile(
    rf"[{_CLAUSE_MARKS},.](?:(?<=[{_CLAUSE_MARKS}])[{_CLAUSE_MARKS}]*|(?<=,)(?!\d)|(?<=\.)(?!\w))"
)
_SENTENCE_MARKS = "。！？\n!?"
_SENTENCE_END = re.compile(
    rf"[{_SENTENCE_MARKS}.](?:(?<=[{_SENTENCE_MARKS}])[{_SENTENCE_MARKS}]*|(?<=\.)(?!\w))"
)
_QUOTES = re.compile(r"[「『“‘」』”’\"?？]")  # and question marks, to know if there are any
_OPENERS = "「『“‘"


class Cue(NamedTuple):
    """One cue word of a message, in normalized offsets (a tuple: many are made, few kept)."""

    kind: str
    word: str
    start: int
    end: int


@dataclass(frozen=True)
class Applied:
    """A cue whose scope reaches a hit: what the rules, or a model, judge by."""

    kind: str  # one of KINDS
    word: str  # as the reason shows it: 没, 吗, ？, 「」
    distance: int  # normalized characters between cue and hit (0: adjacent or around it)
    after: bool  # the cue follows the hit

    @property
    def reason(self) -> str:
        return {
            NEGATION: f"negated by {self.word}",
            QUESTION: f"question ({self.word})",
            PAST: f"past ({self.word})",
            CONDITIONAL: f"conditional ({self.word})",
            QUOTATION: f"quoted ({self.word})",
            SELF_DIRECTED: f"self-directed ({self.word})",
            RIGHTS_NOTICE: f"rights notice ({self.word})",
        }[self.kind]


# What each cue does, per category. A question excuses a customer asking (能加你微信吗), never
# a staff offer (加我微信好吗): "<kind>_customer" (or "<kind>_staff") entries apply to that
# role only.
Policy = dict[str, dict[str, str]]
RULES: Final[Policy] = {
    # asking for codes or ID photos: a refusal (我们不会让您发验证码) is clean; a rights notice
    # is not an excuse here, its words (可以通过) fit 「您可以通过短信把验证码发我」 too
    "privacy": {NEGATION: SUPPRESS, QUOTATION: LOWER},
    "complaint": {
        NEGATION: SUPPRESS,
        QUESTION: SUPPRESS,
        PAST: SUPPRESS,
        CONDITIONAL: SUPPRESS,
        QUOTATION: SUPPRESS,
        RIGHTS_NOTICE: SUPPRESS,
    },
    # a customer quoting an offer (短信说“请加微信处理”) reports someone else's; someone
    # else's offer inside a condition is a warning (若有人要求您加微信，请拒绝)
    "diversion": {
        NEGATION: SUPPRESS,
        "question_customer": SUPPRESS,
        QUOTATION: LOWER,
        "quotation_customer": SUPPRESS,
        CONDITIONAL: SUPPRESS,
    },
    "promise": {
        NEGATION: SUPPRESS,
        QUESTION: LOWER,
        CONDITIONAL: SUPPRESS,
        QUOTATION: SUPPRESS,
        PAST: LOWER,
    },
    "abuse": {NEGATION: SUPPRESS, CONDITIONAL: LOWER, QUOTATION: SUPPRESS, SELF_DIRECTED: SUPPRESS},
    # a customer asking for a fraud (你们收手机卡吗) is soliciting one; someone else's inside
    # a condition is a warning or a worry (如遇有人收手机卡请报警, 万一有人冒用身份证怎么办)
    "fraud": {NEGATION: SUPPRESS, QUOTATION: SUPPRESS, CONDITIONAL: SUPPRESS},
    # 「听说有人在卖改号软件」 reports an offer, it makes none; asked for, it is solicited;
    # negated by staff it is a refusal or the store's policy (门店不销售任何仿真枪)
    "illegal": {"negation_staff": SUPPRESS, QUOTATION: SUPPRESS},
}
_STRENGTH = {SUPPRESS: 2, LOWER: 1}

# What the cues do to a paraphrase detector's finding (``model.<category>``, located on its
# most influential words by ``audit.quality.detectors``). A model finding has no listed term
# behind it, only a probability: a cue that would lower a listed hit drops it, and a few cues
# more excuse it (a staff question about a product is no guarantee; a past or hypothetical
# fraud is a warning; a rights notice names where to complain, it threatens nothing).
MODEL_RULES: Final[Policy] = {
    "diversion": {
        NEGATION: SUPPRESS,
        "question_customer": SUPPRESS,
        QUOTATION: SUPPRESS,
        "quotation_customer": SUPPRESS,
        CONDITIONAL: SUPPRESS,
    },
    "promise": {
        NEGATION: SUPPRESS,
        QUESTION: SUPPRESS,
        CONDITIONAL: SUPPRESS,
        QUOTATION: SUPPRESS,
        PAST: SUPPRESS,
        RIGHTS_NOTICE: SUPPRESS,
    },
    "fraud": {
        NEGATION: SUPPRESS,
        QUOTATION: SUPPRESS,
        PAST: SUPPRESS,
        CONDITIONAL: SUPPRESS,
        RIGHTS_NOTICE: SUPPRESS,
    },
    "abuse": {
        NEGATION: SUPPRESS,
        CONDITIONAL: SUPPRESS,
        QUOTATION: SUPPRESS,
        SELF_DIRECTED: SUPPRESS,
        PAST: SUPPRESS,
    },
    "complaint": dict(RULES["complaint"]),
    # a customer asking whether a code must be sent is no leak; a staff request put as a
    # question (验证码能发我一下吗) is one. No rights notice: 「可以通过…发我」 is a request.
    "privacy": {
        NEGATION: SUPPRESS,
        "question_customer": SUPPRESS,
        QUOTATION: SUPPRESS,
        PAST: SUPPRESS,
        CONDITIONAL: SUPPRESS,
    },
    # asked for, it is solicited, by staff (晚上来玩两把吗) or customer (有没有叶子): no excuse
    "illegal": {
        NEGATION: SUPPRESS,
        "negation_staff": SUPPRESS,
        QUOTATION: SUPPRESS,
        PAST: SUPPRESS,
        CONDITIONAL: SUPPRESS,
        RIGHTS_NOTICE: SUPPRESS,
    },
}


class _Marks:
    """Punctuation that ends a clause or a sentence, in original offsets, within a window."""

    def __init__(self, pattern: re.Pattern[str], original: str, lo: int, hi: int) -> None:
        spans = [m.span() for m in pattern.finditer(original, lo, hi)]
        self.original = original
        self.lo, self.hi = lo, hi
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]

    def around(self, start: int, end: int) -> tuple[int, int, str | None]:
        """Original bounds of the segment holding ``[start, end)``, at most ``WINDOW`` away,
        and the mark closing it ("" at the end of the text, None when the window cuts it).

        A mark inside the hit (投，诉) does not cut it."""
        j = bisect.bisect_right(self.ends, start) - 1
        k = bisect.bisect_left(self.starts, end)
        left = max(self.ends[j] if j >= 0 else self.lo, start - WINDOW)
        right, mark = (
            (self.starts[k], self.original[self.starts[k] : self.ends[k]])
            if k < len(self.starts)
            else (self.hi, "" if self.hi == len(self.original) else None)
        )
        if right > end + WINDOW:
            return left, end + WINDOW, None
        return left, right, mark


class MessageCues:
    """The cues, clause and sentence ends and quotation marks of a message, within original
    ``[lo, hi)`` (default: all of it): the hits of a long message look only near themselves."""

    def __init__(self, original: str, norm: Normalized, lo: int = 0, hi: int | None = None) -> None:
        hi = len(original) if hi is None else hi
        self.original = original
        self.norm = norm
        self.offsets = norm.offsets
        words, pattern, _ = _cue_words()
        self.cues = []
        for match in pattern.finditer(norm.text, self.to_norm(lo), self.to_norm(hi)):
            word = match.group()
            kind = words[word]
            if kind != "decoy":
                self.cues.append(Cue(kind, word, match.start(), match.end()))
        self.cue_starts = [c.start for c in self.cues]
        self.sentence_cues = any(c.kind in _SENTENCE_KINDS for c in self.cues)
        self.clauses = _Marks(_CLAUSE_END, original, lo, hi)
        self.window = (lo, hi)
        quotes = _QUOTES.findall(original, lo, hi)
        # nothing to look at: a good share of the messages with a hit
        self.empty = not self.cues and not quotes
        self.quote_at: list[int] = []
        self.quote_marks: list[str] = []
        if quotes and set(quotes) - set("?？"):
            for match in _QUOTES.finditer(original, lo, hi):
                if match.group() not in "?？":
                    self.quote_at.append(match.start())
                    self.quote_marks.append(match.group())

    @cached_property
    def sentences(self) -> _Marks:
        return _Marks(_SENTENCE_END, self.original, *self.window)

    def to_norm(self, original: int) -> int:
        """The normalized offset of the first character at or after ``original``."""
        return bisect.bisect_left(self.offsets, original)

    def cues_in(self, lo: int, hi: int) -> list[Cue]:
        """Cues lying within normalized ``[lo, hi)``."""
        i = bisect.bisect_left(self.cue_starts, lo)
        j = bisect.bisect_left(self.cue_starts, hi)
        return [c for c in self.cues[i:j] if c.end <= hi]

    def quoted(self, start: int, end: int) -> bool:
        """Whether original ``[start, end)`` sits inside quotation marks of its sentence."""
        left, right, _ = self.sentences.around(start, end)
        i = bisect.bisect_left(self.quote_at, left)
        j = bisect.bisect_left(self.quote_at, start)
        opened = 0
        for mark in self.quote_marks[i:j]:
            step = 1 if mark in _OPENERS else -1
            opened = 1 - opened if mark == '"' else max(0, opened + step)
        if not opened:
            return False
        k, m = bisect.bisect_left(self.quote_at, end), bisect.bisect_left(self.quote_at, right)
        return any(mark not in _OPENERS for mark in self.quote_marks[k:m])


def applied_cues(cues: MessageCues, finding: Finding, role: str | None) -> list[Applied]:
    """The cues whose scope reaches ``finding``'s hit."""
    if cues.empty:
        return []
    text = cues.norm.text
    start, end = cues.to_norm(finding.start), cues.to_norm(finding.end)
    left, right, mark = cues.clauses.around(finding.start, finding.end)
    c_lo, c_hi = cues.to_norm(left), cues.to_norm(right)
    found: list[Applied] = []

    def add(kind: str, word: str, distance: int, after: bool = False) -> None:
        found.append(Applied(kind, word, distance, after))

    nearest_person: Cue | None = None
    for cue in cues.cues_in(c_lo, c_hi):
        if cue.kind == "consequence" and cue.start < start < cue.end:
            add(CONDITIONAL, cue.word, 0)  # 以后会 sharing its 会 with the term 会限速
        elif cue.kind == NEGATION and cue.start < start < cue.end:
            add(NEGATION, cue.word, 0)  # 不出售 sharing its 出售 with the term 出售电话卡
        elif cue.end <= start:
            gap = text[cue.end : start]
            distance = start - cue.end
            free = not any(s in gap for s in _SCOPE_ENDS)
            bare = cue.kind == "bare" and all(c in _BARE_GAP for c in gap)
            if free and (
                (cue.kind == NEGATION and distance <= NEGATION_REACH)
                or (bare and distance <= BARE_REACH)
            ):
                add(NEGATION, cue.word, distance)
            elif cue.kind in (QUESTION, "asking"):
                add(QUESTION, cue.word, distance)
            elif cue.kind == PAST and distance <= CLAUSE_REACH:
                add(PAST, cue.word, distance)
            elif (
                _opens_condition(cue, text, end)
                and distance <= CLAUSE_REACH
                and free
                and _conditional_for(finding, text, cue.end, start)
            ) or (cue.kind == "consequence" and distance <= BARE_REACH):
                add(CONDITIONAL, cue.word, distance)
            elif cue.kind == QUOTATION and distance <= CLAUSE_REACH:
                add(QUOTATION, cue.word, distance)
            if cue.kind == "self" or (cue.kind == QUOTATION and cue.word[-1] in _PRONOUNS):
                nearest_person = cue
        elif cue.start >= end:
            distance = cue.start - end
            closing = cue.kind == "particle" and mark is not None and c_hi - cue.end <= 1
            if cue.kind == QUESTION or closing:
                add(QUESTION, cue.word, distance, after=True)
            elif cue.kind == "after_condition" and not any(
                s in text[end : cue.start] for s in _SCOPE_ENDS
            ):
                add(CONDITIONAL, cue.word, distance, after=True)
            elif cue.kind == "dismissal" and distance <= DISMISSAL_REACH:
                add(NEGATION, cue.word, distance, after=True)
    for sign in "？?":
        if mark and sign in mark:
            add(QUESTION, sign, c_hi - end, after=True)
            break
    if any(a.kind == QUESTION for a in found) and any(a.kind == NEGATION for a in found):
        # 不是…吗 asks for agreement: 「你不是傻子吗」「我不是说了要投诉吗」 affirm
        found = [a for a in found if a.kind not in (NEGATION, QUESTION)]
    if cues.sentence_cues:
        left, right, _ = cues.sentences.around(finding.start, finding.end)
        in_sentence = cues.cues_in(cues.to_norm(left), cues.to_norm(right))
        unresolved = any(cue.kind == "unresolved" for cue in in_sentence)
        if unresolved:
            found = [a for a in found if a.kind != PAST]
        for cue in in_sentence:
            if cue.kind == "resolved" and cue.start >= end and not unresolved:
                add(PAST, cue.word, cue.start - end, after=True)
            elif cue.kind == RIGHTS_NOTICE and role != "customer":
                add(RIGHTS_NOTICE, cue.word, abs(cue.start - start), after=cue.start >= end)
    if cues.quote_at and cues.quoted(finding.start, finding.end):
        add(QUOTATION, "「」", 0)
    if (
        finding.category == "abuse"
        and nearest_person is not None
        and _self_directed(text, nearest_person, start, end)
    ):
        add(SELF_DIRECTED, nearest_person.word, start - nearest_person.end)
    elif (
        finding.category == "abuse"
        and text.startswith(_LIKE_ME, end)
        and not any(p in text[c_lo:end] for p in "你您他她")
    ):
        add(SELF_DIRECTED, _LIKE_ME, 0, after=True)  # 智障如我: the speaker compares themself
    return found


def _conditional_for(finding: Finding, text: str, lo: int, hi: int) -> bool:
    """A listed diversion or fraud inside a condition is a warning only when someone else
    does it (若对方要求加微信，请拒绝; 如遇有人收手机卡请报警); said of no one, the condition is
    the offer's own (如有需要请加我个人微信; 万一有问题您直接加我微信)."""
    if finding.category not in _WARNED_OF or finding.rule.startswith("model."):
        return True
    return _THIRD_PARTY.search(text, lo, hi) is not None


def _opens_condition(cue: Cue, text: str, end: int) -> bool:
    """Whether ``cue`` makes what follows it, up to ``end``, a condition: 如果 does; 就算 or
    即使 only when nothing says the hit holds anyway (就算亏了公司也会兜底 promises)."""
    if cue.kind == "concessive":
        return _HOLDS_ANYWAY.search(text, cue.end, end) is None
    return cue.kind == CONDITIONAL


def _self_directed(text: str, person: Cue, start: int, end: int) -> bool:
    if person.kind != "self" or start - person.end > SELF_REACH:
        return False
    if any(p in text[start:end] for p in "你您他她"):
        return False
    return all(c in _SELF_GAP for c in text[person.end : start])


def decide(
    category: str, role: str | None, applied: Sequence[Applied], policy: Policy = RULES
) -> tuple[str, Applied | None]:
    """The strongest effect the applied cues have on a hit of ``category`` (``""``: none)."""
    effects = policy.get(category, {})
    best: tuple[str, Applied | None] = ("", None)
    for cue in applied:
        # a role's own entry first: 「短信说“加微信”」 quoted by a customer is no offer
        effect = effects.get(f"{cue.kind}_{role}", "") or effects.get(cue.kind, "")
        if effect and _STRENGTH[effect] > _STRENGTH.get(best[0], 0):
            best = (effect, cue)
    return best


# decides what the cues reaching a hit do to it: ``decide`` (the rules) or a learned model
Decider = Callable[[str, str | None, Sequence[Applied]], tuple[str, Applied | None]]


def judge(
    text: str,
    norm: Normalized,
    role: str | None,
    findings: list[Finding],
    decider: Decider = decide,
) -> list[Finding]:
    """``findings`` with context applied: suppressed hits gone, lowered ones marked."""
    if not findings:
        return findings
    shown = _shown_data_rules()
    # no cue word and no quotation or question mark anywhere: no cue reaches any hit
    uncued = _cue_starts().search(norm.text) is None and _QUOTES.search(text) is None
    out = []
    for group, (lo, hi) in _windows([f for f in findings if f.rule not in shown], len(text)):
        cues = None if uncued else MessageCues(text, norm, lo, hi)
        for finding in group:
            applied = [] if cues is None else applied_cues(cues, finding, role)
            out.extend(_judged(finding, decider(finding.category, role, applied)))
    out.extend(f for f in findings if f.rule in shown)
    return out


def excuse(
    text: str,
    role: str | None,
    category: str,
    start: int,
    end: int,
    policy: Policy = MODEL_RULES,
) -> Applied | None:
    """The cue that excuses a hit of ``category`` on original ``[start, end)`` of ``text``
    under ``policy`` (by default the paraphrase detectors'), or None: the hit stands. For a
    finding that is not a listed term's, located by whoever made it."""
    norm = normalize(text)
    margin = WINDOW + _cue_words()[2]
    cues = MessageCues(text, norm, max(0, start - margin), min(len(text), end + margin))
    probe = Finding(category, f"{category}.located", Severity.MEDIUM, 1.0, start, end, "", "")
    effect, cue = decide(category, role, applied_cues(cues, probe, role), policy)
    return cue if effect == SUPPRESS else None


def cue_spans(text: str) -> list[tuple[int, int]]:
    """Original spans of the cue words of ``text`` that judge a hit (negators, question and
    time words, conditions, reporting verbs ...; not the speaker's 我): a locator of hits
    leaves them out, so that a hit found by weight lands on the words they speak of."""
    norm = normalize(text)
    cues = MessageCues(text, norm)
    offsets = norm.offsets
    return [
        (offsets[c.start], offsets[c.end - 1] + 1)
        for c in cues.cues
        if c.kind != "self" and c.end <= len(offsets)
    ]


_QUOTED = re.compile(r"「[^」]*」|『[^』]*』|“[^”]*”|\"[^\"]*\"")


def reported_spans(text: str) -> list[tuple[int, int]]:
    """Original spans of someone else's words: inside quotation marks, or after a reporting
    verb (他说, 听说, 网上说 ...) to the end of its clause."""
    spans = [m.span() for m in _QUOTED.finditer(text)]
    norm = normalize(text)
    cues = MessageCues(text, norm)
    offsets = norm.offsets
    for cue in cues.cues:
        if cue.kind == QUOTATION:
            start = offsets[cue.end - 1] + 1
            end = _CLAUSE_END.search(text, start)
            spans.append((start, end.start() if end else len(text)))
    return spans


def _windows(findings: list[Finding], length: int) -> list[tuple[list[Finding], tuple[int, int]]]:
    """Findings grouped by overlapping windows (``WINDOW`` plus the longest cue each side)."""
    margin = WINDOW + _cue_words()[2]
    groups: list[tuple[list[Finding], tuple[int, int]]] = []
    for finding in sorted(findings, key=lambda f: f.start):
        lo, hi = max(0, finding.start - margin), min(length, finding.end + margin)
        if groups and lo <= groups[-1][1][1]:
            members, (first, last) = groups[-1]
            groups[-1] = ([*members, finding], (first, max(last, hi)))
        else:
            groups.append(([finding], (lo, hi)))
    return groups


def _judged(finding: Finding, decision: tuple[str, Applied | None]) -> list[Finding]:
    effect, cue = decision
    if effect == SUPPRESS:
        return []
    if effect != LOWER or cue is None:
        return [finding]
    return [
        replace(
            finding,
            severity=_lower(finding.severity),
            score=min(finding.score, LOWERED_SCORE),
            context=cue.reason,
            explanation=f"{finding.explanation}; context: {cue.reason}, lowered",
        )
    ]


@cache
def _shown_data_rules() -> frozenset[str]:
    """Rules of the recognizers: a phone number or an id shown is shown, whatever is said."""
    return frozenset(recognizer.RULE for recognizer in default_recognizers())


def _lower(severity: Severity) -> Severity:
    return next((s for s in Severity if s.rank == severity.rank - 1), severity)
