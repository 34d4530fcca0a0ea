"""The customer's tracking page in a real browser (Debian's chromium via Playwright): both
languages, the timeline and the map, no console errors or CSP violations, and no sideways
scrolling at phone width. One API server (uvicorn in a thread) and one database serve the
module; the scene is tests/test_tracking_page.py's."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect
from psycopg import sql

from ingest_service.api import create_app
from ingest_service.notify.links import new_token
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode
from tests.browser_support import (  # noqa: F401 (fixtures are found by name)
    ARTIFACTS,
    browser_fixture,
    playwright_instance_fixture,
    wait_for,
)
from tests.conftest import with_database
from tests.test_tracking_page import scene
from tracklane.embedded.broker import free_port

pytestmark = [pytest.mark.browser]

PHONE_375 = {"width": 375, "height": 740}
# Installed before the page's scripts: every CSP violation the page causes.
CSP_RECORDER_JS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


@pytest.fixture(scope="module")
def server(pg_server_url: str, pg_template: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The API on a free port over a fresh copy of the template database, with the scene and
    a link for each order: (base URL, {order number: token})."""
    name = f"b_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(pg_template)
            )
        )
    url = with_database(pg_server_url, name)
    scene(url, datetime.now(UTC).replace(microsecond=0))
    tokens: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        for number, order_id in conn.execute("SELECT number, id FROM orders").fetchall():
            tokens[number] = new_token()
            conn.execute(
                "INSERT INTO tracking_links (token, order_id, created_by) VALUES (%s, %s, 'test')",
                (tokens[number], order_id),
            )
    settings = Settings(secret_key="browser-test-session-key-0123456789", map_tile_url="",
                        _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    app = create_app(
        settings=settings, database_url=url, storage_mode=StorageMode("postgresql", "t")
    )
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: uv.started, timeout=30, what="the API server to start")
        yield f"http://127.0.0.1:{port}", tokens
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def open_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator:
    """Opens a URL at phone width in `locale`; afterwards checks the console stayed clean."""
    console: list[str] = []
    pages: list[Page] = []
    failed_before = request.session.testsfailed

    def opener(url: str, locale: str) -> Page:
        context = browser.new_context(viewport=PHONE_375, locale=locale, timezone_id="UTC")  # type: ignore[arg-type]
        context.add_init_script(CSP_RECORDER_JS)
        page = context.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in (
            "error", "warning") else None)  # fmt: skip
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        pages.append(page)
        page.goto(url)
        expect(page.locator("#track[data-rendered]")).to_be_attached(timeout=15_000)
        return page

    yield opener
    failed = request.session.testsfailed > failed_before
    for page in pages:
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"failed-tracking-{request.node.name}.png"))
        assert page.evaluate("() => window.__csp") == [], "CSP violations"
        page.context.close()
    assert console == [], console


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE_375["width"], f"the page is {width} px wide at 375 px"


def test_chinese_page_shows_the_timeline_and_the_vehicle(server, open_page) -> None:
    base, tokens = server
    page = open_page(f"{base}/t/{tokens['SO-A']}", "zh-CN")
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    expect(page.locator("#state-text")).to_have_text("运输中")
    expect(page.locator("#timeline li.done")).to_have_text([re.compile("订单已确认")])
    expect(page.locator("#timeline li.current .step-label")).to_have_text("运输中")
    expect(page.locator("#timeline li:visible")).to_have_count(5)
    expect(page.locator("#when-eta")).to_be_visible()
    expect(page.locator("#map-section")).to_be_visible()
    expect(page.locator("#map .vehicle-marker")).to_have_count(1)
    assert "UTC" not in page.locator("#when-text").inner_text()  # formatted by the script
    no_sideways_scroll(page)
    page.screenshot(path=str(ARTIFACTS / "tracking-page-zh.png"), full_page=True)


def test_english_page_for_the_second_stop_has_no_vehicle(server, open_page) -> None:
    base, tokens = server
    page = open_page(f"{base}/t/{tokens['SO-B']}", "en-US")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    expect(page.locator("#state-text")).to_have_text("On its way")
    expect(page.locator("#order-number")).to_have_text("SO-B")
    expect(page.locator("#map-section")).to_be_hidden()
    assert page.locator("#track").get_attribute("data-vehicle") == "none"
    assert "Zed Privacy" not in page.content()
    no_sideways_scroll(page)


def test_cancelled_and_delivered_pages(server, open_page, browser: Browser) -> None:
    base, tokens = server
    page = open_page(f"{base}/t/{tokens['SO-E']}", "en-GB")
    expect(page.locator("#timeline li:visible .step-label")).to_have_text(
        ["Order confirmed", "Cancelled"]
    )
    expect(page.locator("#expires")).to_be_visible()
    page = open_page(f"{base}/t/{tokens['SO-C']}", "zh-CN")
    expect(page.locator("#state-text")).to_have_text("已送达")
    no_sideways_scroll(page)
    # Expired: the page that says so (its 404 is the one console error we expect).
    context = browser.new_context(viewport=PHONE_375, locale="zh-CN")  # type: ignore[arg-type]
    try:
        expired = context.new_page()
        assert expired.goto(f"{base}/t/{tokens['SO-D']}").status == 404
        expect(expired.locator("h1")).to_have_text("链接无效")
        no_sideways_scroll(expired)
    finally:
        context.close()
