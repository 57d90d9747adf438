"""Digest content and rendering over the export tests' chain (2026-11-17, China time)."""

from __future__ import annotations

import datetime as dt

from qa_world import DAY, RAW, World
from sqlalchemy import Engine

from audit.digest.content import build_digest
from audit.digest.render import render


def test_when_company_wide_then_counts_trends_rankings_and_masked_excerpts(
    engine: Engine, world: World
) -> None:
    with engine.connect() as conn:
        d = build_digest(conn, DAY, None, dashboard_url="https://dash.example/")
    assert (d.messages.day, d.messages.day_before, d.messages.week_average) == (7, 0, 0.0)
    assert d.conversations.day == 3 and d.findings.day == 5 and d.alerts.day == 4
    assert dict((s, n) for s, _, n in d.alerts_by_severity) == {"high": 2, "medium": 2}
    assert dict((c, n) for c, _, n in d.alerts_by_category) == {"privacy": 3, "diversion": 1}
    assert d.open_alerts == 1
    assert [(r.name, r.score, r.samples) for r in d.worst_stores] == [
        ("南京路店", 57.5, 2),
        ("徐家汇店", 96.0, 1),
    ]
    assert [r.name for r in d.worst_staff] == ["张*", "李*"]  # not a supervisor's own inbox
    assert d.sla_rate == 0.75 and d.sla_samples == 2
    assert d.unanswered == 0
    assert [a.severity for a in d.top_alerts] == ["high", "high", "medium", "medium"]
    assert d.top_alerts[0].link == f"https://dash.example/?alert={d.top_alerts[0].id}"
    assert "[身份证号-" in d.top_alerts[0].excerpt
    excerpts = " ".join(a.excerpt for a in d.top_alerts)
    assert not any(raw in excerpts for raw in RAW)
    # the customer who refused archiving: the alert is counted, its text is not shown
    assert sum(1 for a in d.top_alerts if a.excerpt == "") == 1


def test_when_next_day_then_trend_and_week_average(engine: Engine, world: World) -> None:
    with engine.connect() as conn:
        d = build_digest(conn, DAY + dt.timedelta(days=1), None)
    assert (d.alerts.day, d.alerts.day_before, round(d.alerts.week_average, 3)) == (0, 4, 0.571)
    assert d.worst_stores == () and d.sla_rate is None and d.top_alerts == ()


def test_when_scoped_then_only_that_store(engine: Engine, world: World) -> None:
    with engine.connect() as conn:
        d = build_digest(conn, DAY, (world.s2,), scope_label="徐家汇店", show_staff_names=True)
    assert d.messages.day == 2 and d.alerts.day == 0 and d.top_alerts == ()
    assert [(r.name, r.samples) for r in d.worst_staff] == [("李娜", 1)]


def test_when_rendered_then_email_and_markdown_carry_the_same_facts(
    engine: Engine, world: World
) -> None:
    with engine.connect() as conn:
        d = build_digest(conn, DAY, None, dashboard_url="https://dash.example")
    r = render(d)
    assert r.subject == "[合规日报] 2026-11-17 · 全公司 · 新告警 4"
    for body in (r.text, r.html, r.markdown):
        assert "南京路店" in body and "75.0%" in body
        assert "https://dash.example/?alert=" in body
        assert not any(raw in body for raw in RAW)
    assert '<font color="warning">' in r.markdown and "|" not in r.markdown
    assert "【身份证号-" in r.markdown  # brackets would be read as a link in markdown
    assert "&lt;" not in r.text and "<table" in r.html
