"""What the dashboard's browser tests stand on: the demo running as a subprocess (the README's
`tracklane demo`, without `--for`), Debian's chromium driven headless by Playwright, and an
HTTP helper with the demo admin's token for making users and hostile data.

Playwright's own browser download is not used: `chromium_path` finds the system's chromium
(`scripts/setup.sh --browser` installs it; `TRACKLANE_CHROMIUM` overrides). Test modules
import the fixtures below (`from tests.browser_support import demo_fixture, ...`); each is
named without the `_fixture` (tests ask for `demo`, `api`, `browser`, `pages`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tracklane.embedded.broker import free_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"  # screenshots and the demo's log; .gitignore'd
DOCS_SCREENSHOT = ROOT / "docs" / "dashboard.png"
UPDATE_DOCS_ENV = "TRACKLANE_UPDATE_DOCS_SCREENSHOT"  # =1: refresh docs/dashboard.png
DEMO_START_TIMEOUT_S = 90.0
DEMO_STOP_TIMEOUT_S = 30.0
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str | None:
    """The system's chromium: TRACKLANE_CHROMIUM, else `chromium` on PATH, else Debian's."""
    for candidate in (
        os.environ.get("TRACKLANE_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def wait_for(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    every: float = 0.25,
    log: Callable[[], str] | None = None,
) -> T:
    """Poll `probe` until it returns something truthy; fail saying what was awaited (and,
    given `log`, with the tail of the demo's log)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            tail = f"\n--- demo log (tail) ---\n{log()}" if log else ""
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}; last: {last!r}{tail}"
            )
        time.sleep(every)


@dataclass
class Demo:
    """A running `tracklane demo`."""

    process: subprocess.Popen[str]
    data_dir: Path
    log_path: Path
    started_at: datetime  # UTC, when the process was started
    stdout: list[str] = field(default_factory=list)
    url: str = ""  # http://127.0.0.1:PORT
    password: str = ""  # the admin's, as printed
    broker_url: str = ""  # mqtt://127.0.0.1:PORT (the private broker; needs a login)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no demo log)"
        return text[-chars:]

    def stdout_text(self) -> str:
        return "".join(self.stdout)


def _read_stdout(demo: Demo) -> None:
    assert demo.process.stdout is not None
    for line in demo.process.stdout:
        demo.stdout.append(line)


def start_demo(work: Path, *, port: int | None = None) -> Demo:
    """`python -m tracklane demo --port P` in `work`, until /healthz answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    env["TRACKLANE_DATA_DIR"] = str(work / "data")
    env["TRACKLANE_MAP_TILE_URL"] = ""  # no internet here: a map without base tiles
    env["PYTHONUNBUFFERED"] = "1"
    port = port or free_port()
    log_path = work / "demo.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tracklane", "demo", "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
            start_new_session=True,  # its own process group: Ctrl-C in pytest is ours
        )  # fmt: skip
    demo = Demo(process, work / "data", log_path, datetime.now(UTC))
    threading.Thread(target=_read_stdout, args=(demo,), daemon=True).start()
    try:
        _await_banner(demo, port)
        wait_for(
            lambda: _healthy(demo.url),
            timeout=30,
            what=f"GET {demo.url}/healthz to answer 200",
            log=demo.log_tail,
        )
    except BaseException:
        stop_demo(demo)
        raise
    return demo


def _await_banner(demo: Demo, port: int) -> None:
    deadline = time.monotonic() + DEMO_START_TIMEOUT_S
    while True:
        text = demo.stdout_text()
        login = re.search(r"^\s*Login:\s+admin / (\S+)\s*$", text, re.M)
        api = re.search(r"^\s*API:\s+(http://\S+?)/api/v1", text, re.M)
        broker = re.search(r"^\s*Broker:\s+(mqtts?://\S+)", text, re.M)
        if login and api and broker:
            demo.password, demo.url, demo.broker_url = login[1], api[1], broker[1]
            assert demo.url.endswith(f":{port}"), (demo.url, port)
            return
        if demo.process.poll() is not None:
            raise AssertionError(
                f"the demo exited with {demo.process.returncode} before printing its login;\n"
                f"stdout:\n{text[-2000:]}\n--- demo log (tail) ---\n{demo.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the demo printed no 'Login:  admin / ...' line in {DEMO_START_TIMEOUT_S:g} s;"
                f"\nstdout:\n{text[-2000:]}\n--- demo log (tail) ---\n{demo.log_tail()}"
            )
        time.sleep(0.2)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def stop_demo(demo: Demo) -> None:
    """Ctrl-C, as a person would; SIGKILL its process group if it hangs."""
    process = demo.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=DEMO_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            sys.stderr.write(
                f"the demo did not stop within {DEMO_STOP_TIMEOUT_S:g} s of SIGINT; killing it\n"
                f"--- demo log (tail) ---\n{demo.log_tail()}\n"
            )
            os.killpg(process.pid, signal.SIGKILL)  # the group start_new_session made
            process.wait(timeout=10)


class Api:
    """The demo's HTTP API as one user (the admin by default)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.client = httpx.Client(base_url=f"{url}/api/v1", timeout=30)
        response = self.client.post(
            "/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, (username, response.status_code, response.text)
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: Any, *, expect_status: int = 201) -> Any:
        response = self.client.post(path, json=body)
        assert response.status_code == expect_status, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def put(self, path: str, body: Any) -> Any:
        response = self.client.put(path, json=body)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def create_user(self, role: str) -> tuple[str, str]:
        """A new user of `role`; returns (username, password)."""
        username = f"bt-{role}-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(18)
        self.post("/users", {"username": username, "password": password, "role": role})
        return username, password

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class Login:
    username: str
    password: str


