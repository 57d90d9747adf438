"""``audit inspect`` started cheaply: what it needs, loaded from the scan cache when it can be.

A command that filters a few lines spends most of its time starting: parsing the word lists
(their rule ids are pinyin, whose dictionaries take a second to load), and importing
scikit-learn and unpickling the classifiers (seconds more). Here the parsed word lists and
the classifiers compiled to arrays (:mod:`audit.quality.compiled`) are kept in the scan cache
(``AUDIT_SCAN_CACHE``, see :func:`audit.scan.automaton.cache_dir`), beside the scanner's
automaton, keyed by the bytes they come from and the code that reads them: an edited word
list or a retrained model is read afresh, and a cache that cannot be read or written only
makes the next start slower. Nothing here touches the database, SQLAlchemy or pandas.

The output is the same as with everything loaded afresh (``tests/scan/test_inspect_start.py``).
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import sys
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from audit.config import ConfigError, Settings
from audit.resources import data_path
from audit.scan.automaton import cache_dir, code_fingerprint, load_cached, store_cached
from audit.scan.inspect import InspectStats, inspect_stream
from audit.scan.scanner import Scanner
from audit.scan.wordlist import CATEGORIES, WordLists, load_wordlists

log = logging.getLogger(__name__)


def run(settings: Settings, lines: Iterable[str], out: TextIO) -> InspectStats:
    """Scan and score ``lines`` (JSON lines) to ``out``."""
    from audit.quality.classifiers import ScorersUnavailable
    from audit.quality.compiled import load_fast

    _import_jieba()
    scanner = Scanner(cached_wordlists(data_path(settings.scan.wordlists)))
    try:
        scorers = load_fast(data_path(settings.quality.models), cache_dir())
    except (ScorersUnavailable, ConfigError) as exc:
        log.warning("classifiers not used: %s", exc)
        scorers = None
    return inspect_stream(
        lines,
        out,
        scanner,
        classify=scorers.score if scorers else None,
        image_allow=settings.images.allow_payloads,
        detect=scorers.detect_many if scorers else None,
    )


def cached_wordlists(directory: Path, categories: Iterable[str] = CATEGORIES) -> WordLists:
    """:func:`load_wordlists` of ``directory``, from the scan cache when its lists are the
    ones parsed before (same files, same bytes, same parsing code)."""
    categories = tuple(categories)
    key = _wordlists_key(directory, categories)
    cache = cache_dir()
    if key is not None:
        cached = load_cached(cache, key)
        if isinstance(cached, WordLists):
            return cached
    lists = load_wordlists(directory, categories)  # raises naming every bad file and line
    if key is not None:
        store_cached(cache, key, lists)
    return lists


def _wordlists_key(directory: Path, categories: tuple[str, ...]) -> str | None:
    digest = hashlib.sha256(b"wordlists|")
    digest.update("|".join((code_fingerprint(), version("pypinyin"), *categories)).encode())
    try:
        for path in sorted(directory.glob("*.txt"), key=lambda p: p.name):
            data = path.read_bytes()
            digest.update(f"|{path.name}|{len(data)}|".encode())
            digest.update(hashlib.sha256(data).digest())
    except OSError:
        return None  # load_wordlists says what is wrong
    return f"wordlists-{digest.hexdigest()[:32]}.pickle"


def _import_jieba() -> None:
    """jieba (the classifiers' words, the scanner's word edges) as the pipeline has it, but
    started in a third of the time: it imports ``pkg_resources``, a second of setuptools,
    only to open its own dictionary file, which it opens directly when that import fails;
    and it reads its dictionary cache with ``marshal.load``, which reads a file piece by piece
    (three times slower than parsing the bytes read at once, the same data either way)."""
    if "jieba" in sys.modules or "pkg_resources" in sys.modules:
        return
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import jieba
    except ImportError:
        return  # not installed: the scanner and classifiers say so when they need it
    finally:
        del sys.modules["pkg_resources"]
    if getattr(jieba, "marshal", None) is marshal:
        jieba.marshal = _WholeFile


class _WholeFile:
    """``marshal`` for jieba's dictionary cache: read at once."""

    dump = staticmethod(marshal.dump)

    @staticmethod
    def load(file: BinaryIO) -> Any:
        return marshal.loads(file.read())
