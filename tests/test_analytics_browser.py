"""The analytics page in a real browser (Debian's chromium via Playwright) over the scene of
tests/test_analytics.py: log in, pick the range, see the five SVG charts, download a CSV;
no console errors or CSP violations, and no sideways scrolling at phone width."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, expect
from psycopg import sql

from ingest_service.api import create_app
from ingest_service.auth import ensure_admin
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode
from tests.browser_support import (  # noqa: F401 (fixtures are found by name)
    ARTIFACTS,
    browser_fixture,
    playwright_instance_fixture,
    wait_for,
)
from tests.conftest import with_database
from tests.test_analytics import insert_orders, insert_rest
from tests.test_tracking_page_browser import CSP_RECORDER_JS
from tracklane.embedded.broker import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="module")
def server(pg_server_url: str, pg_template: str) -> Iterator[str]:
    name = f"b_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(pg_template)
            )
        )
    url = with_database(pg_server_url, name)
    with psycopg.connect(url) as conn:
        ensure_admin(conn, username="admin", password="admin-password-long")
        conn.execute("INSERT INTO trips (id, origin_site) VALUES ('T1', 'wh1'), ('T2', 'wh1')")
        insert_rest(conn, insert_orders(conn))
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
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=15)
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_the_page_draws_the_reports_and_downloads_a_csv(server: str, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, timezone_id="UTC", accept_downloads=True)  # type: ignore[arg-type]
    context.add_init_script(CSP_RECORDER_JS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    try:
        page.goto(f"{server}/analytics.html")
        page.fill("#username", "admin")
        page.fill("#password", "admin-password-long")
        page.click("#login-submit")
        expect(page.locator("#app")).to_be_visible()
        page.fill("#range-from", "2026-03-02")
        page.fill("#range-to", "2026-03-03")
        page.click("#range-form button[type=submit]")
        stages = page.locator('[data-chart="stages"] svg text.label')
        expect(stages).to_have_text(
            ["created", "picking", "packed", "loaded", "in transit", "total"]
        )
        expect(page.locator('[data-chart="on-time"] svg text.value').last).to_have_text(
            "3 delivered · 50% on time · 1 without a window"
        )
        expect(page.locator('[data-chart="exceptions"] svg text.label')).to_have_text(
            ["damage", "delay", "wrong load"]
        )
        expect(page.locator('[data-chart="throughput"] svg rect')).to_have_count(3 * 24)
        expect(page.locator('[data-chart="throughput"] svg rect.heat:not(.zero)')).to_have_count(4)
        vehicles = page.locator('[data-chart="vehicles"] svg text.value')
        expect(vehicles).to_have_text(["4.4 km · dwell 18 min", "0.0 km · dwell 45 min"])
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "analytics-phone.png"), full_page=True)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide at 375 px"
        with page.expect_download() as info:
            page.click('[data-report="on-time"] button[data-format="csv"]')
        download = info.value
        assert download.suggested_filename == "analytics-on-time-20260302-20260304.csv"
        lines = open(download.path(), encoding="utf-8").read().splitlines()  # noqa: SIM115
        assert lines[1] == "2026-03-02,2,1,1,0,0.5"
        assert page.evaluate("() => window.__csp") == []
        assert console == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "failed-analytics.png"), full_page=True)
        raise
    finally:
        context.close()
