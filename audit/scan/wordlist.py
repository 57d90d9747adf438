"""The word lists: sensitive terms per category, and the allow list.

They are data a compliance officer edits, one UTF-8 file per category in ``wordlists/``
(``<category>.txt``) plus ``allow.txt``::

    # a comment (a whole line, or after a space at the end of a line)
    @category diversion            optional header; default: the file name
    加我微信 | high | staff | 加我v信, 加我vx, 加我wei xin
    私下转账 | critical | both | id=private_transfer
    转我个人账户                      severity medium and roles both by default

Fields after the term are optional: ``severity`` (low, medium, high, critical), ``roles``
(staff, customer, both) and ``variants`` (other spellings, separated by , or ，), in that
order, empty for the default; an ``id=<slug>`` field may come anywhere after the term. The
rule id is ``<category>.<slug>``; without ``id=`` the slug is the pinyin of the normalized
term (加我微信 -> ``jia_wo_wei_xin``). The scanner generates further spellings of every
term (see ``variants.py``); a ``gen=<kinds>`` field narrows that to some of ``GENERATORS``
(comma separated), or ``none``; ``all`` is the default. ``allow.txt`` holds one innocent
phrase per line (企业微信, 傻瓜相机): a term found inside one of them is not a finding.
``homophones.txt`` lists, per character,
the characters and letters people write instead of it (``微 | 威, 薇, 维 | v``);
``symbols.txt`` the emoji and symbols that stand for a character (``🐶 | 狗``, ``➕ | 加``);
``split_chars.txt`` the characters people write split into parts (``弓长 | 张``).

Every category needs its file: a missing or unreadable one is an error naming it (an empty
file turns a category off on purpose). The special files are optional.

Terms and variants are compared after normalization, so ``微 信`` and ``微信`` are duplicates.
Every bad line is reported as ``<file>:<line>: <reason>``, all of them in one
``WordListError``. ``wordlist_hash`` covers what the lists mean (comments, spacing and
spelled-out defaults do not change it), file by file in name order.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from audit.domain import CATEGORIES, Severity
from audit.scan.normalize import normalize

ROLE_SETS: dict[str, frozenset[str]] = {
    "staff": frozenset({"staff"}),
    "customer": frozenset({"customer"}),
    "both": frozenset({"staff", "customer"}),
}
ALLOW_FILE = "allow.txt"
HOMOPHONE_FILE = "homophones.txt"
SYMBOL_FILE = "symbols.txt"
SPLIT_FILE = "split_chars.txt"
SPECIAL_FILES = (ALLOW_FILE, HOMOPHONE_FILE, SYMBOL_FILE, SPLIT_FILE)
# what the scanner generates for every term (see variants.py); gen= narrows it per term
GENERATORS = (
    "pinyin", "initials", "homophones", "polite", "numerals", "lookalikes", "split_chars",
    "fillers", "wording",
)  # fmt: skip
DEFAULT_SEVERITY = Severity.MEDIUM
DEFAULT_ROLES = "both"

_COMMENT = re.compile(r"(?:^|\s)#.*$")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_]*")
_FIELDS = ("severity", "roles", "variants")


class WordListError(ValueError):
    """One or more bad lines; ``errors`` holds each ``<file>:<line>: <reason>``."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class Term:
    category: str
    slug: str
    term: str
    severity: Severity
    roles: frozenset[str]
    variants: tuple[str, ...]
    source: str  # "<file>:<line>"
    generate: frozenset[str] = frozenset(GENERATORS)  # which GENERATORS apply

    @property
    def rule(self) -> str:
        return f"{self.category}.{self.slug}"

    def applies_to(self, role: str | None) -> bool:
        return role is None or role in self.roles


@dataclass(frozen=True)
class Homophone:
    char: str  # normalized
    chars: tuple[str, ...]  # characters written instead (威 for 微)
    letters: tuple[str, ...]  # letters written instead of its pinyin initial (v for 微)


@dataclass(frozen=True)
class Symbol:
    symbol: str  # one code point, as written (normalization would drop it)
    means: str  # the one normalized character it stands for


