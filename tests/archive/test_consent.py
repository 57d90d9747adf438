"""Customers who refused archiving: recorded, their messages kept and flagged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from simfixtures import chat, write_file_archive
from sqlalchemy import Engine, select

from audit.archive.consent import withheld_windows
from audit.archive.keys import KeyRing, load_private_key
from audit.archive.sources import FileSource
from audit.config import load_settings
from audit.pipeline import load_scanner, run
from audit.store.db import session_scope
from audit.store.models import Customer, Finding, Message

T0 = dt.datetime(2025, 11, 17, tzinfo=dt.UTC)


def test_like_escapes_wildcards() -> None:
    from audit.archive.consent import _like

    assert _like("wm_a%b\\c") == "wm\\_a\\%b\\\\c"


def test_windows_from_events() -> None:
    h = dt.timedelta(hours=1)
    windows = withheld_windows(
        [(T0 + 3 * h, "agree"), (T0, "disagree"), (T0 + 5 * h, "disagree"), (T0 + h, "disagree")]
    )
    assert windows[0] == (T0, T0 + 3 * h)
    assert windows[1][0] == T0 + 5 * h and windows[1][1].year == 9999
    assert withheld_windows([(T0, "agree")]) == []


def _run(engine: Engine, tmp_path: Path, mode: str = "flag") -> None:
    cust = "wmCUSTOMERxyz"
    agree_ms = 1763344800000 + 30 * 60_000
    plains = [
        chat("m1", cust, "li.s001", 0, "我要投诉你们，打12315"),
        chat(
            "m2",
            cust,
            "li.s001",
            1,
            msgtype="disagree",
            userid=cust,
            disagree_time=1763344800000 + 60_000,
        ),
        chat("m3", cust, "li.s001", 2, "我要投诉你们，打12315"),
        chat("m4", "li.s001", cust, 3, "好的，加我微信 13800138000"),
        chat("m5", cust, "li.s001", 30, msgtype="agree", userid=cust, agree_time=agree_ms),
        chat("m6", cust, "li.s001", 31, "我要投诉你们，打12315"),
    ]
    archive, key = write_file_archive(tmp_path, plains)
    settings = load_settings(
        None, environ={}, overrides={"archive": {"workers": 1, "consent_mode": mode}}
    )
    run(
        settings,
        engine,
        FileSource(archive),
        KeyRing({1: load_private_key(key)}),
        load_scanner(settings),
    )


def test_messages_while_consent_withheld_are_flagged(engine: Engine, tmp_path: Path) -> None:
    _run(engine, tmp_path)
    with session_scope(engine) as session:
        flags = dict(session.execute(select(Message.msgid, Message.consent_withheld)).all())
        customer = session.scalars(select(Customer)).one()
        scanned = {
            m
            for (m,) in session.execute(
                select(Message.msgid).join(Finding, Finding.message_id == Message.id)
            )
        }
    assert flags == {"m1": False, "m2": False, "m3": True, "m4": True, "m5": False, "m6": False}
    assert customer.consent == "agree"  # the latest event
    assert {"m1", "m3", "m4", "m6"} <= scanned  # "flag" keeps them in the scan


def test_skip_scan_mode_keeps_flagged_messages_out_of_the_scanner(
    engine: Engine, tmp_path: Path
) -> None:
    _run(engine, tmp_path, "skip_scan")
    with session_scope(engine) as session:
        scanned = {
            m
            for (m,) in session.execute(
                select(Message.msgid).join(Finding, Finding.message_id == Message.id)
            )
        }
        assert session.scalar(select(Message).where(Message.msgid == "m3")) is not None
    assert "m3" not in scanned and "m4" not in scanned
    assert {"m1", "m6"} <= scanned
