"""The dispatcher's dashboard and the dock screen in a real browser, against the running demo.

Debian's chromium, headless, driven by Playwright (tests/browser_support.py), on the pages
docs/live-map.md describes, through the DOM hooks the pages promise (ids, `data-*`
attributes). One demo serves the whole module; the tests run in file order because the demo
runs on a clock: the dock screen must be open before the demo's wrong load (a trip-2 pallet
scanned at door-1, about 20 s after the start), the trucks drive once their trips are
loaded (about 25 s), and a trail needs some driving to replay.

Screenshots go to test-artifacts/ (desktop, phone, the red dock screen, and every page of a
failed test); with TRACKLANE_UPDATE_DOCS_SCREENSHOT=1 the desktop one also becomes
docs/dashboard.png.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from event_contract import SCHEMA_VERSION, Batch, encode, event_topic
from event_contract.events import (
    CodeKind,
    DeviceState,
    DeviceStatus,
    PositionEvent,
    ReadPoint,
    ScanEvent,
    new_event_id,
)
from mqtt_client import parse_mqtt_url
from tests.browser_support import (  # noqa: F401 (fixtures are found by name)
    PHONE,
    ROOT,
    Api,
    Demo,
    Login,
    Pages,
    api_fixture,
    browser_fixture,
    demo_fixture,
    log_in,
    pages_fixture,
    playwright_instance_fixture,
    save_docs_screenshot,
    screenshot,
    wait_for,
)
from tests.mqtt_helpers import publish_all

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SITE = "wh1"
WRONG_LOAD_DOOR = "door-1"  # demo_warehouse.py: door-1 loads trip 1; a trip-2 pallet comes by
YARD = (52.0, 4.4)  # the demo's yard (simulators/routes.py DEMO_ROUTE[0])
TABS = ("orders", "exceptions", "docks", "gateways", "replay")
MARKERS_JS = """() => [...document.querySelectorAll('.vehicle-marker')].map(e => ({
    id: e.dataset.vehicleId, status: e.dataset.status, lat: e.dataset.lat, lon: e.dataset.lon}))"""
# Records every change of the dock screen (installed before the page's own scripts run, so
# nothing it shows between two polls is missed): window.__dockLog.
DOCK_RECORDER_JS = """
window.__dockLog = [];
document.addEventListener('DOMContentLoaded', () => {
  const screen = document.getElementById('dock-screen');
  if (!screen) return;
  const text = (id) => (document.getElementById(id) || {}).textContent || '';
  const record = () => window.__dockLog.push({
    t: Date.now(), verdict: screen.dataset.verdict || '', cls: screen.className,
    code: text('dock-code'), order: text('dock-order'), message: text('dock-message')});
  record();
  new MutationObserver(record).observe(screen,
    {attributes: true, childList: true, subtree: true, characterData: true});
});
"""


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    return math.hypot((a[0] - b[0]) * 111_320, (a[1] - b[1]) * 111_320 * math.cos(lat))


def iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def clock_texts(at: datetime, slack_min: int = 2) -> set[str]:
    """How a page may write `at` (UTC, 24-hour) give or take `slack_min` minutes."""
    out = set()
    for delta in range(-slack_min, slack_min + 1):
        t = at + timedelta(minutes=delta)
        out |= {t.strftime("%H:%M"), f"{t.hour}:{t.minute:02d}"}
    return out


@pytest.fixture(scope="module")
def users(api: Api) -> dict[str, Login]:
    """A dispatcher (the dashboard's user) and a dock worker (the dock screen's)."""
    return {role: Login(*api.create_user(role)) for role in ("dispatcher", "dock")}


def dashboard(pages: Pages, demo: Demo, user: Login, **kw: Any) -> Page:
    page = pages.new(kw.pop("label", "dashboard"), **kw)
    log_in(page, user=user, base_url=demo.url)
    expect(page.locator("#app")).to_be_visible(timeout=15_000)
    return page


def open_tab(page: Page, tab: str) -> None:
    page.click(f"[data-tab={tab}]")
    expect(page.locator(f"#{tab}-panel")).to_be_visible(timeout=10_000)


def markers(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(MARKERS_JS)


def marker_position(page: Page, vehicle: str) -> tuple[float, float] | None:
    found = [m for m in markers(page) if m["id"] == vehicle]
    if not found or not found[0]["lat"] or not found[0]["lon"]:
        return None
    return float(found[0]["lat"]), float(found[0]["lon"])


def no_script_ran(page: Page) -> None:
    """No hostile text became markup: no handler ran, no injected element exists."""
    assert page.evaluate("() => typeof window.__xss") == "undefined", "a hostile text ran"
    injected = page.evaluate(
        """() => [...document.querySelectorAll('*')].filter(e =>
               [...e.attributes].some(a => a.name.startsWith('on'))
               || (e.tagName === 'IMG' && e.getAttribute('src') === 'x')
               || (e.tagName === 'SCRIPT' && /__xss/.test(e.textContent)))
             .map(e => e.outerHTML)"""
    )
    assert injected == [], f"hostile text was parsed as HTML: {injected}"


# ---- the tests, in the order the demo's clock wants ---------------------------------------


def test_dock_screen_turns_red_on_the_demos_wrong_load(
    demo: Demo, api: Api, users: dict[str, Login], pages: Pages
) -> None:
    door = f"{SITE}/{WRONG_LOAD_DOOR}"

    def wrong_loads() -> list[dict[str, Any]]:
        recent = api.get(f"/docks/{door}", recent=100)["recent"]
        return [o for o in recent if o["verdict"] == "wrong_truck"]

    before = {o["event_id"] for o in wrong_loads()}
    page = pages.new("dock")
    page.add_init_script(DOCK_RECORDER_JS)
    opened_at = datetime.now(UTC)
    log_in(page, user=users["dock"], path=f"/dock.html?site={SITE}&door={WRONG_LOAD_DOOR}",
           base_url=demo.url)  # fmt: skip
    screen = page.locator("#dock-screen")
    expect(screen).to_be_visible(timeout=10_000)

    # The demo's wrong load (or, had the screen opened too late, the next wave's), decided
    # after the screen was opened; the screen must show it: red, its code and its order.
    def shown() -> tuple[dict[str, Any], dict[str, Any]] | None:
        log = page.evaluate("() => window.__dockLog || []")
        for outcome in wrong_loads():
            if outcome["event_id"] in before or iso(outcome["decided_at"]) < opened_at:
                continue
            for entry in log:
                if (
                    entry["verdict"] == "wrong_truck"
                    and "verdict-bad" in entry["cls"].split()
                    and outcome["package_sscc"]
                    and outcome["package_sscc"] in entry["code"]
                ):
                    return outcome, entry
            decided = iso(outcome["decided_at"])
            assert datetime.now(UTC) - decided < timedelta(seconds=15), (
                f"the API has the wrong load {outcome} at {door}, but the dock screen did not "
                f"show it within 15 s; what the screen showed: {log[-8:]}"
            )
        return None

    outcome, entry = wait_for(
        shown,
        timeout=200,  # the next wave's wrong load comes about 2 min 45 s after the first
        what=f"the demo's wrong load at {door} to turn the open dock screen red",
        log=demo.log_tail,
    )
    assert entry["message"].strip(), "the dock screen says what is wrong"
    if outcome["order_number"]:
        assert outcome["order_number"] in entry["order"], (outcome, entry)
    # The screen holds the verdict long enough to be seen (and photographed).
    expect(screen).to_have_class(re.compile(r"\bverdict-bad\b"), timeout=2_000)
    screenshot(page, "dock-screen-wrong-load.png")


def test_login_refuses_a_wrong_password_then_logs_in(demo: Demo, pages: Pages) -> None:
    page = pages.new("login")
    page.goto(f"{demo.url}/")
    expect(page.locator("#login-form")).to_be_visible(timeout=15_000)
    expect(page.locator("#app")).to_be_hidden()
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password-" + secrets.token_hex(4))
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_be_visible(timeout=10_000)
    expect(page.locator("#login-error")).not_to_have_text(re.compile(r"^\s*$"))
    expect(page.locator("#app")).to_be_hidden()

    page.fill("#password", demo.password)
    page.click("#login-submit")
    expect(page.locator("#app")).to_be_visible(timeout=15_000)
    expect(page.locator("#login-form")).to_be_hidden()
    expect(page.locator("#map")).to_be_visible()
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=15_000)


def test_vehicles_move_on_the_map(
    demo: Demo, api: Api, users: dict[str, Login], pages: Pages
) -> None:
    page = dashboard(pages, demo, users["dispatcher"])
    wait_for(
        lambda: {"truck-1", "truck-2"} <= {m["id"] for m in markers(page)},
        timeout=30,
        what="markers (.vehicle-marker) for truck-1 and truck-2 on the map",
    )

    # The trucks stand in the yard until their trips are loaded (within the first minute).
    def driving() -> str | None:
        for f in api.get("/map/vehicles")["features"]:
            p = f["properties"]
            if p["trip_state"] == "departed" and p["status"] == "moving":
                return p["vehicle_id"]
        return None

    vehicle = wait_for(
        driving, timeout=120, what="a truck driving its trip (API)", every=1, log=demo.log_tail
    )
    expect(page.locator(f'.vehicle-marker[data-vehicle-id="{vehicle}"]')).to_have_attribute(
        "data-status",
        "moving",
        timeout=20_000,  # unless it stands at a stop just then
    )
    first = marker_position(page, vehicle)
    assert first is not None and metres(first, YARD) < 5_000, f"{vehicle} at {first}"
    read_at = time.monotonic()
    # Moved on the road, not GPS jitter (a parked receiver wanders a few metres): a second
    # read some seconds later, at least 20 m away (a truck does 18 m/s; stops last ~5 s).
    second = wait_for(
        lambda: (
            time.monotonic() - read_at > 3
            and (p := marker_position(page, vehicle))
            and metres(first, p) > 20
            and p
        ),
        timeout=25,
        what=f"{vehicle}'s marker (data-lat/data-lon) to move 20 m from {first}",
    )
    # The marker is where the API says the vehicle is (allowing for a few seconds of lag).
    features = api.get("/map/vehicles")["features"]
    now = next(f for f in features if f["properties"]["vehicle_id"] == vehicle)
    lon, lat = now["geometry"]["coordinates"]
    assert metres(marker_position(page, vehicle) or second, (lat, lon)) < 150


def test_clicking_a_vehicle_shows_its_loads_and_eta(
    demo: Demo, api: Api, users: dict[str, Login], pages: Pages
) -> None:
    def loaded_vehicle() -> dict[str, Any] | None:
        for f in api.get("/map/vehicles")["features"]:
            p = f["properties"]
            if p.get("loads") and p.get("next_stop"):
                return p
        return None

    vehicle = wait_for(
        loaded_vehicle, timeout=90, what="a vehicle driving with loads on board (API)", every=1
    )["vehicle_id"]
    page = dashboard(pages, demo, users["dispatcher"])
    marker = page.locator(f'.vehicle-marker[data-vehicle-id="{vehicle}"]')
    expect(marker).to_be_visible(timeout=20_000)
    marker.click(timeout=10_000)
    panel = page.locator("#vehicle-panel")
    expect(panel).to_be_visible(timeout=10_000)
    rows = panel.locator("[data-testid=vehicle-loads] [data-order-number]")
    expect(rows.first).to_be_visible(timeout=10_000)

    def loads_match() -> bool | str:
        trip = api.get(f"/map/vehicles/{vehicle}").get("trip") or {}
        states = {o["number"]: o["state"] for o in trip.get("orders") or []}
        shown = {
            r.get_attribute("data-order-number"): r.locator("[data-field=state]").inner_text()
            for r in rows.all()
        }
        if not shown or not set(shown) <= set(states):
            return False
        return all(states[n] in text.replace(" ", "_") or states[n].replace("_", " ") in text
                   for n, text in shown.items())  # fmt: skip

    wait_for(
        loads_match,
        timeout=15,
        what=f"#vehicle-panel's loads to be {vehicle}'s orders with their states (API)",
    )

    eta = panel.locator("[data-testid=vehicle-eta]")

    def eta_matches() -> bool:
        text = eta.inner_text()
        nxt = api.get("/map/vehicles")["features"]
        props = next(f["properties"] for f in nxt if f["properties"]["vehicle_id"] == vehicle)
        stop = props.get("next_stop") or {}
        if not stop.get("eta"):
            return "no ETA" in text
        return any(c in text for c in clock_texts(iso(stop["eta"]), slack_min=1))

    wait_for(eta_matches, timeout=15, what=f"[data-testid=vehicle-eta] to show {vehicle}'s ETA")
    shot = screenshot(page, "dashboard-desktop.png")
    save_docs_screenshot(shot)


def test_acknowledging_an_exception(
    demo: Demo, api: Api, users: dict[str, Login], pages: Pages
) -> None:
    found = wait_for(
        lambda: api.get("/exceptions", kind="wrong_load", status="open")["items"],
        timeout=60,
        what="an open wrong_load exception from the demo (API)",
    )
    exception = found[-1]
    page = dashboard(pages, demo, users["dispatcher"])
    open_tab(page, "exceptions")
    row = page.locator(f'#exceptions-panel [data-exception-id="{exception["id"]}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_have_attribute("data-kind", "wrong_load")
    expect(row.locator("[data-field=status]")).to_have_text(re.compile("open", re.I))
    expect(row.locator("[data-field=summary]")).to_contain_text(exception["summary"])
    row.locator("button[data-action=acknowledge]").click()
    expect(row.locator("[data-field=status]")).to_have_text(
        re.compile("acknowledged", re.I), timeout=10_000
    )
    after = api.get(f"/exceptions/{exception['id']}")
    assert after["status"] == "acknowledged", after
    assert after["owner"] == users["dispatcher"].username, after


def test_replaying_a_trail(demo: Demo, api: Api, users: dict[str, Login], pages: Pages) -> None:
    vehicle = "truck-1"
    start = demo.started_at - timedelta(minutes=1)

    def trail() -> dict[str, Any] | None:
        now = datetime.now(UTC) + timedelta(minutes=1)
        feature = api.get(
            f"/map/vehicles/{vehicle}/trail", **{"from": start.isoformat(), "to": now.isoformat()}
        )
        coords = feature["geometry"]["coordinates"]
        spread = metres(tuple(coords[0][::-1]), tuple(coords[-1][::-1])) if coords else 0
        return feature if spread > 100 else None

    wait_for(trail, timeout=90, what=f"{vehicle} to have driven 100 m (API trail)", every=1)
    page = dashboard(pages, demo, users["dispatcher"])
    open_tab(page, "replay")
    page.select_option("#replay-vehicle", vehicle)
    page.fill("#replay-from", start.strftime("%Y-%m-%dT%H:%M"))  # the page's clock is UTC
    page.fill("#replay-to", (datetime.now(UTC) + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M"))
    page.click("#replay-load")
    replay = page.locator(".replay-marker")
    expect(replay.first).to_be_attached(timeout=15_000)
    loaded = trail() or {}  # what the page loaded, give or take a fix or two
    coords, times = loaded["geometry"]["coordinates"], loaded["properties"]["times"]
    slider = page.locator("#replay-slider")
    low, high = wait_for(
        lambda: (r := slider.evaluate("e => [e.min, e.max]")) and float(r[1]) > float(r[0]) and r,
        timeout=10,
        what="#replay-slider to span the loaded trail (max > min)",
    )

    def seen() -> tuple[tuple[float, float], str]:
        lat, lon = replay.first.get_attribute("data-lat"), replay.first.get_attribute("data-lon")
        assert lat and lon, "the replay marker has data-lat and data-lon"
        return (float(lat), float(lon)), page.locator("#replay-time").inner_text()

    slider.fill(low)
    at_start = wait_for(lambda: seen()[1].strip() and seen(), timeout=5, what="#replay-time")
    slider.fill(high)
    at_end = wait_for(
        lambda: (s := seen()) != at_start and s[0] != at_start[0] and s[1] != at_start[1] and s,
        timeout=10,
        what=f"the replay marker and #replay-time to change from {at_start} with the slider",
    )
    # Play runs the slider forward from the start.
    slider.fill(low)
    page.click("#replay-play")
    wait_for(
        lambda: float(slider.input_value()) > float(low),
        timeout=10,
        what="#replay-slider to advance after #replay-play",
    )
    # The trail starts in the yard, at its first fix's time, and ends where the truck had
    # driven to.
    assert metres(at_start[0], YARD) < 200, at_start
    assert any(c in at_start[1] for c in clock_texts(iso(times[0]), slack_min=1)), (
        at_start,
        times[0],
    )
    assert metres(at_start[0], at_end[0]) > 50, (at_start, at_end)
    assert metres(at_end[0], (coords[-1][1], coords[-1][0])) < 300, (at_end, coords[-1])


def test_docks_and_orders_panels(
    demo: Demo, api: Api, users: dict[str, Login], pages: Pages
) -> None:
    wrong = wait_for(
        lambda: [
            o
            for o in api.get(f"/docks/{SITE}/{WRONG_LOAD_DOOR}", recent=100)["recent"]
            if o["verdict"] == "wrong_truck"
        ],
        timeout=60,
        what="the wrong load at door-1 (API)",
    )[0]
    page = dashboard(pages, demo, users["dispatcher"])
    open_tab(page, "docks")
    door = page.locator(f'#docks-panel [data-door="{SITE}/{WRONG_LOAD_DOOR}"]')
    expect(door).to_be_visible(timeout=10_000)
    expect(door.locator('[data-verdict="wrong_truck"]').first).to_be_attached(timeout=10_000)

    open_tab(page, "orders")
    number = wrong["order_number"]
    page.fill("#order-search", number)
    row = page.locator(f'#orders-panel [data-order-number="{number}"]')
    expect(row.first).to_be_visible(timeout=10_000)
    state = api.get(f"/orders/{number}")["state"]
    expect(row.first.locator("[data-field=state]")).to_contain_text(
        re.compile(f"{state}|{state.replace('_', ' ')}", re.I), timeout=10_000
    )
    # The state filter: only orders in the chosen state (the search cleared).
    page.fill("#order-search", "")
    page.select_option("#order-state", "delivered")
    rows = page.locator("#orders-panel [data-order-number]")
    expect(rows.first).to_be_visible(timeout=10_000)  # the first wave is delivered by now
    wait_for(
        lambda: all(
            re.search("delivered", t, re.I)
            for t in rows.locator("[data-field=state]").all_inner_texts()
        ),
        timeout=10,
        what="#order-state=delivered to leave only delivered orders",
    )


HOSTILE_NAME = '<img src=x onerror="window.__xss=1"> Trojan truck'
HOSTILE_SUMMARY = '<script>window.__xss=2</script><img src=x onerror="window.__xss=3">'
HOSTILE_CODE = '<img src=x onerror="window.__xss=4">'
HOSTILE_DETAIL = '<script>window.__xss=5</script><b onmouseover="window.__xss=6">bold</b>'


def provision_gateway(demo: Demo, name: str) -> str:
    """A new gateway login on the demo's broker (`tracklane gateway provision`): its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    env["TRACKLANE_DATA_DIR"] = str(demo.data_dir)
    out = subprocess.run(
        [sys.executable, "-m", "tracklane", "gateway", "provision", name, "--site", SITE,
         "--broker-url", demo.broker_url],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return re.search(r"^mqtt_url: (\S+)$", out, re.M)[1]  # type: ignore[index]


def publish(url: str, gateway: str, kind: str, *events: Any) -> None:
    batch = Batch(
        schema_version=SCHEMA_VERSION,
        site=SITE,
        gateway=gateway,
        sent_at=datetime.now(UTC),
        events=list(events),
    )
    publish_all(parse_mqtt_url(url), [(event_topic(SITE, gateway, kind), encode(batch))])  # type: ignore[arg-type]


def test_device_and_user_text_never_runs_as_script(
    demo: Demo, api: Api, users: dict[str, Login], pages: Pages
) -> None:
    tag = secrets.token_hex(3)
    vehicle, gateway, door = f"xss-{tag}", f"xss-gw-{tag}", f"door-x{tag}"
    # Text people type (a vehicle's name, an exception's summary) ...
    api.post("/vehicles", {"id": vehicle, "name": HOSTILE_NAME})
    exception = api.post(
        "/exceptions", {"kind": "other", "summary": HOSTILE_SUMMARY, "vehicle": vehicle}
    )
    # ... and text devices send (a barcode, a status detail; device and gateway names are
    # restricted to letters, digits and _.- by the event contract, so they cannot be hostile).
    url = provision_gateway(demo, gateway)
    api.put(f"/trackers/{SITE}/{gateway}/xss-gps", {"vehicle": vehicle})
    dock = pages.new("dock-xss")
    log_in(dock, user=users["dock"], path=f"/dock.html?site={SITE}&door={door}",
           base_url=demo.url)  # fmt: skip
    expect(dock.locator("#dock-screen")).to_be_visible(timeout=10_000)
    page = dashboard(pages, demo, users["dispatcher"])
    # Both pages live (subscribed) before the devices speak, so that what they send arrives
    # over the stream rather than racing the pages' first REST reads.
    for p in (dock, page):
        expect(p.locator("#live-status")).to_have_attribute("data-state", "live", timeout=15_000)

    now = datetime.now(UTC)
    near_yard = (YARD[0] + 0.0012, YARD[1] - 0.0012)
    common = {"received_at": now, "device_time": now, "seq": 1}
    publish(url, gateway, "positions", PositionEvent(
        event_id=new_event_id(), device="xss-gps", lat=near_yard[0], lon=near_yard[1],
        speed_mps=0.0, hdop=0.9, satellites=9, **common,
    ))  # fmt: skip
    publish(url, gateway, "status", DeviceStatus(
        event_id=new_event_id(), device="xss-scanner", state=DeviceState.DEGRADED,
        detail=HOSTILE_DETAIL, **common,
    ))  # fmt: skip
    publish(url, gateway, "scans", ScanEvent(
        event_id=new_event_id(), device="xss-scanner", code=HOSTILE_CODE,
        code_kind=CodeKind.BARCODE, read_point=ReadPoint(site=SITE, door=door),
        **{**common, "seq": 2},
    ))  # fmt: skip

    # The dock screen shows the scanned code as text.
    expect(dock.locator("#dock-code")).to_contain_text(HOSTILE_CODE, timeout=15_000)
    # The dashboard: the vehicle's name, the exception's summary, the gateway's device.
    marker = page.locator(f'.vehicle-marker[data-vehicle-id="{vehicle}"]')
    expect(marker).to_be_visible(timeout=20_000)
    marker.hover()  # its tooltip, if any, carries the name
    marker.click(timeout=10_000)
    expect(page.locator("#vehicle-panel")).to_contain_text(HOSTILE_NAME, timeout=10_000)
    open_tab(page, "exceptions")
    row = page.locator(f'#exceptions-panel [data-exception-id="{exception["id"]}"]')
    expect(row.locator("[data-field=summary]")).to_have_text(HOSTILE_SUMMARY, timeout=10_000)
    open_tab(page, "replay")
    option = page.locator(f'#replay-vehicle option[value="{vehicle}"]')
    expect(option).to_contain_text(HOSTILE_NAME, timeout=10_000)
    open_tab(page, "gateways")
    gw = page.locator(f'#gateways-panel [data-gateway*="{gateway}"]').filter(
        has=page.locator("[data-field=device]", has_text="xss-scanner")
    )
    try:
        expect(gw.first).to_be_visible(timeout=15_000)
    except AssertionError as err:
        stored = api.get("/devices/status", gateway=gateway)
        state = page.locator("#live-status").get_attribute("data-state")
        raise AssertionError(
            f"no #gateways-panel row for {gateway}/xss-scanner; the API has {stored}; the page's"
            f" #live-status is {state!r}"
        ) from err
    expect(gw.first.locator("[data-field=state]")).to_contain_text("degraded")
    expect(gw.first).to_contain_text(HOSTILE_DETAIL)  # why it is degraded, as sent
    gw.first.hover()  # an injected onmouseover would fire now
    for p in (dock, page):
        no_script_ran(p)
    # Nothing even tried: the Content-Security-Policy reports every inline script it blocks.
    blocked = [m for m in pages.console if "Content Security Policy" in m]
    assert blocked == [], f"inline script was attempted (blocked by the CSP): {blocked}"


def test_phone_viewport_fits_without_horizontal_scrolling(
    demo: Demo, users: dict[str, Login], pages: Pages
) -> None:
    page = dashboard(pages, demo, users["dispatcher"], label="phone", viewport=PHONE)
    expect(page.locator("#map")).to_be_visible()
    for tab in TABS:
        expect(page.locator(f"[data-tab={tab}]")).to_be_visible()
    width = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
    open_tab(page, "exceptions")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"with the exceptions open, {width} px wide"
    screenshot(page, "dashboard-phone.png")


def test_the_mail_page_shows_each_customers_mail_and_its_tracking_link_opens(
    demo: Demo, users: dict[str, Login], pages: Pages
) -> None:
    page = pages.new("mail")
    log_in(page, user=users["dispatcher"], path="/mail.html", base_url=demo.url)
    # By now the first wave's orders are confirmed and dispatched: six inboxes.
    expect(page.locator(".inbox")).to_have_count(6, timeout=30_000)
    dispatched = page.locator(".inbox li[data-event=dispatched]")
    expect(dispatched.first).to_be_visible(timeout=60_000)
    inbox = page.locator(".inbox", has=page.locator("li[data-event=dispatched]")).first
    customer = inbox.locator("h2").inner_text()
    assert customer.endswith(".example"), customer
    link = dispatched.first.locator("a.tracking-link")
    number = link.inner_text().removeprefix("Tracking page for ")
    assert re.fullmatch(r"SO-\S+", number), number
    with page.context.expect_page() as opened:
        link.click()
    tracking = opened.value
    expect(tracking.locator("body")).to_contain_text(number, timeout=15_000)
    assert re.search(r"/t/[A-Za-z0-9_-]{32}$", tracking.url), tracking.url
    screenshot(page, "mail-page.png")


def test_the_analytics_page_shows_the_demos_day(
    demo: Demo, users: dict[str, Login], pages: Pages
) -> None:
    """By now the first wave is packed, loaded and out: the page draws today's stage times,
    the doors' scans per hour and the exceptions (at least the wave's wrong load)."""
    page = pages.new("analytics")
    log_in(page, user=users["dispatcher"], path="/analytics.html", base_url=demo.url)
    for chart in ("stages", "throughput", "exceptions"):
        expect(page.locator(f'[data-chart="{chart}"] svg')).to_be_visible(timeout=20_000)
    expect(page.locator('[data-chart="throughput"] text.label')).not_to_have_count(0)
    expect(page.locator('[data-chart="exceptions"]')).to_contain_text("wrong load")
    screenshot(page, "analytics-demo.png")