@dataclass(frozen=True)
class SplitChar:
    parts: str  # normalized, what is written (弓长)
    char: str  # the character meant (张)


@dataclass(frozen=True)
class WordLists:
    terms: tuple[Term, ...]
    allow: tuple[str, ...]
    wordlist_hash: str
    homophones: tuple[Homophone, ...] = ()
    symbols: tuple[Symbol, ...] = ()
    split_chars: tuple[SplitChar, ...] = ()
    # the officers' edits applied on top of the files (see overlay.py); "" for the files alone
    overlay_key: str = ""


def slugify(term: str) -> str:
    """An ascii rule slug from a term: its normalized form in tone-less pinyin."""
    from pypinyin import lazy_pinyin  # its dictionaries load in a second: only when parsing

    syllables = lazy_pinyin(normalize(term).text)
    return re.sub(r"[^a-z0-9]+", "_", "_".join(syllables).lower()).strip("_")


def canonical_line(term: Term) -> str:
    """What a term means, as one line of the text the lists' hash is taken of."""
    fields = [
        term.category,
        term.slug,
        term.term,
        term.severity.value,
        ",".join(sorted(term.roles)),
        ",".join(term.variants),
        ",".join(sorted(term.generate)),
    ]
    return "|".join(fields) + "\n"


def load_wordlists(directory: Path, categories: Iterable[str] = CATEGORIES) -> WordLists:
    """Every ``*.txt`` in ``directory``; raises WordListError listing all bad lines.

    Each of ``categories`` must have its list (``<category>.txt`` or a file declaring it):
    a category without one would be silently off.
    """
    if not directory.is_dir():
        raise WordListError([f"{directory}: word-list directory not found"])
    files = sorted(directory.glob("*.txt"), key=lambda p: p.name)
    if not any(p.name not in SPECIAL_FILES for p in files):
        raise WordListError([f"{directory}: no word lists (*.txt) found"])
    state = _Loader()
    for path in files:
        text = _read(path, state.errors)
        if text is None:
            continue
        if path.name == ALLOW_FILE:
            state.read_allow(text, str(path))
        elif path.name == HOMOPHONE_FILE:
            state.read_homophones(text, str(path))
        elif path.name == SYMBOL_FILE:
            state.read_symbols(text, str(path))
        elif path.name == SPLIT_FILE:
            state.read_split_chars(text, str(path))
        else:
            state.read_terms(text, str(path), path.stem)
    state.check_signs(str(directory))
    state.errors.extend(
        f"{directory / (category + '.txt')}: word-list file not found: category {category} "
        "would be off (an empty file turns it off on purpose)"
        for category in categories
        if category not in state.categories
    )
    if state.errors:
        raise WordListError(state.errors)
    digest = hashlib.sha256("".join(state.canonical).encode("utf-8")).hexdigest()
    return WordLists(
        tuple(state.terms),
        tuple(state.allow),
        digest,
        tuple(state.homophones),
        tuple(state.symbols),
        tuple(state.split_chars),
    )


