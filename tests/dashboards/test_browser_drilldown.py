"""The drill-down in a real browser: a deep link to a staff member, a clicked row opening its
conversation in the same tab, the customer and quality pages; screenshots of each.

Uses the server and browser of ``test_browser.py`` (headless Chromium, a seeded database).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from test_browser import (  # the fixtures and helpers, not its tests
    WAIT,
    _click_first_row,
    _go,
    _screenshot,
    _shots,
    _sign_in,
    _wait_idle,
    _wait_text,
    browser,
    server,
)

from audit.store.db import make_engine
from audit.store.models import Customer, Staff

__all__ = ["browser", "server"]  # fixtures used by name

pytestmark = pytest.mark.slow


def test_staff_deep_link_row_click_customer_and_quality_pages(
    server: tuple[str, str],
    browser: WebDriver,
    tmp_path: Path,
):
    base, url = server
    engine = make_engine(url)
    with engine.connect() as conn:
        zhang = conn.scalar(select(Staff.id).where(Staff.userid == "zhangwei"))
        cust0 = conn.scalar(select(Customer.id).where(Customer.external_userid == "wmcust0"))
    engine.dispose()
    dirs = _shots(tmp_path)
    _sign_in(browser, base, "officer")

    browser.get(f"{base}/staff?staff={zhang}")  # a link as the tables write it
    _wait_text(browser, "员工 · Staff")
    _wait_text(browser, "张伟 (zhangwei)")
    _wait_idle(browser)
    _screenshot(browser, dirs, "20-staff")
    tabs = len(browser.window_handles)
    _click_first_row(browser)  # conversation 2, the newest
    _wait_text(browser, "会话 · Conversation")
    _wait_text(browser, "记录 Transcript")
    _wait_idle(browser)
    assert len(browser.window_handles) == tabs  # the same tab
    WebDriverWait(browser, WAIT).until(lambda d: "conversation=" in d.current_url)

    browser.get(f"{base}/customer?customer={cust0}")
    _wait_text(browser, "客户 · Customer")
    _wait_text(browser, "客户等级: VIP")
    _wait_idle(browser)
    _screenshot(browser, dirs, "21-customer")

    _go(browser, "服务质量 Quality", "服务质量 · Quality")
    _wait_text(browser, "待回复 Waiting now")
    _screenshot(browser, dirs, "22-quality")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "None" not in page and "+00:00" not in page
