"""Word-list edits by compliance officers: stored, checked, in the trail, and rescanned with.

On both databases. The lists are a small directory of their own; the pipeline test scans
stored messages with ``analyse`` (what ``audit run``, ``audit watch`` and ``audit scan`` call).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from audit.config import Settings, load_settings
from audit.domain import CATEGORIES, Role
from audit.pipeline import analyse, current_scanner, load_scanner
from audit.scan.wordlist import WordLists, load_wordlists
from audit.store import wordlist_edits as edits
from audit.store.access import AccessDenied, Principal
from audit.store.db import session_scope
from audit.store.models import (
    AuditLog,
    Envelope,
    Finding,
    Message,
    RescanRequest,
    ScanRun,
    SenderKind,
    WordlistEdit,
)

DIVERSION = "加我微信 | high | staff | 加我vx\n私下转账 | critical | both\n"
OFFICER = Principal(user_id=1, username="officer", role=Role.COMPLIANCE, unit_ids=None)
ADMIN = Principal(user_id=2, username="admin", role=Role.ADMIN, unit_ids=None)


@pytest.fixture(scope="module")
def lists_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lists")
    for category in CATEGORIES:
        (directory / f"{category}.txt").touch()
    (directory / "diversion.txt").write_text(DIVERSION, encoding="utf-8")
    (directory / "promise.txt").write_text("保证收益 | critical | staff\n", encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def files(lists_dir: Path) -> WordLists:
    return load_wordlists(lists_dir)


@pytest.fixture(scope="module")
def settings(lists_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    no_models = tmp_path_factory.mktemp("no-models")  # no classifiers: the lists alone
    return load_settings(
        None,
        environ={},
        overrides={
            "scan": {"wordlists": str(lists_dir)},
            "quality": {"models": str(no_models)},
            "images": {"enabled": False},
        },
    )


def add(engine: Engine, files: WordLists, who: Principal = OFFICER, **fields: Any) -> Any:
    with session_scope(engine) as s:
        return edits.add_term(s, who, files, **fields)


def disable(engine: Engine, files: WordLists, term: str, off: bool = True) -> Any:
    with session_scope(engine) as s:
        return edits.set_disabled(s, OFFICER, files, category="diversion", term=term, disabled=off)


def trail(engine: Engine) -> list[tuple[str, str, str, dict[str, Any]]]:
    with session_scope(engine) as s:
        rows = s.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        return [(r.actor, r.action, r.target_id, r.detail) for r in rows]


def counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(WordlistEdit)) or 0,
            s.scalar(select(func.count()).select_from(RescanRequest)) or 0,
            s.scalar(select(func.count()).select_from(AuditLog)) or 0,
        )


# --------------------------------------------------------------------------- adding


def test_an_officer_adds_a_term_with_a_trail_row_and_a_queued_rescan(
    engine: Engine, files: WordLists
) -> None:
    result = add(
        engine,
        files,
        category="diversion",
        term=" 私聊转账码 ",
        severity="high",
        roles="staff",
        variants="私聊付款码，私聊收款码",
        note="11月督导反馈",
    )
    assert result.rescan_id is not None
    with session_scope(engine) as s:
        [row] = s.scalars(select(WordlistEdit)).all()
        assert (row.category, row.term, row.origin, row.severity, row.roles) == (
            "diversion",
            "私聊转账码",
            "added",
            "high",
            "staff",
        )
        assert row.variants == ["私聊付款码", "私聊收款码"] and row.note == "11月督导反馈"
        assert edits.pending_rescan(s) == result.rescan_id
        request = s.get(RescanRequest, result.rescan_id)
        assert request is not None and request.requested_by == "officer"
        assert request.wordlist_hash == edits.effective(s, files).lists.wordlist_hash
        assert request.wordlist_hash != files.wordlist_hash
        [view] = edits.edits(s, OFFICER, files)
        assert view.problem == "" and not view.disabled
    [(actor, action, target, detail)] = trail(engine)
    assert (actor, action, target) == ("officer", "wordlist.add", "diversion/私聊转账码")
    assert detail["variants"] == ["私聊付款码", "私聊收款码"]
    assert detail["severity"] == "high" and detail["rescan"] == result.rescan_id


BAD_TERMS: list[tuple[dict[str, str], str]] = [
    ({"term": "   "}, "词条不能为空 / the term is empty"),
    ({"term": "长" * 41}, "词条过长：41 个字符，最多 40 个"),
    ({"category": "gossip"}, "未知类别“gossip”"),
    (
        {"term": "加我 微信"},
        "重复词条：“加我 微信”与 diversion 中已有的“加我微信”相同（diversion.txt:1）",
    ),
    ({"term": "加我VX"}, "重复词条：“加我VX”与 diversion 中已有的“加我微信”相同"),
    ({"term": "私聊|转账"}, "不能包含“|”或换行"),
    ({"term": "！！"}, "归一化后为空"),
    ({"severity": "urgent"}, "未知的严重程度“urgent”"),
    ({"roles": "boss"}, "未知的适用角色“boss”"),
    ({"variants": "私聊付款码, 私聊 付款码"}, "“私聊 付款码”写了两遍"),
    ({"variants": "私聊付款码, " + "码" * 41}, "其他写法“" + "码" * 41 + "”过长"),
    ({"note": "x" * 501}, "备注过长：501 个字符"),
]


def test_a_bad_term_is_refused_with_a_clear_message_and_nothing_is_stored(
    engine: Engine, files: WordLists
) -> None:
    """One database for all the cases (each is refused before anything is written)."""
    for fields, message in BAD_TERMS:
        given = {"category": "diversion", "term": "私聊转账码", **fields}
        with pytest.raises(edits.EditError) as refused:
            add(engine, files, **given)
        assert message in str(refused.value), fields
        assert " / " in str(refused.value), fields  # Chinese first, then English
        assert counts(engine) == (0, 0, 0), fields


def test_a_term_already_added_is_refused_even_when_disabled(
    engine: Engine, files: WordLists
) -> None:
    add(engine, files, category="diversion", term="私聊转账码")
    disable(engine, files, "私聊转账码")
    before = counts(engine)
    with pytest.raises(edits.EditError, match="已有编辑记录（已添加 added，已停用 disabled）"):
        add(engine, files, category="diversion", term="私聊 转账码")
    with pytest.raises(edits.EditError, match="重复词条"):
        add(engine, files, category="diversion", term="私聊付款码", variants="私聊转账码x, 加我vx")
    assert counts(engine) == before


def test_only_compliance_officers_and_admins_may_change_the_lists(
    engine: Engine, files: WordLists
) -> None:
    for role in (Role.SUPERVISOR, Role.ANALYST, Role.VIEWER):
        who = Principal(user_id=9, username="someone", role=role, unit_ids=(1,))
        assert not who.edits_wordlists, role
        with pytest.raises(AccessDenied, match="只有合规专员和管理员可以修改词表"):
            add(engine, files, who, category="diversion", term="私聊转账码")
        with session_scope(engine) as s, pytest.raises(AccessDenied):
            edits.set_disabled(s, who, files, category="diversion", term="加我微信", disabled=True)
        with session_scope(engine) as s, pytest.raises(AccessDenied):
            edits.annotate(s, who, files, category="diversion", term="加我微信", note="x")
        assert counts(engine) == (0, 0, 0), role
    assert OFFICER.edits_wordlists and ADMIN.edits_wordlists
    add(engine, files, ADMIN, category="diversion", term="私聊转账码")
    assert trail(engine)[0][:2] == ("admin", "wordlist.add")


# --------------------------------------------------------------------------- disable, enable, note


def test_disabling_enabling_and_annotating_a_file_term_write_the_trail(
    engine: Engine, files: WordLists
) -> None:
    off = disable(engine, files, "加我 微信")  # as the officer typed it: found normalized
    with session_scope(engine) as s:
        note = edits.annotate(
            s, OFFICER, files, category="diversion", term="加我微信", note="误报多，先停用"
        )
    on = disable(engine, files, "加我微信", off=False)
    assert off.rescan_id is not None and on.rescan_id is not None
    assert note.rescan_id is None  # a note changes nothing the scanner finds
    assert off.edit_id == note.edit_id == on.edit_id
    assert [(a, t) for _, a, t, _ in trail(engine)] == [
        ("wordlist.disable", "diversion/加我微信"),
        ("wordlist.note", "diversion/加我微信"),
        ("wordlist.enable", "diversion/加我微信"),
    ]
    assert trail(engine)[1][3] == {"note": "误报多，先停用", "previous": ""}
    with session_scope(engine) as s:
        [row] = s.scalars(select(WordlistEdit)).all()
        assert (row.origin, row.disabled, row.note, row.severity) == (
            "file",
            False,
            "误报多，先停用",
            "high",
        )
        # on again: the lists are the files', and so is their hash
        assert edits.effective(s, files).lists.wordlist_hash == files.wordlist_hash
        with pytest.raises(edits.EditError, match="“加我微信”已生效 / '加我微信' is already on"):
            edits.set_disabled(
                s, OFFICER, files, category="diversion", term="加我微信", disabled=False
            )
        with pytest.raises(edits.EditError, match="diversion 中没有词条“不存在”"):
            edits.set_disabled(
                s, OFFICER, files, category="diversion", term="不存在", disabled=True
            )


def test_enabling_a_term_that_would_shadow_an_added_one_is_refused(
    engine: Engine, files: WordLists
) -> None:
    """加我vx is 加我微信's variant: added while 加我微信 is off, it blocks turning it on."""
    disable(engine, files, "加我微信")
    add(engine, files, category="diversion", term="加我vx", severity="critical")
    before = counts(engine)
    with pytest.raises(edits.EditError, match="与现有词条冲突，未保存"):
        disable(engine, files, "加我微信", off=False)
    assert counts(engine) == before
    with session_scope(engine) as s:
        row = s.scalar(select(WordlistEdit).where(WordlistEdit.origin == "file"))
        assert row is not None and row.disabled


