"""The shared widgets' pure parts: date presets, links and the formatting of rates."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

# a module of the app (not of the package): loaded from its file, leaving sys.path alone
_SPEC = importlib.util.spec_from_file_location(
    "dashboard_widgets", Path(__file__).resolve().parents[2] / "dashboards" / "widgets.py"
)
assert _SPEC is not None and _SPEC.loader is not None
widgets = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(widgets)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("今天", (dt.date(2026, 3, 1), dt.date(2026, 3, 1))),
        ("昨天", (dt.date(2026, 2, 28), dt.date(2026, 2, 28))),
        ("近7天", (dt.date(2026, 2, 23), dt.date(2026, 3, 1))),
        ("本月", (dt.date(2026, 3, 1), dt.date(2026, 3, 1))),
    ],
)
def test_presets_on_the_first_of_a_month(name: str, expected: tuple[dt.date, dt.date]):
    assert widgets.preset_range(name, dt.date(2026, 3, 1)) == expected


def test_this_month_runs_from_its_first_day_and_custom_is_not_a_range():
    assert widgets.preset_range("本月", dt.date(2026, 11, 18)) == (
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 18),
    )
    with pytest.raises(ValueError, match="自定义"):
        widgets.preset_range("自定义", dt.date(2026, 11, 18))


def test_rates_show_one_decimal_and_say_when_the_sample_is_too_small():
    assert widgets.rate(0.71183, 120) == "71.2%"
    assert widgets.rate(0.4, 20) == "40.0%"
    assert widgets.rate(0.4, 19) == "样本不足"
    assert widgets.rate(float("nan"), 0) == widgets.rate(None, 30) == "—"
    assert widgets.pct(0.403) == "40.3%" and widgets.pct(None) == "—"
    assert widgets.per_1k(12.345, 2000) == "12.3" and widgets.per_1k(500.0, 2) == "样本不足"
    assert widgets.minutes(5.55) == "5.5 分钟" and widgets.minutes(float("nan")) == "—"


def test_links_are_relative_and_skip_missing_ids():
    assert widgets.link("staff", "staff", 12) == "staff?staff=12"
    ids = pd.Series([3, None], dtype="Int64")
    assert [widgets.link("customer", "customer", i) for i in ids] == ["customer?customer=3", None]
    assert widgets.link("staff", "staff", float("nan")) is None


def test_measures_read_as_text_with_their_samples():
    nan = float("nan")
    frame = pd.DataFrame(
        {
            "messages": [2500, 9, 0],
            "findings_per_1k": [1.23, 555.6, nan],
            "scored": [40, 1, 0],
            "score_avg": [88.25, 72.5, nan],
            "sla_rate": [0.7118, 0.5, nan],
            "negative_rate": [0.025, 0.0, nan],
            "response_median_s": [93.0, 90.0, nan],
        }
    )
    shown = widgets.with_rate_texts(frame)
    assert list(shown["per_1k_text"]) == ["1.2", "样本不足", "—"]
    assert list(shown["sla_text"]) == ["71.2%", "样本不足", "—"]
    assert list(shown["negative_text"]) == ["2.5%", "样本不足", "—"]
    assert list(shown["score_text"]) == ["88.2", "72.5", "—"]
    assert list(shown["response_median_text"]) == ["1.6 分钟", "1.5 分钟", "—"]
    assert list(widgets.as_text(frame, score_avg=widgets.num)["score_avg"]) == ["88.2", "72.5", "—"]
