"""The group robot channel against a local server speaking its JSON: split, throttle,
errcodes and HTTP 429."""

from __future__ import annotations

import pytest
from servers import FakeTime, robot_server

from audit.digest.channel import DeliveryError
from audit.digest.recipients import Recipient
from audit.digest.render import RenderedDigest
from audit.digest.webhook import RobotWebhookChannel, SlidingWindow, split_markdown
from audit.net import RetryPolicy


def _digest(markdown: str) -> RenderedDigest:
    return RenderedDigest("s", "t", "<p>h</p>", markdown, alert_count=1)


def test_when_short_then_one_part() -> None:
    assert split_markdown("# 日报\n一行") == ["# 日报\n一行"]


def test_when_long_then_parts_fit_and_cut_on_lines() -> None:
    lines = [f"{i}. 告警 · 南京路店 · 辱骂 · 你有病吧" for i in range(400)]
    parts = split_markdown("\n".join(lines), 4096)
    assert len(parts) > 2
    assert all(len(p.encode("utf-8")) <= 4096 for p in parts)
    body = [line for p in parts for line in p.splitlines()[:-1]]  # without "(i/n)"
    assert body == lines
    assert parts[0].endswith(f"(1/{len(parts)})")


def test_when_one_line_is_too_long_then_cut_between_characters() -> None:
    parts = split_markdown("短\n" + "长" * 3000, 4096)
    assert all(len(p.encode("utf-8")) <= 4096 for p in parts)
    assert "".join(p.rsplit("\n", 1)[0] for p in parts).replace("\n", "") == "短" + "长" * 3000


def test_sliding_window() -> None:
    t = FakeTime()
    window = SlidingWindow(3, 60, t.clock, t.sleep)
    for _ in range(4):
        window.acquire()
        t.now += 1
    assert t.sleeps == [57.0]


def test_when_25_parts_then_at_most_20_a_minute() -> None:
    t = FakeTime()
    with robot_server() as robot:
        robot.time = t
        channel = RobotWebhookChannel(clock=t.clock, sleep=t.sleep)
        markdown = "\n".join(f"{i:04d} " + "字" * 1300 for i in range(25))  # ~3.9 kB a line
        sent = channel.send(Recipient("webhook", "webhook:t", robot.url), _digest(markdown))
    assert sent == 25 and len(robot.received) == 25
    times = robot.times
    assert all(sum(1 for u in times if s <= u < s + 60) <= 20 for s in times)
    assert times[20] - times[0] >= 60


def test_when_errcode_45009_and_http_429_then_retried_with_backoff() -> None:
    t = FakeTime()
    with robot_server() as robot:
        robot.script = [{"errcode": 45009, "errmsg": "api freq out of limit"}, 429]
        channel = RobotWebhookChannel(clock=t.clock, sleep=t.sleep)
        channel.send(Recipient("webhook", "webhook:t", robot.url), _digest("# 日报"))
    assert robot.attempts == 3 and len(robot.received) == 1
    assert t.sleeps[0] >= 15  # a frequency limit waits a good part of the minute
    assert t.sleeps[1] >= 3  # Retry-After honoured


def test_when_invalid_key_then_fails_at_once_without_the_key_in_the_error() -> None:
    t = FakeTime()
    with robot_server() as robot:
        url = robot.url.split("?")[0]  # no key: the server answers 93000
        channel = RobotWebhookChannel(clock=t.clock, sleep=t.sleep)
        with pytest.raises(DeliveryError, match="93000") as err:
            channel.send(Recipient("webhook", "webhook:t", url), _digest("# 日报"))
    assert t.sleeps == [] and "robot-key" not in str(err.value)


def test_when_always_busy_then_gives_up() -> None:
    t = FakeTime()
    with robot_server() as robot:
        robot.script = [500, 500, 500]
        channel = RobotWebhookChannel(clock=t.clock, sleep=t.sleep, retry=RetryPolicy(attempts=3))
        with pytest.raises(DeliveryError, match="gave up after 3"):
            channel.send(Recipient("webhook", "webhook:t", robot.url), _digest("# 日报"))
    assert "robot-key-123" not in robot.url.split("?")[0]
