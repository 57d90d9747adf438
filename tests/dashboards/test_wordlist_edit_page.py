"""The word-list page's edits: an officer adds, disables and annotates terms; readers only read.

On the seeded dashboard database (``dashboard_seed.py``) and the shipped word lists.
"""

from __future__ import annotations

import pandas as pd
import pytest
from apptest_helpers import app_as, principal, texts
from dashboard_seed import DashSeed
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from audit.store.db import session_scope
from audit.store.models import AuditLog, RescanRequest, WordlistEdit

PAGE = "views/wordlists.py"
QUEUED = "重新扫描已排队 / rescan queued"

pytestmark = pytest.mark.usefixtures("isolated_app")


def _add(at: AppTest, category: str, term: str, **more: str) -> None:
    at.selectbox(key="wl_add_category").set_value(category)
    at.text_input(key="wl_add_term").input(term)
    for key, value in more.items():
        widget = at.selectbox(key=key) if key in ("wl_add_severity", "wl_add_roles") else None
        if widget is not None:
            widget.set_value(value)
        else:
            at.text_input(key=key).input(value)
    next(b for b in at.button if b.label == "添加 Add").click().run()
    assert not at.exception, [e.message for e in at.exception]


def _edits_table(at: AppTest) -> pd.DataFrame:
    [table] = [d.value for d in at.dataframe if "origin" in d.value.columns]
    return table


def _rows(engine: Engine) -> list[tuple[str, str, str, bool, str]]:
    with session_scope(engine) as s:
        return [
            (r.category, r.term, r.origin, r.disabled, r.note)
            for r in s.scalars(select(WordlistEdit).order_by(WordlistEdit.id))
        ]


def test_an_officer_adds_disables_and_annotates_terms_on_the_page(
    fresh_db: tuple[Engine, DashSeed],
) -> None:
    engine, _ = fresh_db
    at = app_as(principal(engine, "officer"), PAGE)
    assert "尚无修改" in texts(at) and QUEUED not in texts(at)

    _add(at, "diversion", "私聊转账码", wl_add_severity="high", wl_add_note="督导反馈")
    assert [m.value for m in at.success] == [f"已添加 / added：diversion/私聊转账码，{QUEUED}"]
    assert QUEUED in at.warning[0].value
    assert at.text_input(key="wl_add_term").value == ""  # cleared after it was added
    table = _edits_table(at)
    assert list(table["term"]) == ["私聊转账码"] and list(table["status"]) == ["生效 on"]

    # refused: the message says why, and what was typed stays for the officer to fix
    _add(at, "diversion", "加 我 微 信", wl_add_note="再加一次")
    [error] = at.error
    assert error.value.startswith("重复词条：“加 我 微 信”与 diversion 中已有的“加我微信”相同")
    assert at.text_input(key="wl_add_term").value == "加 我 微 信"
    assert at.text_input(key="wl_add_note").value == "再加一次"
    _add(at, "diversion", "长" * 41)
    assert "词条过长：41 个字符，最多 40 个" in at.error[0].value
    assert _rows(engine) == [("diversion", "私聊转账码", "added", False, "督导反馈")]

    # switch a term of the files off, and annotate it
    at.selectbox(key="wl_edit_category").set_value("diversion").run()
    at.selectbox(key="wl_edit_term").set_value("加我微信").run()
    at.button(key="wl_toggle").click().run()
    assert [m.value for m in at.success] == [f"已停用 / disabled：diversion/加我微信，{QUEUED}"]
    assert at.button(key="wl_toggle").label == "启用 Enable"
    at.text_area(key="wl_note_diversion_加我微信").input("误报多：先停用观察一周")
    at.button(key="wl_save_note").click().run()
    assert not at.exception
    assert [m.value for m in at.success] == ["备注已保存 / note saved：diversion/加我微信"]
    table = _edits_table(at)
    off = table[table["term"] == "加我微信"].iloc[0]
    assert (off["origin"], off["status"], off["note"]) == (
        "文件 file",
        "已停用 disabled",
        "误报多：先停用观察一周",
    )
    assert _rows(engine)[1] == ("diversion", "加我微信", "file", True, "误报多：先停用观察一周")
    with session_scope(engine) as s:
        logged = s.execute(
            select(AuditLog.actor, AuditLog.action, AuditLog.target_id)
            .where(AuditLog.action.like("wordlist.%"))
            .order_by(AuditLog.id)
        ).all()
        queued = s.scalars(select(RescanRequest.reason).where(RescanRequest.done_at.is_(None)))
        assert list(queued) == ["新增词条 diversion/私聊转账码", "停用词条 diversion/加我微信"]
    assert [tuple(r) for r in logged] == [
        ("officer", "wordlist.add", "diversion/私聊转账码"),
        ("officer", "wordlist.disable", "diversion/加我微信"),
        ("officer", "wordlist.note", "diversion/加我微信"),
    ]


def test_readers_see_the_edits_and_the_queued_rescan_but_cannot_change_them(
    fresh_db: tuple[Engine, DashSeed],
) -> None:
    engine, _ = fresh_db
    officer = app_as(principal(engine, "officer"), PAGE)
    _add(officer, "promise", "躺赚翻倍", wl_add_note="十一月新增")
    assert not officer.error and officer.success

    analyst = app_as(principal(engine, "analyst"), PAGE)
    shown = texts(analyst)
    assert "只读" in shown and QUEUED in shown
    assert list(_edits_table(analyst)["term"]) == ["躺赚翻倍"]
    assert not analyst.text_input and not analyst.text_area and not analyst.button
    assert not [s for s in analyst.selectbox if str(s.key).startswith("wl_")]

    # a supervisor is not offered the word lists at all (compliance officers' and analysts')
    supervisor = app_as(principal(engine, "nanjing"))
    with pytest.raises(ValueError):
        supervisor.switch_page(PAGE)
    assert _rows(engine) == [("promise", "躺赚翻倍", "added", False, "十一月新增")]