# --------------------------------------------------------------------------- the pipeline


def _messages(engine: Engine, texts: list[str]) -> None:
    at = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
    with session_scope(engine) as s:
        for n, text in enumerate(texts, start=1):
            env = Envelope(source="test", seq=n, msgid=f"wl{n}")
            s.add(env)
            s.flush()
            s.add(
                Message(
                    envelope_id=env.id,
                    msgid=env.msgid,
                    seq=n,
                    action="send",
                    msgtype="text",
                    sender="zhangwei",
                    sender_kind=SenderKind.STAFF,
                    tolist=["wmcust1"],
                    msgtime=at + dt.timedelta(minutes=n),
                    text=text,
                )
            )


def _rules(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return sorted(s.scalars(select(Finding.rule)))


def test_the_next_run_rescans_with_the_edited_lists(
    engine: Engine, files: WordLists, settings: Settings
) -> None:
    _messages(engine, ["扫我的私聊转账码就行", "加我微信聊", "您好"])
    started = load_scanner(settings, engine)  # as a watcher started before the edits
    analyse(settings, engine, started)
    assert _rules(engine) == ["diversion.jia_wo_wei_xin"]

    added = add(engine, files, category="diversion", term="私聊转账码", roles="staff")
    report = analyse(settings, engine, started)
    assert _rules(engine) == ["diversion.jia_wo_wei_xin", "diversion.si_liao_zhuan_zhang_ma"]
    assert report.scan is not None and report.scan.messages == 3  # all of them: a full scan
    with session_scope(engine) as s:
        run = s.get(ScanRun, report.scan.run_id)
        request = s.get(RescanRequest, added.rescan_id)
        assert run is not None and request is not None
        assert run.mode == "full" and run.wordlist_hash == request.wordlist_hash
        assert request.done_at is not None and request.scan_run_id == run.id
        assert edits.pending_rescan(s) is None
        assert edits.rescan_state(s).last_done is not None

    again = analyse(settings, engine, started)  # nothing queued: incremental, nothing new
    assert again.scan is not None and again.scan.messages == 0

    disable(engine, files, "私聊转账码")
    disable(engine, files, "加我微信")
    analyse(settings, engine, started)
    assert _rules(engine) == []
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).where(RescanRequest.done_at.is_(None))) == 0


def test_a_long_running_scanner_is_reloaded_only_after_an_edit(
    engine: Engine, files: WordLists, settings: Settings
) -> None:
    scanner = load_scanner(settings, engine)
    assert scanner.wordlist_hash == files.wordlist_hash  # no edits: the files' hash
    assert current_scanner(settings, engine, scanner) is scanner
    with session_scope(engine) as s:
        edits.annotate(s, OFFICER, files, category="diversion", term="私下转账", note="留意")
    assert current_scanner(settings, engine, scanner) is scanner  # a note changes no term
    add(engine, files, category="promise", term="稳赚不赔")
    reloaded = current_scanner(settings, engine, scanner)
    assert reloaded is not scanner and reloaded.wordlist_hash != scanner.wordlist_hash
    assert [f.rule for f in reloaded.scan("稳赚不赔的", "staff")] == ["promise.wen_zhuan_bu_pei"]
