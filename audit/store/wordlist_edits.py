"""Word-list edits by compliance officers: terms added, switched off and on, annotated.

The files in ``wordlists/`` are the lists as shipped and versioned; the dashboard's changes
are rows of ``wordlist_edits`` that :func:`audit.scan.overlay.apply_overlay` lays over them
(the pipeline's scanner applies them when it has a database, see
:func:`audit.pipeline.load_scanner`). One row per category and normalized term: an added term
(``origin`` "added") with its severity, roles and variants, or a term of the files
(``origin`` "file") that is switched off or carries a note.

Only :data:`~audit.store.access.WORDLIST_EDIT_ROLES` may change them. Every change writes
one row of the audit trail in the same transaction, and a change of what the scanner finds
(the effective lists' hash moves; a note does not) queues a full rescan
(``rescan_requests``), which the next ``audit run``, ``audit watch`` cycle or ``audit scan``
performs (:func:`pending_rescan`, :func:`finish_rescans`). A bad term is refused with a
message that says what is wrong, in Chinese first, and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.domain import CATEGORIES, Action, Category, Severity
from audit.scan.overlay import AddedTerm, Effective, Overlay, apply_overlay, term_key
from audit.scan.wordlist import ROLE_SETS, Term, WordLists
from audit.store.access import AccessDenied, Principal, record
from audit.store.models import RescanRequest, WordlistEdit
from audit.store.types import utcnow

MAX_TERM = 40  # characters of a term or a variant (the column holds 64)
MAX_VARIANTS = 20
MAX_NOTE = 500
ADDED, FILE = "added", "file"
ROLE_LABELS = {"staff": "员工 staff", "customer": "客户 customer", "both": "双方 both"}
_FORBIDDEN = re.compile(r"[|\x00-\x1f\x7f]")  # the list format's separator, line breaks
_FILE_PATH = re.compile(r"[^\s()'（]*[/\\]([^/\\\s]+\.txt:\d+)")  # a list file by its name only


class EditError(ValueError):
    """A change refused: the message says why, Chinese first, and can be shown as is."""


@dataclass(frozen=True)
class EditResult:
    edit_id: int
    rescan_id: int | None  # the rescan this change queued (None: the findings stay valid)


@dataclass(frozen=True)
class EditView:
    id: int
    category: str
    term: str
    origin: str  # added | file
    severity: str
    roles: str
    variants: tuple[str, ...]
    disabled: bool
    note: str
    updated_by: str
    updated_at: dt.datetime
    problem: str  # why an added term that is on is not in effect ("" when it is)


@dataclass(frozen=True)
class RescanView:
    id: int
    requested_at: dt.datetime
    requested_by: str
    reason: str
    done_at: dt.datetime | None
    scan_run_id: int | None


@dataclass(frozen=True)
class RescanState:
    queued: tuple[RescanView, ...]  # open requests, oldest first
    last_done: RescanView | None


def edit_ref(edit_id: int) -> str:
    """How an edit is named in problems and trail details."""
    return f"词表编辑 #{edit_id}"


# --------------------------------------------------------------------------- reading


def overlay(session: Session) -> Overlay:
    """The edits that change terms, as the scanner applies them."""
    rows = session.scalars(select(WordlistEdit).order_by(WordlistEdit.id)).all()
    return _overlay(rows)


def _overlay(rows: Iterable[WordlistEdit]) -> Overlay:
    added, disabled = [], []
    for row in rows:
        if row.origin == ADDED and not row.disabled:
            added.append(
                AddedTerm(
                    row.category,
                    row.term,
                    Severity(row.severity),
                    row.roles,
                    tuple(row.variants),
                    edit_ref(row.id),
                )
            )
        elif row.origin == FILE and row.disabled:
            disabled.append((row.category, row.term))
    return Overlay(tuple(added), tuple(disabled))


def effective(session: Session, files: WordLists) -> Effective:
    """The files' lists with the stored edits applied."""
    return apply_overlay(files, overlay(session))


