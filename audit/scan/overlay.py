"""The officers' edits over the word-list files: terms added, terms turned off.

The files in ``wordlists/`` stay data under version control; what a compliance officer changes
on the dashboard is kept in the database (:mod:`audit.store.wordlist_edits`) and applied here
on top of them. The effective lists are the files' terms without the disabled ones, plus the
added terms that are on. A note changes nothing the scanner sees.

The effective lists' hash is the files' hash while no edit changes a term, and otherwise the
hash of the files' hash and of what the edits change: scan runs record the lists they used,
and a worker whose edits differ from its coordinator's refuses its tasks.

``audit inspect`` needs no database: it reads the files alone, so it shows what the shipped
lists find, not the edits.

An added term that clashes with the lists (a file was edited after it was added and now holds
the same spelling) is left out and named in :attr:`Effective.problems`: an edit never stops a
scan.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from audit.domain import Severity
from audit.scan.normalize import normalize
from audit.scan.wordlist import (
    DEFAULT_ROLES,
    DEFAULT_SEVERITY,
    WordLists,
    _Loader,
    canonical_line,
)


@dataclass(frozen=True)
class AddedTerm:
    category: str
    term: str
    severity: Severity = DEFAULT_SEVERITY
    roles: str = DEFAULT_ROLES  # staff, customer or both
    variants: tuple[str, ...] = ()
    ref: str = ""  # how a problem names it: the edit's id, as the page shows it


@dataclass(frozen=True)
class Overlay:
    """The edits that change terms: added terms that are on, in the order they were added,
    and the (category, term) of the files' terms that are off."""

    added: tuple[AddedTerm, ...] = ()
    disabled: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """Identifies what the edits change ("" for none): equal keys, equal lists."""
        if not self.added and not self.disabled:
            return ""
        lines = sorted(
            [
                "|".join((a.category, a.term, a.severity.value, a.roles, ",".join(a.variants)))
                for a in self.added
            ]
        ) + sorted(f"off|{category}|{term_key(term)}" for category, term in self.disabled)
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Effective:
    lists: WordLists
    problems: dict[str, str]  # AddedTerm.ref -> why it was left out


def term_key(text: str) -> str:
    """A term as the lists compare terms: normalized (``微 信`` is ``微信``)."""
    return normalize(text).text


def apply_overlay(lists: WordLists, overlay: Overlay) -> Effective:
    """The files' ``lists`` with ``overlay`` applied."""
    if not overlay.added and not overlay.disabled:
        return Effective(lists, {})
    off = {(category, term_key(term)) for category, term in overlay.disabled}
    kept = tuple(t for t in lists.terms if (t.category, term_key(t.term)) not in off)
    removed = sorted(
        f"off|{t.category}|{t.slug}\n" for t in lists.terms if (t.category, term_key(t.term)) in off
    )
    loader = _Loader()
    loader.seed(kept)
    added = []
    problems: dict[str, str] = {}
    for entry in overlay.added:
        before = len(loader.errors)
        term = loader.add_term(
            entry.category, entry.term, entry.severity, entry.roles, entry.variants, entry.ref
        )
        if term is None:
            problems[entry.ref] = "; ".join(loader.errors[before:])
        else:
            added.append(term)
    digest = lists.wordlist_hash
    if removed or added:
        text = "".join(
            [f"== files {lists.wordlist_hash}\n", *removed, *sorted(map(canonical_line, added))]
        )
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    effective = dataclasses.replace(
        lists, terms=kept + tuple(added), wordlist_hash=digest, overlay_key=overlay.key
    )
    return Effective(effective, problems)
