"""The dashboard as the API serves it: pages, modules and the vendored map library with the
right types, a public config.json, security headers that forbid inline script, and no
HTML-parsing DOM call anywhere in the static files (device text is only ever textContent).

No browser and no database: the app is built but its lifespan never runs, and nothing here
needs the pool. The browser tests (Playwright) live elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from dashboard import STATIC_DIR, content_security_policy
from ingest_service.api import create_app
from ingest_service.auth import route_table
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode

SECRET = "test-only-session-key-0123456789abcdef"
MODE = StorageMode("postgresql", "16.4", None, "timescaledb extension not available")
TILES = "https://{s}.tiles.example.org/{z}/{x}/{y}.png"


def _app(**settings: object) -> FastAPI:
    return create_app(
        settings=Settings(secret_key=SECRET, _env_file=None, **settings),  # type: ignore[arg-type]
        # Never connected to: the lifespan (which opens the pool) does not run in these tests.
        database_url="postgresql://nobody@127.0.0.1:1/none",
        storage_mode=MODE,
    )


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(
        _app(map_tile_url=TILES, map_tile_attribution="&copy; <b>Example</b> maps"),
        raise_server_exceptions=False,
    )


def _csp(response) -> dict[str, list[str]]:
    policy = response.headers["content-security-policy"]
    directives = [d.strip().split() for d in policy.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/", "text/html", 'id="login-form"'),
        ("/index.html", "text/html", 'id="map"'),
        ("/dock.html", "text/html", 'id="dock-screen"'),
        ("/mail.html", "text/html", 'id="inboxes"'),
        ("/analytics.html", "text/html", 'id="login-form"'),
        ("/js/app.js", "javascript", "setupLogin"),
        ("/js/dock.js", "javascript", "isGoodVerdict"),
        ("/css/app.css", "text/css", ".vehicle-marker"),
        ("/vendor/leaflet/leaflet.js", "javascript", "Leaflet"),
        ("/vendor/leaflet/leaflet.css", "text/css", ".leaflet-"),
        ("/vendor/markercluster/leaflet.markercluster.js", "javascript", "MarkerClusterGroup"),
        ("/vendor/markercluster/MarkerCluster.css", "text/css", ".leaflet-cluster-anim"),
        ("/vendor/markercluster/MarkerCluster.Default.css", "text/css", ".marker-cluster"),
    ],
)
def test_pages_modules_and_vendor_files_are_served_with_their_types(
    client: TestClient, path: str, content_type: str, marker: str
) -> None:
    r = client.get(path)
    assert r.status_code == 200, (path, r.text[:200])
    assert content_type in r.headers["content-type"], (path, r.headers["content-type"])
    assert marker in r.text
    assert r.headers["x-content-type-options"] == "nosniff"


def test_leaflet_images_come_from_the_wheel(client: TestClient) -> None:
    r = client.get("/vendor/leaflet/images/layers.png")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"


def test_every_module_and_stylesheet_a_page_loads_exists(client: TestClient) -> None:
    """A typo in an import path breaks a page only in the browser; catch it here."""
    pending = ["/index.html", "/dock.html", "/mail.html", "/analytics.html"]
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        r = client.get(path)
        assert r.status_code == 200, f"{path} is referenced but not served"
        if path.endswith(".html"):
            refs = re.findall(r'(?:src|href)="(/[^"]+)"', r.text)
        elif path.endswith(".css"):
            refs = re.findall(r'@import url\("([^"]+)"\)', r.text)
        else:
            refs = re.findall(r'^\s*import\b[^"\']*["\']([^"\']+)["\']', r.text, re.MULTILINE)
        base = path.rsplit("/", 1)[0] + "/"
        for ref in refs:
            target = ref if ref.startswith("/") else _join(base, ref)
            if not target.startswith("/vendor/"):
                pending.append(target)
    assert "/js/dom.js" in seen
    assert "/js/live.js" in seen
    assert "/css/base.css" in seen


def _join(base: str, ref: str) -> str:
    parts = [p for p in base.split("/") if p]
    for piece in ref.split("/"):
        if piece == "..":
            parts.pop()
        elif piece not in (".", ""):
            parts.append(piece)
    return "/" + "/".join(parts)


def test_config_is_public_and_carries_the_tile_settings(client: TestClient) -> None:
    r = client.get("/dashboard/config.json")  # no Authorization header
    assert r.status_code == 200
    assert r.json() == {"tile_url": TILES, "tile_attribution": "© Example maps"}
    r = TestClient(_app(map_tile_url="")).get("/dashboard/config.json")
    assert r.json()["tile_url"] == ""


def test_csp_forbids_inline_script_and_framing(client: TestClient) -> None:
    for path in ("/", "/dock.html", "/js/app.js", "/dashboard/config.json"):
        r = client.get(path)
        csp = _csp(r)
        assert csp["script-src"] == ["'self'"], path
        assert "'unsafe-inline'" not in r.headers["content-security-policy"]
        assert "'unsafe-eval'" not in r.headers["content-security-policy"]
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["connect-src"] == ["'self'"]
        assert csp["img-src"] == ["'self'", "data:", "https://*.tiles.example.org"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_without_tiles_images_come_from_here_only() -> None:
    r = TestClient(_app(map_tile_url="")).get("/")
    assert _csp(r)["img-src"] == ["'self'", "data:"]


@pytest.mark.parametrize(
    ("tile_url", "source"),
    [
        ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
        ("https://{s}.tile.example.com:8443/{z}/{x}/{y}.png", "https://*.tile.example.com:8443"),
        ("/tiles/{z}/{x}/{y}.png", None),
        ("https://tiles-{s}.example.com/{z}.png", "https://*.example.com"),
        ("https://a.{s}.example.com/{z}.png", "https:"),
    ],
)
def test_img_src_names_the_tile_server(tile_url: str, source: str | None) -> None:
    images = next(
        d for d in content_security_policy(tile_url).split("; ") if d.startswith("img-src ")
    )
    assert images == "img-src 'self' data:" + (f" {source}" if source else "")


def test_pages_have_no_inline_script_or_handlers() -> None:
    for page in STATIC_DIR.glob("*.html"):
        text = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"{page.name}: inline script {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{page.name}: inline event handler"
        assert "javascript:" not in text


# HTML-parsing sinks: device text (names, barcodes, messages) must never reach one.
FORBIDDEN = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(")
# Leaflet parses a string popup or tooltip as HTML: pass DOM elements only.
STRING_POPUP = re.compile(r"\.(bindPopup|bindTooltip|setContent)\(\s*[\"'`]")


def _static_sources() -> list[Path]:
    files = [p for p in STATIC_DIR.rglob("*") if p.suffix in {".js", ".html", ".mjs"}]
    assert len(files) >= 10, "the dashboard's sources went missing"
    return files


def test_no_static_file_parses_strings_as_html() -> None:
    offences = []
    for path in _static_sources():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FORBIDDEN.search(line) or STRING_POPUP.search(line) or "bindPopup(" in line:
                offences.append(f"{path.relative_to(STATIC_DIR)}:{number}: {line.strip()}")
    assert not offences, "use dom.js el()/textContent instead:\n" + "\n".join(offences)


def test_the_grep_would_catch_an_offence() -> None:
    assert FORBIDDEN.search("node.innerHTML = name")
    assert FORBIDDEN.search("row.insertAdjacentHTML('beforeend', html)")
    assert STRING_POPUP.search("marker.bindTooltip(`<b>${name}</b>`)")
    assert not STRING_POPUP.search("marker.bindTooltip(el('span', {}, name))")


def test_the_api_is_still_guarded_and_answers_problems(client: TestClient) -> None:
    assert not any(path.startswith("/dashboard") for _, path in route_table(client.app))
    r = client.get("/api/v1/orders")
    assert r.status_code == 401
    assert "Authorization: Bearer" in r.json()["detail"]
    r = client.get("/api/v1/no-such-route")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/no-such-page.html").status_code == 404


def test_a_websocket_to_a_path_the_api_does_not_serve_is_refused(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/api/v1/no-such-socket"):
        pass
