"""The dashboard in a real browser: sign in, review an alert, screenshot every page.

Starts ``python -m streamlit run dashboards/server.py`` on a free port against a seeded SQLite
database and drives Debian's headless Chromium with Selenium. Screenshots go to the test's
tmp dir and, when ``AUDIT_ARTIFACTS`` is set, there too.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_seed import PASSWORD, seed_dashboard
from sqlalchemy import select

from audit.store.db import make_engine, session_scope
from audit.store.models import Alert, AlertState, AuditLog, Review

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("AUDIT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("AUDIT_CHROMEDRIVER", "/usr/bin/chromedriver"))
WAIT = 60

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(
        f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} "
        "(apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    engine = make_engine(sqlite_url)
    seed_dashboard(engine)
    engine.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "AUDIT_DATABASE__URL": sqlite_url,
        # the seeded corp names its acquisition channels, as a deployment would
        "AUDIT_DASHBOARD__CHANNEL_LABELS": '{"store_*": "门店扫码"}',
    }
    env.pop("AUDIT_CONFIG", None)
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboards" / "server.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"streamlit did not start:\n{(tmp_path / 'streamlit.log').read_text()}")
            time.sleep(0.3)
        yield base, sqlite_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _shots(tmp_path: Path) -> list[Path]:
    out = [tmp_path / "screenshots"]
    if os.environ.get("AUDIT_ARTIFACTS"):
        out.append(Path(os.environ["AUDIT_ARTIFACTS"]) / "dashboard")
    for d in out:
        d.mkdir(parents=True, exist_ok=True)
    return out


# what a Chinese user must never meet on a page: a Python None, a UTC offset or zone (times
# are in the configured zone), a stored code such as ``false_positive`` in place of its label
UNTIDY = {
    "None": re.compile(r"(?<![A-Za-z])None(?![A-Za-z])"),
    "UTC time": re.compile(r"\+00:00|(?<![A-Za-z])UTC(?![A-Za-z])"),
    "a stored code": re.compile(r"(?<![A-Za-z_.])[a-z]+(?:_[a-z]+)+(?![A-Za-z_.])"),
}


def _assert_tidy(driver: WebDriver, name: str) -> None:
    """The visible text of the page (not the canvas of a data grid) holds nothing untidy."""
    shown, icons = driver.execute_script(
        "return [document.body.innerText, Array.from("
        "document.querySelectorAll('[data-testid=stIconMaterial]'), e => e.textContent)]"
    )
    for icon in set(icons):  # a Material icon is written as its ligature name
        shown = shown.replace(icon, "")
    for what, pattern in UNTIDY.items():
        found = pattern.search(shown)
        assert found is None, (
            f"{name}: {what} on the page: {shown[max(0, found.start() - 60) : found.end() + 60]!r}"
        )


def _screenshot(driver: WebDriver, dirs: list[Path], name: str) -> None:
    time.sleep(0.5)  # charts draw after the script finishes
    _assert_tidy(driver, name)
    first = dirs[0] / f"{name}.png"
    assert driver.save_screenshot(str(first)), name
    for d in dirs[1:]:
        shutil.copy(first, d / first.name)


def _wait_idle(driver: WebDriver) -> None:
    """Until the script has finished running (no "Running..." status widget)."""
    WebDriverWait(driver, WAIT).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
    )


def _wait_text(driver: WebDriver, text: str) -> None:
    WebDriverWait(driver, WAIT).until(
        ec.presence_of_element_located((By.XPATH, f"//*[contains(text(), {text!r})]"))
    )


def _click_when_ready(driver: WebDriver, xpath: str) -> None:
    """A page streams in: an element below others may come after the status widget has gone,
    so wait for it to be clickable rather than look once."""
    WebDriverWait(driver, WAIT).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()


def _sign_in(driver: WebDriver, base: str, username: str) -> None:
    driver.get(base)
    WebDriverWait(driver, WAIT).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, 'input[aria-label="用户名 Username"]'))
    ).send_keys(username)
    password = driver.find_element(By.CSS_SELECTOR, 'input[aria-label="密码 Password"]')
    password.send_keys(PASSWORD)
    driver.find_element(By.XPATH, "//button[contains(., '登录 Sign in')]").click()
    _wait_text(driver, "门店概览 · Store overview")
    _wait_idle(driver)


def _go(driver: WebDriver, link: str, title: str) -> None:
    driver.find_element(
        By.XPATH, f"//a[@data-testid='stSidebarNavLink'][contains(., {link!r})]"
    ).click()
    _wait_text(driver, title)
    _wait_idle(driver)


ROW_PX = 35  # the data grid's header and row height


def _visible_grid(driver: WebDriver) -> Any:
    """The first data grid on screen, or False (a grid of the page being left may linger)."""
    grids = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')
    return next((g for g in grids if g.is_displayed() and g.size["height"] > ROW_PX), False)


# what the browser shows when a piece of Streamlit's own frontend failed to download (seen
# once on a loaded machine, on the grid's script); a person reloads the page
CHUNK_FAILED = "Failed to fetch dynamically imported module"


def _grid_or_chunk_failure(driver: WebDriver) -> Any:
    if driver.find_elements(By.XPATH, f"//*[contains(text(), {CHUNK_FAILED!r})]"):
        return CHUNK_FAILED
    return _visible_grid(driver)


def _click_first_row(driver: WebDriver) -> None:
    """Click the first data row of the page's first table, on its row marker, until its
    conversation opens. The grid is drawn on a canvas (a click is a position, not an
    element) some time after the element is there, so a click that lands before the canvas
    takes it is repeated, not timed."""
    deadline = time.monotonic() + WAIT
    while True:
        grid = WebDriverWait(
            driver, WAIT, ignored_exceptions=(StaleElementReferenceException,)
        ).until(_grid_or_chunk_failure)
        if grid == CHUNK_FAILED:
            assert time.monotonic() < deadline, "the page's frontend kept failing to load"
            driver.refresh()
            _wait_idle(driver)
            continue
        size = grid.size
        ActionChains(driver).move_to_element_with_offset(
            grid, -size["width"] // 2 + 14, -size["height"] // 2 + ROW_PX + ROW_PX // 2
        ).click().perform()
        try:
            WebDriverWait(driver, 5).until(
                ec.presence_of_element_located(
                    (By.XPATH, "//*[contains(text(), '记录 Transcript')]")
                )
            )
            return
        except TimeoutException:
            if time.monotonic() > deadline:
                raise


def test_sign_in_review_an_alert_and_screenshot_every_page(
    server: tuple[str, str], browser: WebDriver, tmp_path: Path
):
    base, url = server
    dirs = _shots(tmp_path)
    browser.get(base)
    _wait_text(browser, "登录 Sign in")
    _screenshot(browser, dirs, "00-signin")

    browser.find_element(By.CSS_SELECTOR, 'input[aria-label="用户名 Username"]').send_keys(
        "officer"
    )
    password = browser.find_element(By.CSS_SELECTOR, 'input[aria-label="密码 Password"]')
    password.send_keys(PASSWORD)
    browser.find_element(By.XPATH, "//button[contains(., '登录 Sign in')]").click()
    _wait_text(browser, "门店概览 · Store overview")
    _wait_idle(browser)

    pages = [
        ("01-overview", "概览 Overview", "门店概览 · Store overview"),
        ("02-stores", "门店排名 Stores", "门店排名 · Stores"),
        ("03-alerts", "预警 Alerts", "预警 · Alerts"),
        ("04-customers", "客户与标签 Customers", "客户与标签 · Customers & tags"),
        ("05-wordlists", "词表 Word lists", "词表 · Word lists"),
        ("06-trail", "审计日志 Audit trail", "审计日志 · Audit trail"),
        ("06b-search", "搜索 Search", "搜索 · Search"),
    ]
    for name, link, title in pages:
        browser.find_element(
            By.XPATH, f"//a[@data-testid='stSidebarNavLink'][contains(., {link!r})]"
        ).click()
        _wait_text(browser, title)
        _wait_idle(browser)
        _screenshot(browser, dirs, name)

    # review: on the queue, open the first alert's conversation and confirm it there
    browser.find_element(
        By.XPATH, "//a[@data-testid='stSidebarNavLink'][contains(., '预警 Alerts')]"
    ).click()
    _wait_text(browser, "预警 · Alerts")
    _wait_idle(browser)
    _click_first_row(browser)
    _wait_text(browser, "会话 · Conversation")
    _wait_text(browser, "记录 Transcript")
    _wait_idle(browser)
    _screenshot(browser, dirs, "07-conversation")
    _click_when_ready(browser, "//label[contains(., '确认违规 Confirm')]")
    _wait_idle(browser)
    _click_when_ready(browser, "//button[contains(., '提交 Submit')]")
    _wait_text(browser, "已处理 / reviewed")
    _wait_idle(browser)
    _screenshot(browser, dirs, "08-reviewed")

    engine = make_engine(url)
    with session_scope(engine) as s:
        [review] = s.scalars(select(Review)).all()
        assert review.action == "confirm"
        alert = s.get(Alert, review.alert_id)
        assert alert is not None and alert.state is AlertState.CONFIRMED
        actions = set(s.scalars(select(AuditLog.action)))
    engine.dispose()
    assert {"signin", "conversation.view", "alert.review"} <= actions
    assert len(list(dirs[0].glob("*.png"))) == 10


def test_review_from_a_clicked_row_refused_once_then_bulk_review_with_confirmation(
    server: tuple[str, str], browser: WebDriver, tmp_path: Path
):
    base, url = server
    dirs = _shots(tmp_path)
    _sign_in(browser, base, "officer")
    _go(browser, "预警 Alerts", "预警 · Alerts")
    _wait_text(browser, "共 2 条预警")
    _wait_idle(browser)

    # a click on the first row (a1, high before medium) opens its conversation, alert in focus
    _click_first_row(browser)
    _wait_text(browser, "记录 Transcript")
    _wait_idle(browser)
    assert "alert=" in browser.current_url
    # the transcript streams in below the header: wait for the focused bubble, do not look once
    WebDriverWait(browser, WAIT).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, ".tx .bubble.focus"))
    )

    # 误报 without the required comment: refused, and the choice is still 误报
    _click_when_ready(browser, "//label[contains(., '误报 False positive')]")
    _click_when_ready(browser, "//button[contains(., '提交 Submit')]")
    _wait_text(browser, "a comment is required")
    _wait_idle(browser)
    _screenshot(browser, dirs, "10-refused-keeps-action")
    chosen = WebDriverWait(browser, WAIT).until(
        ec.presence_of_element_located(
            (By.XPATH, "//label[contains(., '误报 False positive')]//input[@type='radio']")
        )
    )
    assert chosen.is_selected()
    comment = WebDriverWait(browser, WAIT).until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, 'textarea[aria-label^="说明 Comment"]'))
    )
    comment.send_keys("客户自己留的号码")
    _click_when_ready(browser, "//button[contains(., '提交 Submit')]")
    _wait_text(browser, "已处理 / reviewed")
    _wait_idle(browser)

    # bulk: tick the page, submit, see the list and the question, confirm
    _go(browser, "预警 Alerts", "预警 · Alerts")
    _wait_text(browser, "共 1 条预警")
    _click_when_ready(browser, "//button[contains(., '勾选批量处理')]")
    _wait_idle(browser)
    _click_when_ready(browser, "//label[contains(., '选择本页全部')]")
    _wait_text(browser, "已选 1 条预警")
    _wait_idle(browser)
    _click_when_ready(browser, "//button[contains(., '提交 Submit')]")
    _wait_text(browser, "Apply confirm to the 1 alerts listed above?")
    _wait_idle(browser)
    _screenshot(browser, dirs, "11-bulk-confirmation")
    engine = make_engine(url)
    with session_scope(engine) as s:  # nothing happens before the confirmation
        assert [r.action for r in s.scalars(select(Review))] == ["false_positive"]
    _click_when_ready(browser, "//button[contains(., '确认执行 Confirm')]")
    _wait_text(browser, "reviewed 1")
    _wait_idle(browser)

    with session_scope(engine) as s:
        reviews = [(r.action, r.comment) for r in s.scalars(select(Review).order_by(Review.id))]
        states = sorted(AlertState(a.state).value for a in s.scalars(select(Alert)))
    engine.dispose()
    assert reviews == [("false_positive", "客户自己留的号码"), ("confirm", "")]
    assert states == ["confirmed", "confirmed", "false_positive"]


def _submit_signin(driver: WebDriver, username: str, password: str) -> None:
    _wait_text(driver, "登录 Sign in")
    name = driver.find_element(By.CSS_SELECTOR, 'input[aria-label="用户名 Username"]')
    name.clear()  # a refused form comes back with the name filled in
    name.send_keys(username)
    driver.find_element(By.CSS_SELECTOR, 'input[aria-label="密码 Password"]').send_keys(password)
    button = driver.find_element(By.XPATH, "//button[contains(., '登录 Sign in')]")
    button.click()
    WebDriverWait(driver, WAIT).until(lambda _: _detached(button))  # the answer has loaded


def _detached(element: Any) -> bool:
    """Whether ``element`` has left the page; Chromium may say so as a stale reference or as
    a node that "does not belong to the document"."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def test_a_session_survives_refresh_and_new_tabs_and_ends_on_sign_out(
    server: tuple[str, str], browser: WebDriver, tmp_path: Path
):
    base, url = server
    dirs = _shots(tmp_path)
    engine = make_engine(url)
    with session_scope(engine) as s:
        alert_id = s.scalars(select(Alert.id).order_by(Alert.id)).first()
    # a deep link before sign-in: the form, then the page asked for
    browser.get(f"{base}/?alert={alert_id}")
    _wait_text(browser, "登录 Sign in")
    assert "/auth/signin?next=" in browser.current_url
    _submit_signin(browser, "officer", PASSWORD)
    _wait_text(browser, "会话 · Conversation")
    _wait_idle(browser)
    cookie = browser.get_cookie("audit_session")
    assert cookie is not None and cookie["httpOnly"] is True
    assert "audit_session" not in browser.execute_script("return document.cookie")
    assert cookie["value"] not in browser.current_url

    browser.refresh()  # still signed in, still on the deep link
    _wait_text(browser, "会话 · Conversation")
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")  # a deep link opened in a new tab
    browser.get(f"{base}/?alert={alert_id}")
    _wait_text(browser, "会话 · Conversation")
    _wait_idle(browser)
    _screenshot(browser, dirs, "session-new-tab")

    # sign out from the sidebar: the session ends on the server, for every tab
    _click_when_ready(browser, "//a[contains(., '退出 Sign out')]")
    if len(browser.window_handles) > 2:  # the link must not open yet another tab
        pytest.fail("the sign-out link opened a new tab")
    _click_when_ready(browser, "//button[contains(., '退出 Sign out')]")
    _wait_text(browser, "登录 Sign in")
    assert browser.get_cookie("audit_session") is None
    browser.switch_to.window(first)
    browser.refresh()
    _wait_text(browser, "登录 Sign in")
    assert "/auth/signin?next=" in browser.current_url
    # the old token itself is worth nothing now
    browser.add_cookie({"name": "audit_session", "value": cookie["value"], "path": "/"})
    browser.get(f"{base}/alerts")
    _wait_text(browser, "登录 Sign in")
    assert "/auth/signin?next=%2Falerts" in browser.current_url

    # five wrong passwords in a minute lock the name: the fifth answer says so, and the sixth
    # attempt is refused even with the right password
    for _ in range(4):
        _submit_signin(browser, "officer", "not-the-password")
        _wait_text(browser, "wrong username or password")
    _submit_signin(browser, "officer", "not-the-password")
    _wait_text(browser, "too many failed sign-ins")
    _submit_signin(browser, "officer", PASSWORD)
    _wait_text(browser, "too many failed sign-ins")
    _screenshot(browser, dirs, "session-locked")
    assert "/auth/signin" in browser.current_url

    with session_scope(engine) as s:
        actions = list(
            s.scalars(
                select(AuditLog.action).where(AuditLog.action.like("sign%")).order_by(AuditLog.id)
            )
        )
    engine.dispose()
    assert actions == ["signin", "signout", *["signin.failed"] * 5, "signin.locked"]
