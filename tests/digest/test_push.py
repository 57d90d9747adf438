"""Real-time push of critical alerts: a watch cycle on the simulated archive, the WeCom
application channel against the local WeCom stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

from fake_wecom import CORPID, SECRET, FakeWeCom, serve
from qa_world import RAW, World
from servers import robot_server
from simfixtures import SimArchive
from sqlalchemy import Engine, select

from audit.archive import simulator
from audit.archive.keys import KeyRing
from audit.archive.sources import SimulatedServer
from audit.config import DigestRouteConfig, Settings, load_settings
from audit.digest.push import Pusher, PushReport
from audit.domain import Category
from audit.pipeline import load_scanner, sync_simulated_directory
from audit.reports.status import status
from audit.store.db import make_engine, session_scope
from audit.store.models import (
    Alert,
    AlertPush,
    AlertState,
    Envelope,
    Finding,
    Message,
    OrgUnit,
    Role,
    Severity,
)
from audit.store.users import create_user
from audit.watch import Watcher

PASSWORD = "correct-horse-battery-staple-42"
DASHBOARD = "https://audit.example.cn"
LINK = re.compile(r"\?alert=(\d+)\)")


def _settings(db_url: str, fake: FakeWeCom, **push: Any) -> Settings:
    return load_settings(
        None,
        environ={},
        overrides={
            "database": {"url": db_url},
            "wecom": {
                "base_url": fake.base_url,
                "corpid": CORPID,
                "proxy": "",
                "requests_per_second": 1000,
                "max_retries": 0,  # a failure is left to the next cycle at once
                "backoff_seconds": 0,
            },
            "digest": {
                "app_agentid": 1000002,
                "app_secret": SECRET,
                "dashboard_url": DASHBOARD,
            },
            "push": {"enabled": True, "channels": ["wecom_app"], **push},
        },
    )


def _sends(fake: FakeWeCom) -> list[tuple[str, str]]:
    """(touser, markdown) of every application message the stand-in was sent."""
    return [(s.body["touser"], s.body["markdown"]["content"]) for s in fake.calls("message/send")]


def _pushed(sends: list[tuple[str, str]]) -> list[tuple[str, int]]:
    out = []
    for user, content in sends:
        found = LINK.search(content)
        assert found, content
        out.append((user, int(found.group(1))))
    return sorted(out)


# --------------------------------------------------------------------------- a watch cycle


def test_watch_cycle_pushes_each_critical_alert_once_to_its_supervisors(
    db_url: str, sim_archive: SimArchive
) -> None:
    with serve(FakeWeCom()) as fake:
        settings = _settings(
            db_url, fake, max_per_minute=20, userids={"sup.hz": "WangSup"}, roles=["supervisor"]
        )
        engine = make_engine(db_url)
        sync_simulated_directory(engine, SimulatedServer(sim_archive.directory))
        with session_scope(engine) as s:
            city = s.scalar(select(OrgUnit).where(OrgUnit.code == "R01-C01"))
            assert city is not None
            empty = OrgUnit(code="S099", name="空门店", kind="store", parent_id=city.id)
            s.add(empty)
            s.flush()
            empty.path = f"{city.path}{empty.id}/"
            create_user(s, "sup.hz", PASSWORD, Role.SUPERVISOR, ["S001"])
            create_user(s, "sup.nb", PASSWORD, Role.SUPERVISOR, ["R01-C02"])  # the city: S002
            create_user(s, "sup.empty", PASSWORD, Role.SUPERVISOR, ["S099"])  # out of scope
            create_user(s, "comp1", PASSWORD, Role.COMPLIANCE)  # not in push.roles
        lines: list[str] = []

        def watcher() -> Watcher:
            return Watcher(
                settings,
                engine,
                lambda: SimulatedServer(sim_archive.directory),
                KeyRing.from_files(simulator.key_files(sim_archive.directory)),
                load_scanner(settings),
                0.01,
                emit=lines.append,
            )

        first = watcher()
        before = dt.datetime.now(dt.UTC)
        cycle = first.cycle()
        after = dt.datetime.now(dt.UTC)
        sends = _sends(fake)

        with session_scope(engine) as s:
            critical = s.execute(
                select(Alert.id, OrgUnit.code, Alert.category, OrgUnit.name)
                .join(OrgUnit, OrgUnit.id == Alert.org_unit_id)
                .where(Alert.severity == Severity.CRITICAL)
            ).all()
            raw_texts = {
                a: t
                for a, t in s.execute(
                    select(Alert.id, Message.text)
                    .join(Finding, Finding.id == Alert.finding_id)
                    .join(Message, Message.id == Finding.message_id)
                    .where(Alert.severity == Severity.CRITICAL)
                )
            }
        to = {"S001": ["WangSup"], "S002": ["sup.nb"], "S003": []}
        expected = sorted((user, a) for a, code, _, _ in critical for user in to[code])
        assert {code for _, code, _, _ in critical} == {"S001", "S002", "S003"}
        assert _pushed(sends) == expected  # each (alert, supervisor) exactly once, no one else
        assert cycle.push is not None
        assert (cycle.push.sent, cycle.push.failed, cycle.push.summaries) == (len(expected), 0, 0)
        assert (
            lines[-1]
            == f"push: {len(expected)} sent, 0 in 0 summary message(s), 0 failed, 0 deferred"
        )

        by_id = {a: (cat, store) for a, _, cat, store in critical}
        for _user, content in sends:
            alert_id = int(LINK.search(content).group(1))  # type: ignore[union-attr]
            category, store = by_id[alert_id]
            assert content.startswith(f"**【严重预警】{Category(category).label}**\n")
            assert f"> 门店：{store}\n" in content
            assert "（Asia/Shanghai）" in content
            assert content.endswith(f"[查看预警 #{alert_id}]({DASHBOARD}/?alert={alert_id})")
            assert re.search(r"\d{7,}", content) is None  # no phone, ID or card number
            for number in re.findall(r"\d{7,}", raw_texts[alert_id]):
                assert number not in content

        # latency from pull to push, from the recorded timestamps
        with session_scope(engine) as s:
            rows = s.execute(
                select(AlertPush.sent_at, Envelope.received_at, AlertPush.status, Alert.created_at)
                .join(Alert, Alert.id == AlertPush.alert_id)
                .join(Finding, Finding.id == Alert.finding_id)
                .join(Message, Message.id == Finding.message_id)
                .join(Envelope, Envelope.id == Message.envelope_id)
            ).all()
        assert len(rows) == len(expected) and {r.status for r in rows} == {"sent"}
        assert all(before <= r.received_at <= r.sent_at <= after for r in rows)
        assert all(r.received_at <= r.created_at <= r.sent_at for r in rows)
        latencies = sorted((r.sent_at - r.received_at).total_seconds() for r in rows)
        sending = sorted((r.sent_at - r.created_at).total_seconds() for r in rows)
        print(
            f"\npull-to-push latency over {len(latencies)} pushes: "
            f"min {latencies[0]:.1f}s, median {latencies[len(latencies) // 2]:.1f}s, "
            f"max {latencies[-1]:.1f}s (alert raised to pushed: max {sending[-1]:.2f}s); "
            f"cycle {cycle.seconds:.1f}s"
        )

        first.cycle()  # a second cycle pushes nothing again
        watcher().cycle()  # nor does a restarted watcher
        assert len(_sends(fake)) == len(expected)
        with session_scope(engine) as s:
            assert status(s)["pushes"] == {
                "sent": len(expected),
                "summarised": 0,
                "failed": 0,
                "sending": 0,
            }
        engine.dispose()


# --------------------------------------------------------------------------- throttle, retry


class Clock:
    def __init__(self) -> None:
        self.t = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.t


def _raise_alerts(engine: Engine, world: World, n: int, at: dt.datetime, tag: str) -> list[int]:
    """``n`` open critical alerts in store S1 on the message carrying the raw phone number,
    titled with the raw number (as an older, unmasked row might be)."""
    with session_scope(engine) as s:
        finding = s.scalar(select(Finding).where(Finding.rule == "privacy.phone").limit(1))
        assert finding is not None
        ids = []
        for i in range(n):
            alert = Alert(
                dedupe_key=f"test:{tag}:{i}",
                category="privacy",
                severity=Severity.CRITICAL,
                state=AlertState.OPEN,
                title=f"隐私泄露：{RAW[0]}",
                finding_id=finding.id,
                conversation_id=world.conv1,
                org_unit_id=world.s1,
                created_at=at,
                updated_at=at,
            )
            s.add(alert)
            s.flush()
            ids.append(alert.id)
    return ids


def test_throttle_summarises_beyond_the_limit_and_defers_in_a_full_minute(
    engine: Engine, world: World
) -> None:
    clock = Clock()
    with serve(FakeWeCom()) as fake:
        settings = _settings(str(engine.url), fake, max_per_minute=3)
        with session_scope(engine) as s:
            create_user(s, "sup1", PASSWORD, Role.SUPERVISOR, ["S1"])
        pusher = Pusher(settings, engine, now=clock)
        ids = _raise_alerts(engine, world, 8, clock.t - dt.timedelta(minutes=1), "a")

        report = pusher()
        assert (report.sent, report.summaries, report.summarised) == (2, 1, 6)
        sends = _sends(fake)
        assert [u for u, _ in sends] == ["sup1"] * 3  # sup2 (store S2) gets nothing
        assert _pushed(sends[:2]) == [("sup1", ids[0]), ("sup1", ids[1])]
        summary = sends[2][1]
        assert summary.startswith("**【严重预警】另有 6 条严重预警**\n> 门店：南京路店\n")
        assert "每分钟最多 3 条" in summary
        for _, content in sends:
            assert not [raw for raw in RAW if raw in content]  # masked: no phone, no names

        more = _raise_alerts(engine, world, 2, clock.t, "b")
        report = pusher()  # the same minute: three messages went out already
        assert (report.sent, report.summaries, report.deferred) == (0, 0, 2)
        assert len(_sends(fake)) == 3

        clock.t += dt.timedelta(seconds=61)
        report = pusher()  # a minute later the two waiting alerts go out one by one
        assert (report.sent, report.summaries, report.deferred) == (2, 0, 0)
        assert _pushed(_sends(fake)[3:]) == [("sup1", more[0]), ("sup1", more[1])]
        assert pusher().sent == 0
        with session_scope(engine) as s:
            assert status(s)["pushes"] == {
                "sent": 4,
                "summarised": 6,
                "failed": 0,
                "sending": 0,
            }


def test_transient_failure_is_recorded_and_retried_next_cycle(engine: Engine, world: World) -> None:
    clock = Clock()
    with serve(FakeWeCom()) as fake:
        settings = _settings(str(engine.url), fake)
        with session_scope(engine) as s:
            create_user(s, "sup1", PASSWORD, Role.SUPERVISOR, ["S1"])
        pusher = Pusher(settings, engine, now=clock)
        first, second = _raise_alerts(engine, world, 2, clock.t, "t")
        fake.script["message/send"] = [{"errcode": -1, "errmsg": "system busy"}]

        report = pusher()  # the first fails; the second waits rather than fail the same way
        assert (report.sent, report.failed, report.deferred) == (0, 1, 1)
        assert "errcode -1" in report.line()
        with session_scope(engine) as s:
            row = s.scalar(select(AlertPush))
            assert row is not None
            assert (row.alert_id, row.status, row.attempts) == (first, "failed", 1)
            assert row.error and "errcode -1" in row.error
            assert status(s)["pushes"]["failed"] == 1

        clock.t += dt.timedelta(seconds=30)
        report = pusher()  # the next cycle
        assert (report.sent, report.failed, report.deferred) == (2, 0, 0)
        # the refused try, then the two delivered
        assert _pushed(_sends(fake)) == [("sup1", first), ("sup1", first), ("sup1", second)]
        with session_scope(engine) as s:
            rows = s.execute(
                select(
                    AlertPush.alert_id, AlertPush.status, AlertPush.attempts, AlertPush.error
                ).order_by(AlertPush.alert_id)
            ).all()
            assert [tuple(r) for r in rows] == [(first, "sent", 2, None), (second, "sent", 1, None)]
        assert pusher().sent == 0


def test_concurrent_watchers_push_each_alert_once(engine: Engine, world: World) -> None:
    clock = Clock()
    with serve(FakeWeCom()) as fake:
        settings = _settings(str(engine.url), fake, max_per_minute=20)
        with session_scope(engine) as s:
            create_user(s, "sup1", PASSWORD, Role.SUPERVISOR, ["S1"])
        ids = _raise_alerts(engine, world, 6, clock.t, "c")
        pushers = [Pusher(settings, make_engine(str(engine.url)), now=clock) for _ in range(2)]
        start = threading.Barrier(2)
        reports: list[PushReport] = []

        def run(pusher: Pusher) -> None:
            start.wait()
            reports.append(pusher())

        threads = [threading.Thread(target=run, args=(p,)) for p in pushers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(r.sent for r in reports) == 6 and sum(r.failed for r in reports) == 0
        assert _pushed(_sends(fake)) == [("sup1", a) for a in ids]
        for p in pushers:
            p.engine.dispose()


def test_group_robot_routes_get_the_alerts_of_their_units_only(
    engine: Engine, world: World
) -> None:
    clock = Clock()
    with serve(FakeWeCom()) as fake, robot_server() as east, robot_server() as other:
        settings = _settings(
            str(engine.url),
            fake,
            channels=["webhook"],
            userids={},
        )
        settings = settings.model_copy(
            update={
                "digest": settings.digest.model_copy(
                    update={
                        "routes": [
                            DigestRouteConfig(
                                name="s1-robot", channel="webhook", to=east.url, org_units=["S1"]
                            ),
                            DigestRouteConfig(
                                name="s2-robot", channel="webhook", to=other.url, org_units=["S2"]
                            ),
                        ]
                    }
                )
            }
        )
        with session_scope(engine) as s:
            create_user(s, "sup1", PASSWORD, Role.SUPERVISOR, ["S1"])  # no wecom_app channel
        [alert_id] = _raise_alerts(engine, world, 1, clock.t, "r")
        report = Pusher(settings, engine, now=clock)()
        assert (report.sent, report.failed) == (1, 0)
        assert other.received == [] and fake.calls("message/send") == []
        [body] = east.received
        content = body["markdown"]["content"]
        assert content.endswith(f"({DASHBOARD}/?alert={alert_id})")
        assert not [raw for raw in RAW if raw in content]
        with session_scope(engine) as s:
            row = s.scalar(select(AlertPush))
            assert row is not None
            # recorded by the route's name: the robot's key stays out of the database
            assert (row.channel, row.recipient, row.status) == (
                "webhook",
                "webhook:s1-robot",
                "sent",
            )


def test_push_is_off_unless_enabled(sqlite_url: str) -> None:
    settings = load_settings(None, environ={}, overrides={"database": {"url": sqlite_url}})
    assert settings.push.enabled is False
    assert settings.push.channels == ["wecom_app", "webhook"]
    assert (settings.push.max_per_minute, settings.push.roles) == (5, ["supervisor"])
