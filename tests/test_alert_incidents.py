"""One alert per incident, through the real pipeline on both databases.

An incident is a (message, category): several rules or overlapping findings on one message
give one alert, led by the most severe finding; a fatal scorecard item caused by findings is
carried by their alerts, never raised as a second critical alert; titles are stored masked.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from simfixtures import SimArchive, chat, write_file_archive
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from audit.alerts import raise_finding_alerts, raise_quality_alerts
from audit.archive import simulator
from audit.archive.keys import KeyRing, load_private_key
from audit.archive.sources import FileSource, SimulatedServer
from audit.config import load_settings
from audit.pipeline import load_scanner, run
from audit.scan.normalize import normalize
from audit.scan.recognizers import TextView, default_recognizers
from audit.store.access import Principal
from audit.store.db import session_scope
from audit.store.models import Alert, Checkpoint, Finding, Message, Score, Severity
from audit.store.reviews import review_alert

STAFF, CUSTOMER = "li.s001", "wmCUSTOMERxyz"
# what no title may show: the recognizers of personal data
PERSONAL = frozenset({"mobile_cn", "resident_id_cn", "bank_card", "email"})


def _settings() -> Any:
    return load_settings(None, environ={}, overrides={"archive": {"workers": 1}})


def _run_plains(engine: Engine, tmp_path: Path, plains: list[dict[str, Any]]) -> Any:
    archive, key = write_file_archive(tmp_path, plains)
    settings = _settings()
    return run(
        settings,
        engine,
        FileSource(archive),
        KeyRing({1: load_private_key(key)}),
        load_scanner(settings),
    )


def _alerts_of(engine: Engine, msgid: str) -> list[Alert]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(Alert)
                .join(Message, Message.id == Alert.message_id)
                .where(Message.msgid == msgid)
                .order_by(Alert.category)
            )
        )


def _findings_of(engine: Engine, msgid: str) -> list[Finding]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(Finding)
                .join(Message, Message.id == Finding.message_id)
                .where(Message.msgid == msgid)
            )
        )


def _lead(a: Alert) -> int:
    assert a.finding_id is not None
    return a.finding_id


def _personal_data(text: str) -> list[str]:
    view = TextView(text, normalize(text))
    return [
        text[h.start : h.end]
        for r in default_recognizers()
        if r.NAME in PERSONAL
        for h in r.analyze(view)
    ]


PLAINS = [
    chat("m1", CUSTOMER, STAFF, 0, "你好，我想办张卡"),
    # resident ID (high) and phone (medium): one privacy incident, led by the ID; the ID
    # also makes the scorecard's fatal item id_number_leak
    chat("m2", STAFF, CUSTOMER, 1, "您好，您的身份证110101199003074514，手机13800138000"),
    # three diversion rules, one of them critical (a private payment, also fatal)
    chat("m3", STAFF, CUSTOMER, 2, "加我微信 zw_8888，私下转账给我就行"),
    chat("m4", CUSTOMER, STAFF, 3, "好的谢谢"),
]


def test_one_alert_per_message_and_category_led_by_the_worst_finding(
    engine: Engine, tmp_path: Path
) -> None:
    _run_plains(engine, tmp_path, PLAINS)
    privacy = _alerts_of(engine, "m2")
    assert [a.category for a in privacy] == ["privacy"]
    assert sorted(f.rule for f in _findings_of(engine, "m2")) == [
        "privacy.phone",
        "privacy.resident_id",
    ]
    lead = {f.id: f for f in _findings_of(engine, "m2")}[_lead(privacy[0])]
    assert lead.rule == "privacy.resident_id"
    assert privacy[0].title == "隐私泄露：[身份证号]"
    assert privacy[0].dedupe_key == "finding:m2:privacy"
    # the fatal scorecard item is this same incident: critical, with the cause recorded
    assert privacy[0].severity == Severity.CRITICAL
    assert privacy[0].causes == ["scorecard:fatal:id_number_leak"]

    diversion = _alerts_of(engine, "m3")
    assert [a.category for a in diversion] == ["diversion"]
    assert len(_findings_of(engine, "m3")) == 3
    lead = {f.id: f for f in _findings_of(engine, "m3")}[_lead(diversion[0])]
    assert lead.rule == "diversion.si_xia_zhuan_zhang" and lead.severity == Severity.CRITICAL
    assert diversion[0].causes == ["scorecard:fatal:private_payment"]

    with session_scope(engine) as session:
        keys = set(session.scalars(select(Alert.dedupe_key)))
        score = session.scalars(select(Score)).one()
    assert score.score == 0 and {d["item"] for d in score.deductions if d["fatal"]} == {
        "id_number_leak",
        "private_payment",
    }
    assert not any(k.startswith("quality:fatal:") for k in keys)


def test_same_alerts_whatever_the_batches_and_the_order_of_the_stages(
    engine: Engine, tmp_path: Path
) -> None:
    _run_plains(engine, tmp_path, PLAINS)

    def snapshot() -> set[tuple[Any, ...]]:
        with session_scope(engine) as session:
            return {
                (a.dedupe_key, a.category, a.severity, a.finding_id, a.title, tuple(a.causes))
                for a in session.scalars(select(Alert))
            }

    before = snapshot()
    with session_scope(engine) as session:
        session.execute(delete(Alert))
        session.execute(
            delete(Checkpoint).where(
                Checkpoint.source.in_(["stage:alerts", "stage:quality_alerts"])
            )
        )
    # scores first, then findings one at a time: the incident is made by whichever comes
    # first, and a later, worse finding takes the lead of the open alert
    raise_quality_alerts(engine, low_score=60)
    raise_finding_alerts(engine, Severity.HIGH, batch_size=1)
    assert snapshot() == before
    assert raise_finding_alerts(engine, Severity.HIGH).raised == 0


def test_a_review_keeps_the_matched_words_masked(engine: Engine, tmp_path: Path) -> None:
    _run_plains(engine, tmp_path, PLAINS)
    privacy, diversion = _alerts_of(engine, "m2")[0], _alerts_of(engine, "m3")[0]
    with session_scope(engine) as session:
        who = Principal.operator("reviewer")
        first = review_alert(session, who, privacy.id, "confirm")
        second = review_alert(session, who, diversion.id, "confirm")
        assert (first.finding_rule, first.finding_matched) == (
            "privacy.resident_id",
            "[身份证号]",
        )
        assert second.finding_matched == "私下转账"


def test_the_incident_index_refuses_a_second_alert(engine: Engine, tmp_path: Path) -> None:
    _run_plains(engine, tmp_path, PLAINS)
    alert = _alerts_of(engine, "m2")[0]
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(
            Alert(
                dedupe_key="another:key",
                category="privacy",
                severity=Severity.LOW,
                title="x",
                message_id=alert.message_id,
            )
        )


def test_simulated_run_has_one_alert_per_incident_and_masked_titles(
    engine: Engine, sim_archive: SimArchive
) -> None:
    settings = _settings()
    keys = KeyRing.from_files(simulator.key_files(sim_archive.directory))
    run(settings, engine, SimulatedServer(sim_archive.directory), keys, load_scanner(settings))
    with session_scope(engine) as session:
        alerts = session.scalars(select(Alert)).all()
        findings = {f.id: f for f in session.scalars(select(Finding))}
        scores = session.scalars(select(Score)).all()
        texts = dict(session.execute(select(Message.id, Message.text)).all())
    finding_alerts = [a for a in alerts if a.kind == "finding"]
    assert finding_alerts and all(a.finding_id in findings for a in finding_alerts)
    # no message has two alerts for one category (counted through the lead finding)
    per_incident = Counter((findings[_lead(a)].message_id, a.category) for a in finding_alerts)
    assert per_incident.most_common(1)[0][1] == 1
    # the lead is the most severe finding of its message and category
    worst: dict[tuple[int, str], int] = {}
    for f in findings.values():
        key = (f.message_id, f.category)
        worst[key] = max(worst.get(key, 0), Severity(f.severity).rank)
    for a in finding_alerts:
        lead = findings[_lead(a)]
        assert Severity(lead.severity).rank == worst[(lead.message_id, a.category)]
    # no fatal incident has two alerts: each fatal item's findings have exactly one alert
    # between them per (message, category), carrying the cause, and no quality alert
    fatal = [s for s in scores if s.metrics["fatal"]]
    assert len(fatal) >= 5
    by_incident = {(a.message_id, a.category): a for a in finding_alerts}
    for s in fatal:
        for d in (d for d in s.deductions if d["fatal"]):
            incidents = {(findings[i].message_id, findings[i].category) for i in d["findings"]}
            for incident in incidents:
                alert = by_incident[incident]
                assert f"scorecard:fatal:{d['item']}" in alert.causes
                assert alert.severity == Severity.CRITICAL
    assert not [a for a in alerts if a.dedupe_key.startswith("quality:fatal:")]
    # titles: no raw phone, ID, card or e-mail, though the messages behind them had some
    leaked = {a.title: _personal_data(a.title) for a in alerts if _personal_data(a.title)}
    assert leaked == {}
    privacy_sources = [
        texts[findings[_lead(a)].message_id] for a in finding_alerts if a.category == "privacy"
    ]
    assert sum(1 for t in privacy_sources if _personal_data(t)) >= 5