def log_in(page: Page, *, user: Login, path: str = "/", base_url: str) -> None:
    """Open `path` and log in through the page's form (the dashboard and the dock screen
    share its ids); the form hides once the session starts."""
    page.goto(f"{base_url}{path}")
    expect(page.locator("#login-form")).to_be_visible(timeout=15_000)
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    page.click("#login-submit")
    expect(page.locator("#login-form")).to_be_hidden(timeout=15_000)


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def save_docs_screenshot(path: Path) -> bool:
    """Copy a screenshot to docs/dashboard.png when asked to (TRACKLANE_UPDATE_DOCS_SCREENSHOT=1),
    so the docs image changes on purpose, not on every run."""
    if os.environ.get(UPDATE_DOCS_ENV) != "1":
        return False
    shutil.copyfile(path, DOCS_SCREENSHOT)
    return True


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module", name="demo")
def demo_fixture() -> Iterator[Demo]:
    """One running demo for the whole module (its data in a fresh temporary folder)."""
    for stale in ARTIFACTS.glob("failed-*"):  # a failed earlier run's screenshots and consoles
        stale.unlink()
    work = Path(tempfile.mkdtemp(prefix="tracklane-browser-"))
    running = start_demo(work)
    try:
        yield running
    finally:
        stop_demo(running)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(running.log_path, ARTIFACTS / "browser-demo.log")
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module", name="api")
def api_fixture(demo: Demo) -> Iterator[Api]:
    """The demo's API as its admin."""
    client = Api(demo.url, "admin", demo.password)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module", name="playwright_instance")
def playwright_instance_fixture() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module", name="browser")
def browser_fixture(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless (Playwright's own download is not used)."""
    executable = chromium_path()
    if executable is None:
        pytest.fail(
            "no chromium found for the browser tests: run scripts/setup.sh --browser (or "
            "apt-get install chromium, or set TRACKLANE_CHROMIUM), or deselect them with "
            "-m 'not browser'"
        )
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    launched = playwright_instance.chromium.launch(
        executable_path=executable, headless=True, args=args
    )
    try:
        yield launched
    finally:
        launched.close()


@dataclass
class Pages:
    """Opens pages in fresh browser contexts (own storage, UTC, 24-hour times); on a failed
    test, screenshots them into test-artifacts/ and shows what their consoles said."""

    browser: Browser
    test_name: str
    opened: list[tuple[str, Page]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def new(self, label: str = "page", *, viewport: dict[str, int] | None = None) -> Page:
        context = self.browser.new_context(
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
            timezone_id="UTC",
            locale="en-GB",
        )
        page = context.new_page()
        page.on("console", lambda m: self.console.append(f"[{label}] {m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"[{label}] pageerror: {e}"))
        page.on("dialog", lambda d: d.accept("browser test"))
        self.opened.append((label, page))
        return page

    def close(self, failed: bool) -> None:
        for label, page in self.opened:
            if failed:
                with contextlib.suppress(Exception):
                    screenshot(page, f"failed-{self.test_name}-{label}.png", full_page=True)
            with contextlib.suppress(Exception):
                page.context.close()
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            path = ARTIFACTS / f"failed-{self.test_name}-console.txt"
            path.write_text("\n".join(self.console) + "\n")


@pytest.fixture(name="pages")
def pages_fixture(browser: Browser, demo: Demo, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """Pages for one test. When the test fails: its pages' screenshots and consoles in
    test-artifacts/, and the tail of the demo's log on the terminal (past pytest's capture,
    which would hide a passing teardown's output)."""
    failed_before = request.session.testsfailed
    opener = Pages(browser, re.sub(r"\W+", "-", request.node.name))
    yield opener
    failed = request.session.testsfailed > failed_before
    opener.close(failed=failed)
    if failed:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("-", f"demo log (tail) after {request.node.name} failed")
            reporter.write_line(demo.log_tail(3000))
            reporter.write_line(f"(screenshots and browser consoles: {ARTIFACTS}/failed-*)")