def edits(session: Session, principal: Principal, files: WordLists) -> list[EditView]:
    """Every edit, newest change first, each saying whether it is in effect."""
    if not principal.sees_wordlists:
        raise AccessDenied("此角色不能查看词表 / this role does not see the word lists")
    rows = session.scalars(select(WordlistEdit)).all()
    problems = apply_overlay(files, _overlay(rows)).problems
    views = [
        EditView(
            r.id,
            r.category,
            r.term,
            r.origin,
            r.severity,
            r.roles,
            tuple(r.variants),
            r.disabled,
            r.note,
            r.updated_by,
            r.updated_at,
            short_paths(problems.get(edit_ref(r.id), "")),
        )
        for r in rows
    ]
    return sorted(views, key=lambda v: (v.updated_at, v.id), reverse=True)


def terms_of(files: WordLists, session: Session, category: str) -> list[str]:
    """The terms of ``category`` an officer can switch off, on or annotate: the files' and
    the added ones, in list order."""
    added = session.scalars(
        select(WordlistEdit.term)
        .where(WordlistEdit.category == category, WordlistEdit.origin == ADDED)
        .order_by(WordlistEdit.id)
    ).all()
    return [t.term for t in files.terms if t.category == category] + list(added)


# --------------------------------------------------------------------------- changing


