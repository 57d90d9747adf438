"""Sending the day's digests through a real SMTP server and a local robot webhook: content
per scope, once per (day, channel, recipient), failures isolated and retried, every attempt
recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from qa_world import DAY, RAW, World
from servers import PASSWORD, USER, FakeTime, robot_server, smtp_server
from sqlalchemy import Engine, select

from audit.cli import cli
from audit.digest.channel import Channel
from audit.digest.recipients import DigestRoute, digest_recipients
from audit.digest.run import DigestOptions, send_digests
from audit.digest.smtp import SmtpChannel
from audit.digest.webhook import RobotWebhookChannel
from audit.net import RetryPolicy
from audit.store.db import session_scope
from audit.store.models import AuditLog, DigestSent

OPTIONS = DigestOptions(dashboard_url="https://dash.example")
FAST = RetryPolicy(attempts=2, backoff=0.0)


def _recipients(engine: Engine, webhook: str) -> list:  # type: ignore[type-arg]
    route = DigestRoute(name="s1-group", channel="webhook", to=webhook, org_units=["S1"])
    with session_scope(engine) as s:
        return digest_recipients(s, routes=[route])


def _channels(port: int, t: FakeTime, **smtp: object) -> dict[str, Channel]:
    return {
        "email": SmtpChannel("127.0.0.1", port, "audit@corp.cn", retry=FAST, sleep=t.sleep, **smtp),  # type: ignore[arg-type]
        "webhook": RobotWebhookChannel(clock=t.clock, sleep=t.sleep, retry=FAST),
    }


def test_when_sent_twice_then_second_run_sends_nothing(engine: Engine, world: World) -> None:
    t = FakeTime()
    with smtp_server() as (inbox, port, _), robot_server() as robot:
        recipients = _recipients(engine, robot.url)
        assert [(r.channel, r.key) for r in recipients] == [
            ("email", "admin@corp.cn"),
            ("email", "comp@corp.cn"),
            ("email", "sup2@corp.cn"),
            ("webhook", "webhook:s1-group"),
        ]
        run = send_digests(engine, DAY, recipients, _channels(port, t), OPTIONS)
        assert run.count("sent") == 4, run.deliveries
        assert len(inbox.messages) == 3 and len(robot.received) == 1

        by_to = {m["To"]: m for m in inbox.messages}
        admin = by_to["admin@corp.cn"]
        assert admin["Subject"] == "[合规日报] 2026-11-17 · 全公司 · 新告警 4"
        html = admin.get_body(("html",)).get_content()
        text = admin.get_body(("plain",)).get_content()
        assert "https://dash.example/?alert=" in html and "南京路店" in text
        assert "张伟" in text  # an admin's own inbox shows staff names
        sup = by_to["sup2@corp.cn"]
        assert "徐家汇店" in sup["Subject"] and "新告警 0" in sup["Subject"]
        assert "南京路店" not in sup.get_body(("plain",)).get_content()
        markdown = robot.received[0]["markdown"]["content"]
        assert "# 合规日报 2026-11-17" in markdown and "南京路店" in markdown
        assert "徐家汇店" not in markdown  # the route's scope is S1
        for body in [markdown, html, text]:
            assert not any(raw in body for raw in RAW if raw not in ("张伟", "李娜"))

        again = send_digests(engine, DAY, recipients, _channels(port, t), OPTIONS)
        assert again.count("skipped") == 4 and again.count("sent") == 0
        assert "already sent" in again.deliveries[0].detail
        assert len(inbox.messages) == 3 and len(robot.received) == 1

        forced = send_digests(engine, DAY, recipients[:1], _channels(port, t), OPTIONS, resend=True)
        assert forced.count("sent") == 1 and len(inbox.messages) == 4

    with session_scope(engine) as s:
        rows = s.scalars(select(DigestSent).order_by(DigestSent.id)).all()
        assert [(r.channel, r.recipient, r.status, r.alert_count) for r in rows] == [
            ("email", "admin@corp.cn", "sent", 4),
            ("email", "comp@corp.cn", "sent", 4),
            ("email", "sup2@corp.cn", "sent", 0),
            ("webhook", "webhook:s1-group", "sent", 4),
        ]
        log = s.scalars(select(AuditLog).where(AuditLog.action == "digest")).all()
        assert len(log) == 5  # four sends and one re-send
        assert all("robot-key" not in str(entry.detail) for entry in log)


def test_when_one_channel_fails_then_others_are_sent_and_it_is_retried_next_run(
    engine: Engine, world: World
) -> None:
    t = FakeTime()
    with smtp_server() as (inbox, port, _), robot_server() as robot:
        recipients = _recipients(engine, robot.url)
        robot.script = [{"errcode": 93000, "errmsg": "invalid webhook url"}]
        run = send_digests(engine, DAY, recipients, _channels(port, t), OPTIONS)
        assert run.count("sent") == 3 and run.count("failed") == 1
        failed = next(d for d in run.deliveries if d.status == "failed")
        assert failed.channel == "webhook" and "93000" in failed.detail
        assert len(inbox.messages) == 3
        with session_scope(engine) as s:
            row = s.scalars(select(DigestSent).where(DigestSent.channel == "webhook")).one()
            assert row.status == "failed" and "93000" in (row.error or "")

        again = send_digests(engine, DAY, recipients, _channels(port, t), OPTIONS)
        assert again.count("sent") == 1 and again.count("skipped") == 3
        assert len(robot.received) == 1 and len(inbox.messages) == 3


def test_when_smtp_server_is_down_then_failed_not_raised(engine: Engine, world: World) -> None:
    from servers import free_port

    t = FakeTime()
    with robot_server() as robot:
        recipients = _recipients(engine, robot.url)
        run = send_digests(engine, DAY, recipients, _channels(free_port(), t), OPTIONS)
    assert run.count("failed") == 3 and run.count("sent") == 1
    assert "gave up after 2" in run.deliveries[0].detail


def test_when_starttls_and_login_then_delivered(
    engine: Engine, world: World, tmp_path: Path
) -> None:
    t = FakeTime()
    with smtp_server(tls_dir=tmp_path) as (inbox, port, context):
        channel = SmtpChannel(
            "127.0.0.1",
            port,
            "audit@corp.cn",
            user=USER,
            password=PASSWORD,
            security="starttls",
            ssl_context=context,
            retry=FAST,
            sleep=t.sleep,
        )
        with session_scope(engine) as s:
            recipients = digest_recipients(s)[:1]
        run = send_digests(engine, DAY, recipients, {"email": channel}, OPTIONS)
        assert run.count("sent") == 1, run.deliveries
        assert inbox.logins == [USER] and len(inbox.messages) == 1

        wrong = SmtpChannel(
            "127.0.0.1", port, user=USER, password="nope", security="starttls",
            ssl_context=context, retry=FAST, sleep=t.sleep,
        )  # fmt: skip
        failed = send_digests(engine, DAY, recipients, {"email": wrong}, OPTIONS, resend=True)
        assert failed.count("failed") == 1 and "login refused" in failed.deliveries[0].detail
        assert t.sleeps == []  # a refused login is not retried


def test_cli_dry_run_then_send_then_nothing(
    db_url: str,
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with smtp_server() as (inbox, port, _):
        monkeypatch.setenv("AUDIT_DIGEST__SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("AUDIT_DIGEST__SMTP_PORT", str(port))
        monkeypatch.chdir(tmp_path)
        runner = CliRunner()
        preview = runner.invoke(
            cli, ["--db", db_url, "digest", "--date", "2026-11-17", "--to-file", "out"]
        )
        assert preview.exit_code == 0, preview.output
        files = sorted(p.name for p in (tmp_path / "out" / "2026-11-17").iterdir())
        assert "email-admin@corp.cn.html" in files and len(files) == 9
        assert inbox.messages == []

        first = runner.invoke(cli, ["--db", db_url, "digest", "--date", "2026-11-17"])
        assert first.exit_code == 0, first.output
        assert "3 sent, 0 skipped, 0 failed" in first.output and len(inbox.messages) == 3
        second = runner.invoke(cli, ["--db", db_url, "digest", "--date", "2026-11-17"])
        assert "0 sent, 3 skipped, 0 failed" in second.output and len(inbox.messages) == 3