def _read(path: Path, errors: list[str]) -> str | None:
    """The file's text, or None with the reason in ``errors`` (unreadable, not UTF-8)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        errors.append(f"{path}: cannot read word-list file: {exc.strerror or exc}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        errors.append(
            f"{path}:{line}: invalid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8"
        )
        return None


class _Loader:
    """Accumulates terms, allow phrases, canonical lines and errors across files."""

    def __init__(self) -> None:
        self.terms: list[Term] = []
        self.allow: list[str] = []
        self.homophones: list[Homophone] = []
        self.symbols: list[Symbol] = []
        self.split_chars: list[SplitChar] = []
        self.categories: set[str] = set()  # those with a list, even an empty one
        self.errors: list[str] = []
        self.canonical: list[str] = []
        # per category: normalized spelling -> where it was first seen; slug -> where
        self._keys: dict[str, dict[str, str]] = {}
        self._slugs: dict[str, dict[str, str]] = {}
        self._allow_keys: dict[str, str] = {}

    def read_terms(self, text: str, file: str, default_category: str) -> None:
        self.canonical.append(f"== {Path(file).name}\n")
        category: str | None = None
        declared = False
        entries = 0
        if default_category in CATEGORIES:
            self.categories.add(default_category)
        for number, line in _lines(text):
            where = f"{file}:{number}"
            if line.startswith("@"):
                found = self._directive(line, where, declared, entries > 0)
                if found is not None:
                    category, declared = found, True
                    self.categories.add(found)
                continue
            entries += 1
            if category is None:
                if default_category not in CATEGORIES:
                    self.errors.append(
                        f"{where}: unknown category '{default_category}' from the file name; "
                        "add '@category <id>' at the top or rename the file"
                    )
                    return
                category = default_category
            term = self._entry(line, where, category)
            if term is not None:
                self.terms.append(term)
                self.canonical.append(canonical_line(term))

    def seed(self, terms: Iterable[Term]) -> None:
        """Take ``terms`` (already loaded) as seen: what is added next must differ from them."""
        for term in terms:
            self._register_spellings(term.category, (term.term, *term.variants), term.source)
            self._slugs.setdefault(term.category, {})[term.slug] = term.source

    def add_term(
        self,
        category: str,
        term: str,
        severity: Severity,
        roles: str,
        variants: tuple[str, ...],
        where: str,
    ) -> Term | None:
        """One term given as values, not as a line (the officers' edits): checked like a
        line's, but a slug already taken gets a suffix (``_2``) instead of an error."""
        before = len(self.errors)
        if category not in CATEGORIES:
            self.errors.append(f"{where}: unknown category '{category}'")
        if roles not in ROLE_SETS:
            self.errors.append(
                f"{where}: unknown role '{roles}' (expected staff, customer or both)"
            )
        if len(self.errors) > before or not term.strip():
            if not term.strip():
                self.errors.append(f"{where}: empty term")
            return None
        if not self._register_spellings(category, (term, *variants), where):
            return None
        base = slugify(term) or "term"
        slugs = self._slugs.setdefault(category, {})
        slug, n = base, 1
        while slug in slugs:
            n += 1
            slug = f"{base}_{n}"
        if len(self.errors) > before:
            return None
        slugs[slug] = where
        return Term(category, slug, term, severity, ROLE_SETS[roles], variants, where)

    def read_allow(self, text: str, file: str) -> None:
        self.canonical.append(f"== {Path(file).name}\n")
        for number, line in _lines(text):
            where = f"{file}:{number}"
            if line.startswith("@"):
                self.errors.append(f"{where}: directives are not allowed in {ALLOW_FILE}")
                continue
            key = normalize(line).text
            if not key:
                self.errors.append(f"{where}: allow phrase '{line}' is empty after normalization")
            elif key in self._allow_keys:
                self.errors.append(
                    f"{where}: duplicate allow phrase '{line}' (also {self._allow_keys[key]})"
                )
            else:
                self._allow_keys[key] = where
                self.allow.append(line)
                self.canonical.append(f"allow|{line}\n")

    def read_homophones(self, text: str, file: str) -> None:
        self.canonical.append(f"== {Path(file).name}\n")
        seen: dict[str, str] = {}
        for number, line in _lines(text):
            where = f"{file}:{number}"
            char, *rest = (field.strip() for field in line.split("|"))
            if len(rest) > 2:
                self.errors.append(f"{where}: too many fields (expected char | chars | letters)")
                continue
            key = normalize(char).text
            if len(key) != 1:
                self.errors.append(f"{where}: '{char}' must be one character")
                continue
            if key in seen:
                self.errors.append(f"{where}: duplicate character '{char}' (also {seen[key]})")
                continue
            chars, letters = (
                tuple(normalize(v).text for v in re.split(r"[,，]", field) if v.strip())
                for field in (*rest, "", "")[:2]
            )
            bad = [c for c in chars if len(c) != 1] + [
                v for v in letters if not re.fullmatch(r"[a-z]+", v)
            ]
            if bad:
                self.errors.append(
                    f"{where}: bad replacement '{bad[0]}' (characters: one each; letters: a-z only)"
                )
                continue
            if not chars and not letters:
                self.errors.append(f"{where}: no replacements for '{char}'")
                continue
            seen[key] = where
            self.homophones.append(Homophone(key, chars, letters))
            self.canonical.append(f"homophone|{key}|{','.join(chars)}|{','.join(letters)}\n")

    def read_symbols(self, text: str, file: str) -> None:
        """``symbol | character``: an emoji or sign that stands for one character."""
        self.canonical.append(f"== {Path(file).name}\n")
        seen: dict[str, str] = {}
        for number, line in _lines(text):
            where = f"{file}:{number}"
            fields = [field.strip() for field in line.split("|")]
            if len(fields) != 2:
                self.errors.append(f"{where}: expected 'symbol | character', got '{line}'")
                continue
            symbol = fields[0].replace("\ufe0f", "").replace("\ufe0e", "")  # emoji styles
            means = normalize(fields[1]).text
            if len(symbol) != 1:
                self.errors.append(f"{where}: '{fields[0]}' must be one symbol or emoji")
            elif normalize(symbol).text:
                self.errors.append(
                    f"{where}: '{symbol}' is a letter, digit or character; only a symbol or "
                    "emoji (which normalization would drop) can stand for a word"
                )
            elif len(means) != 1:
                self.errors.append(
                    f"{where}: '{fields[1]}' must be one character (what '{symbol}' stands for)"
                )
            elif symbol in seen:
                self.errors.append(f"{where}: duplicate symbol '{symbol}' (also {seen[symbol]})")
            else:
                seen[symbol] = where
                self.symbols.append(Symbol(symbol, means))
                self.canonical.append(f"symbol|{symbol}|{means}\n")

    def check_signs(self, directory: str) -> None:
        """An emoji in a term or variant (加我🐧) must have a symbols.txt row: without one,
        normalization drops it and the spelling is shorter than it reads (加我)."""
        meanings = {s.symbol for s in self.symbols}
        for term in self.terms:
            for spelling in (term.term, *term.variants):
                for char in spelling:
                    if unicodedata.category(char) == "So" and char not in meanings:
                        self.errors.append(
                            f"{directory}: '{spelling}' ({term.category}) holds '{char}', "
                            f"which no {SYMBOL_FILE} row gives a meaning (it would be dropped)"
                        )

    def read_split_chars(self, text: str, file: str) -> None:
        """``parts | character``: a character written as its components."""
        self.canonical.append(f"== {Path(file).name}\n")
        seen: dict[str, str] = {}
        for number, line in _lines(text):
            where = f"{file}:{number}"
            fields = [normalize(field).text for field in line.split("|")]
            if len(fields) != 2:
                self.errors.append(f"{where}: expected 'parts | character', got '{line}'")
                continue
            parts, char = fields
            if not 2 <= len(parts) <= 3 or not all(_is_cjk(c) for c in parts):
                self.errors.append(f"{where}: parts '{parts}' must be two or three characters")
            elif len(char) != 1 or not _is_cjk(char):
                self.errors.append(f"{where}: '{char}' must be one Chinese character")
            elif parts in seen:
                self.errors.append(f"{where}: duplicate parts '{parts}' (also {seen[parts]})")
            else:
                seen[parts] = where
                self.split_chars.append(SplitChar(parts, char))
                self.canonical.append(f"split|{parts}|{char}\n")

    def _directive(self, line: str, where: str, repeated: bool, late: bool) -> str | None:
        name, *arguments = line[1:].split() or [""]
        argument = arguments[0] if len(arguments) == 1 else ""
        if name != "category":
            self.errors.append(f"{where}: bad directive '{line}' (only '@category <id>' is known)")
        elif not argument:
            self.errors.append(f"{where}: bad directive '{line}' (expected '@category <id>')")
        elif argument not in CATEGORIES:
            self.errors.append(
                f"{where}: bad directive '{line}': unknown category '{argument}' "
                f"(expected one of {', '.join(CATEGORIES)})"
            )
        elif repeated:
            self.errors.append(f"{where}: bad directive '{line}': category already declared")
        elif late:
            self.errors.append(f"{where}: bad directive '{line}': it must come before the entries")
        else:
            return argument
        return None

    def _entry(self, line: str, where: str, category: str) -> Term | None:
        errors_before = len(self.errors)
        term, *rest = (field.strip() for field in line.split("|"))
        slug: str | None = None
        generate: frozenset[str] = frozenset(GENERATORS)
        positional: list[str] = []
        for field in rest:
            if field.startswith("gen="):
                kinds = {k.strip() for k in re.split(r"[,，]", field[4:]) if k.strip()}
                kinds = set(GENERATORS) if kinds == {"all"} else kinds
                kinds = set() if kinds == {"none"} else kinds
                unknown = sorted(kinds - set(GENERATORS))
                if unknown or not field[4:].strip():
                    self.errors.append(
                        f"{where}: bad gen= '{field[4:]}' "
                        f"(expected all, none or some of {', '.join(GENERATORS)})"
                    )
                generate = frozenset(kinds) & frozenset(GENERATORS)
            elif field.startswith("id="):
                slug = field[3:].strip()
                if not _SLUG.fullmatch(slug):
                    self.errors.append(f"{where}: bad id '{slug}' (use a-z, 0-9 and _)")
            else:
                positional.append(field)
        if len(positional) > len(_FIELDS):
            self.errors.append(
                f"{where}: too many fields (expected term | severity | roles | variants)"
            )
        values = dict(zip(_FIELDS, positional, strict=False))
        severity = self._severity(values.get("severity", ""), where)
        roles = values.get("roles", "") or DEFAULT_ROLES
        if roles not in ROLE_SETS:
            self.errors.append(
                f"{where}: unknown role '{roles}' (expected staff, customer or both)"
            )
        variants = tuple(
            v.strip() for v in re.split(r"[,，]", values.get("variants", "")) if v.strip()
        )
        if not term:
            self.errors.append(f"{where}: empty term")
            return None
        if not self._register_spellings(category, (term, *variants), where):
            return None  # the term itself is bad or a duplicate: its slug would only echo that
        if slug is None:
            slug = slugify(term)
            if not slug:
                self.errors.append(f"{where}: cannot derive a rule id from '{term}'; add id=")
        slugs = self._slugs.setdefault(category, {})
        if slug and slug in slugs:
            self.errors.append(
                f"{where}: duplicate rule id '{category}.{slug}' (also {slugs[slug]}); "
                "give one of them a distinct id="
            )
        elif slug:
            slugs[slug] = where
        if len(self.errors) > errors_before or severity is None:
            return None
        return Term(category, slug, term, severity, ROLE_SETS[roles], variants, where, generate)

    def _register_spellings(self, category: str, spellings: Iterable[str], where: str) -> bool:
        """Record the normalized spellings; False when the first (the term) is unusable."""
        keys = self._keys.setdefault(category, {})
        term_ok = True
        for index, spelling in enumerate(spellings):
            key = normalize(spelling).text
            signs = "".join(c for c in spelling if unicodedata.category(c)[0] == "S")
            if signs and key:  # 加我🐧, 打我📞: a sign may stand for a word (symbols.txt)
                key = f"{key}\x00{signs}"
            if not key:
                self.errors.append(f"{where}: '{spelling}' is empty after normalization")
            elif key in keys:
                self.errors.append(
                    f"{where}: duplicate term '{spelling}' in {category} (also {keys[key]})"
                )
            else:
                keys[key] = where
                continue
            if index == 0:
                term_ok = False
        return term_ok

    def _severity(self, value: str, where: str) -> Severity | None:
        if not value:
            return DEFAULT_SEVERITY
        try:
            return Severity(value.lower())
        except ValueError:
            self.errors.append(
                f"{where}: unknown severity '{value}' (expected low, medium, high or critical)"
            )
            return None


def _lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, content) of the lines that are neither blank nor comments."""
    # only \n, \r\n and \r end a line, so numbers agree with the officer's editor
    for number, raw in enumerate(re.split(r"\r\n|\n|\r", text), start=1):
        line = _COMMENT.sub("", raw).strip()
        if line:
            yield number, line


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"