def add_term(
    session: Session,
    principal: Principal,
    files: WordLists,
    *,
    category: str,
    term: str,
    severity: str = Severity.MEDIUM.value,
    roles: str = "both",
    variants: str | Iterable[str] = (),
    note: str = "",
) -> EditResult:
    """Add a term to ``category`` (variants: a list, or one text separated by , or ，)."""
    _require_editor(principal)
    term = term.strip()
    if isinstance(variants, str):
        variants = re.split(r"[,，]", variants)
    spellings = tuple(v.strip() for v in variants if v.strip())
    note = note.strip()
    _check_category(category)
    _check_spelling(term, "词条", "the term")
    for variant in spellings:
        _check_spelling(variant, f"其他写法“{variant}”", f"variant '{variant}'")
    if len(spellings) > MAX_VARIANTS:
        raise EditError(
            f"其他写法过多：{len(spellings)} 个，最多 {MAX_VARIANTS} 个 / "
            f"too many variants ({len(spellings)}, at most {MAX_VARIANTS})"
        )
    if severity not in {s.value for s in Severity}:
        raise EditError(
            f"未知的严重程度“{severity}” / unknown severity (low, medium, high, critical)"
        )
    if roles not in ROLE_SETS:
        raise EditError(f"未知的适用角色“{roles}” / unknown roles (staff, customer, both)")
    _check_note(note)
    key = term_key(term)
    existing = _row(session, category, key)
    if existing is not None:
        state = "已停用 disabled" if existing.disabled else "生效 on"
        where = (
            "词表文件中的词条 a term of the files" if existing.origin == FILE else "已添加 added"
        )
        raise EditError(
            f"“{term}”在 {category} 中已有编辑记录（{where}，{state}）：请在下方启用或修改 / "
            f"'{term}' is already in the edits of {category}: change it below"
        )
    before = effective(session, files)
    _check_duplicates(before.lists.terms, category, (term, *spellings))
    now = utcnow()
    row = WordlistEdit(
        category=category,
        term=term,
        term_key=key,
        origin=ADDED,
        severity=severity,
        roles=roles,
        variants=list(spellings),
        disabled=False,
        note=note,
        created_by=principal.username,
        created_at=now,
        updated_by=principal.username,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # the same term, added by someone else a moment ago
        raise EditError(
            f"“{term}”刚刚已被添加到 {category}，请刷新页面 / '{term}' was just added to "
            f"{category} by someone else: reload the page"
        ) from None
    after = _refused_if_new_problems(session, files, before)
    rescan = _queue_rescan(session, principal, before, after, f"新增词条 {category}/{term}")
    record(
        session,
        principal,
        Action.WORDLIST_ADD,
        f"{category}/{term}",
        severity=severity,
        roles=roles,
        variants=list(spellings),
        note=note,
        rescan=rescan,
    )
    return EditResult(row.id, rescan)


def set_disabled(
    session: Session,
    principal: Principal,
    files: WordLists,
    *,
    category: str,
    term: str,
    disabled: bool,
) -> EditResult:
    """Switch a term of the files or an added term off (``disabled``) or on again."""
    _require_editor(principal)
    row = _row_for(session, principal, files, category, term)
    if row.disabled == disabled:
        zh, en = ("已停用", "already disabled") if disabled else ("已生效", "already on")
        raise EditError(f"“{row.term}”{zh} / '{row.term}' is {en}")
    before = effective(session, files)
    row.disabled = disabled
    _touch(row, principal)
    session.flush()
    after = _refused_if_new_problems(session, files, before)
    action = Action.WORDLIST_DISABLE if disabled else Action.WORDLIST_ENABLE
    verb = "停用" if disabled else "启用"
    rescan = _queue_rescan(session, principal, before, after, f"{verb}词条 {category}/{row.term}")
    record(session, principal, action, f"{category}/{row.term}", origin=row.origin, rescan=rescan)
    return EditResult(row.id, rescan)


def annotate(
    session: Session,
    principal: Principal,
    files: WordLists,
    *,
    category: str,
    term: str,
    note: str,
) -> EditResult:
    """Put a note on a term (empty: remove it); the scanner does not see notes."""
    _require_editor(principal)
    note = note.strip()
    _check_note(note)
    row = _row_for(session, principal, files, category, term)
    previous = row.note
    row.note = note
    _touch(row, principal)
    session.flush()
    record(
        session,
        principal,
        Action.WORDLIST_NOTE,
        f"{category}/{row.term}",
        note=note,
        previous=previous,
    )
    return EditResult(row.id, None)


# --------------------------------------------------------------------------- rescans


def pending_rescan(session: Session) -> int | None:
    """The newest rescan request not done yet (None: none is waiting)."""
    return session.scalar(select(func.max(RescanRequest.id)).where(RescanRequest.done_at.is_(None)))


def finish_rescans(session: Session, upto: int, scan_run_id: int | None) -> int:
    """Mark the open requests up to ``upto`` done by ``scan_run_id``; how many there were.

    Only those up to the id read before the scan: a change made during it asks again."""
    result = session.execute(
        update(RescanRequest)
        .where(RescanRequest.done_at.is_(None), RescanRequest.id <= upto)
        .values(done_at=utcnow(), scan_run_id=scan_run_id)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def rescan_state(session: Session) -> RescanState:
    queued = session.scalars(
        select(RescanRequest).where(RescanRequest.done_at.is_(None)).order_by(RescanRequest.id)
    ).all()
    done = session.scalar(
        select(RescanRequest)
        .where(RescanRequest.done_at.is_not(None))
        .order_by(RescanRequest.id.desc())
        .limit(1)
    )
    return RescanState(tuple(_rescan_view(r) for r in queued), _rescan_view(done) if done else None)


def _rescan_view(r: RescanRequest) -> RescanView:
    return RescanView(r.id, r.requested_at, r.requested_by, r.reason, r.done_at, r.scan_run_id)


def _queue_rescan(
    session: Session, principal: Principal, before: Effective, after: Effective, reason: str
) -> int | None:
    if before.lists.wordlist_hash == after.lists.wordlist_hash:
        return None  # nothing the scanner finds has changed
    request = RescanRequest(
        requested_by=principal.username,
        reason=reason[:255],
        wordlist_hash=after.lists.wordlist_hash,
    )
    session.add(request)
    session.flush()
    return request.id


# --------------------------------------------------------------------------- checks


def short_paths(text: str) -> str:
    """``text`` with each list file named by its name (``diversion.txt:12``), not the
    server's path to it."""
    return _FILE_PATH.sub(r"\1", text)


def _require_editor(principal: Principal) -> None:
    if not principal.edits_wordlists:
        raise AccessDenied(
            "只有合规专员和管理员可以修改词表 / only compliance officers and admins "
            "may change the word lists"
        )


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        known = "、".join(c.bilingual for c in Category)
        raise EditError(f"未知类别“{category}”（可选：{known}） / unknown category '{category}'")


def _check_spelling(text: str, zh: str, en: str) -> None:
    """A term or a variant: ``zh`` and ``en`` name it (词条 / the term)."""
    if not text:
        raise EditError(f"{zh}不能为空 / {en} is empty")
    if len(text) > MAX_TERM:
        raise EditError(
            f"{zh}过长：{len(text)} 个字符，最多 {MAX_TERM} 个 / "
            f"{en} is too long ({len(text)} characters, at most {MAX_TERM})"
        )
    if _FORBIDDEN.search(text):
        raise EditError(f"{zh}不能包含“|”或换行 / {en} may not hold '|' or line breaks")
    if not term_key(text):
        raise EditError(f"{zh}只有空格或符号，归一化后为空 / {en} is empty after normalization")


def _check_note(note: str) -> None:
    if len(note) > MAX_NOTE:
        raise EditError(
            f"备注过长：{len(note)} 个字符，最多 {MAX_NOTE} 个 / "
            f"the note is too long ({len(note)} characters, at most {MAX_NOTE})"
        )


def _check_duplicates(terms: Iterable[Term], category: str, spellings: tuple[str, ...]) -> None:
    """Refuse a spelling that is (after normalization) one the category already has."""
    seen: dict[str, tuple[str, str]] = {}
    for t in terms:
        if t.category == category:
            for spelling in (t.term, *t.variants):
                seen.setdefault(term_key(spelling), (t.term, t.source))
    mine: set[str] = set()
    for spelling in spellings:
        key = term_key(spelling)
        if key in seen:
            other, where = seen[key][0], short_paths(seen[key][1])
            raise EditError(
                f"重复词条：“{spelling}”与 {category} 中已有的“{other}”相同（{where}） / "
                f"duplicate: '{spelling}' is already in {category} as '{other}' ({where})"
            )
        if key in mine:
            raise EditError(f"“{spelling}”写了两遍 / '{spelling}' is given twice")
        mine.add(key)


def _refused_if_new_problems(session: Session, files: WordLists, before: Effective) -> Effective:
    """The lists after a change, or EditError when the change would leave a term out."""
    after = effective(session, files)
    new = {ref: why for ref, why in after.problems.items() if ref not in before.problems}
    if new:
        raise EditError(
            "与现有词条冲突，未保存 / clashes with the lists, not saved: " + "; ".join(new.values())
        )
    return after


def _row(session: Session, category: str, key: str) -> WordlistEdit | None:
    return session.scalar(
        select(WordlistEdit).where(WordlistEdit.category == category, WordlistEdit.term_key == key)
    )


def _row_for(
    session: Session, principal: Principal, files: WordLists, category: str, term: str
) -> WordlistEdit:
    """The edit row of a term of the files or an added term (a file term's is made)."""
    _check_category(category)
    key = term_key(term)
    row = _row(session, category, key) if key else None
    if row is not None:
        return row
    found = next(
        (t for t in files.terms if t.category == category and term_key(t.term) == key), None
    )
    if found is None:
        raise EditError(f"{category} 中没有词条“{term}” / no term '{term}' in {category}")
    now = utcnow()
    row = WordlistEdit(
        category=category,
        term=found.term,
        term_key=key,
        origin=FILE,
        severity=found.severity.value,
        roles=_roles_name(found.roles),
        variants=list(found.variants),
        disabled=False,
        note="",
        created_by=principal.username,
        created_at=now,
        updated_by=principal.username,
        updated_at=now,
    )
    session.add(row)
    return row


def _touch(row: WordlistEdit, principal: Principal) -> None:
    row.updated_by = principal.username
    row.updated_at = utcnow()


def _roles_name(roles: frozenset[str]) -> str:
    return next(name for name, members in ROLE_SETS.items() if members == roles)
