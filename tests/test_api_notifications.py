"""Notification administration through the API: who may call what, the template preview,
customer channel preferences and the webhook secret, the delivery log and retrying."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_api_exceptions import login
from tests.test_api_orders import make_client, order

API = "/api/v1"
PREFS = f"{API}/customers/C-1/notifications"
OFF = {"email": False, "sms": False, "webhook": False, "chat": False}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    assert c.post(f"{API}/orders", json=order("SO-1", qty=1)).status_code == 201
    yield c
    c.__exit__(None, None, None)


def db(database_url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def test_each_route_admits_exactly_its_roles(client: TestClient) -> None:
    dispatcher, viewer = login(client, "dispatcher"), login(client, "viewer")
    reads = [f"{API}/notifications", PREFS, f"{API}/orders/SO-1/notifications"]
    admin_only = [
        ("GET", f"{API}/notifications/preview?event=confirmed"),
        ("PUT", PREFS),
        ("POST", f"{API}/customers/C-1/webhook-secret"),
        ("POST", f"{API}/notifications/1/retry"),
    ]
    anonymous = {"Authorization": ""}
    for path in reads:
        assert client.get(path, headers=dispatcher).status_code == 200, path
        assert client.get(path, headers=viewer).status_code == 403, path
        assert client.get(path, headers=anonymous).status_code == 401, path
    for method, path in admin_only:
        body = {"channels": OFF} if method == "PUT" else None
        r = client.request(method, path, headers=dispatcher, json=body)
        assert r.status_code == 403, path
        assert "needs role admin" in r.json()["detail"]
        assert client.request(method, path, headers=anonymous).status_code == 401, path
    roles = client.get("/openapi.json").json()["paths"][f"{API}/customers/{{ref}}/notifications"]
    assert roles["get"]["x-roles"] == ["admin", "dispatcher"]
    assert roles["put"]["x-roles"] == ["admin"]


@pytest.mark.parametrize(
    ("locale", "subject"),
    [
        ("en", "New delivery time for order SO-1001: around Sun 22 Nov, 09:40"),
        ("zh-CN", "订单 SO-1001 预计送达时间已更新：约 11月22日 周日 09:40"),  # noqa: RUF001
    ],
)
def test_the_preview_renders_an_event_in_each_locale(
    client: TestClient, locale: str, subject: str
) -> None:
    r = client.get(f"{API}/notifications/preview", params={"event": "eta_moved", "locale": locale})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["subject"] == subject
    assert "SO-1001" in preview["text"]
    assert f'<html lang="{locale}">' in preview["html"]
    assert "/t/preview-only-not-a-real-link" in preview["text"]


def test_the_html_preview_is_served_under_a_csp_that_runs_nothing(client: TestClient) -> None:
    r = client.get(
        f"{API}/notifications/preview",
        params={"event": "exception", "reason": "short_load", "format": "html", "locale": "en"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.text.startswith("<!doctype html>")
    assert "will follow in a later delivery" in r.text


def test_the_preview_of_an_unknown_event_lists_the_known_ones(client: TestClient) -> None:
    r = client.get(f"{API}/notifications/preview", params={"event": "lost"})
    assert r.status_code == 422
    for event in ("confirmed", "eta_moved", "exception", "delayed"):
        assert f"'{event}'" in r.json()["detail"]
    bad_zone = client.get(
        f"{API}/notifications/preview", params={"event": "confirmed", "time_zone": "Mars/Base"}
    )
    assert bad_zone.status_code == 422 and "IANA time zone" in bad_zone.json()["detail"]


def test_preferences_round_trip_and_the_chat_url_is_never_shown(
    client: TestClient, database_url: str
) -> None:
    db(database_url, "UPDATE customers SET phone = '+49 151 1234 5678' WHERE ref = 'C-1'")
    first = client.get(PREFS).json()
    assert first["channels"] == {"email": True, "sms": False, "webhook": False, "chat": False}
    assert (first["locale"], first["time_zone"], first["quiet_hours"]) == ("en", "UTC", None)
    assert first["chat_url_set"] is False and first["webhook_secret_set"] is False
    wanted = {
        "channels": {"email": True, "sms": True, "webhook": False, "chat": True},
        "events": {"sms": ["arriving", "eta_moved", "arriving"], "chat": ["exception"]},
        "locale": "zh-CN",
        "time_zone": "Asia/Shanghai",
        "quiet_hours": {"start": "22:00", "end": "07:00"},
        "chat_url": "tgram://123456789:AAH-bot-token/987654321",
    }
    r = client.put(PREFS, json=wanted)
    assert r.status_code == 200, r.text
    assert r.json()["webhook_secret"] is None
    got = client.get(PREFS).json()
    assert got["channels"] == wanted["channels"]
    assert got["events"] == {"sms": ["arriving", "eta_moved"], "chat": ["exception"]}
    assert (got["locale"], got["time_zone"]) == ("zh-CN", "Asia/Shanghai")
    assert got["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert got["chat_url_set"] is True and "chat_url" not in got
    assert "AAH-bot-token" not in client.get(PREFS).text
    # What the sender reads: the stored columns and the channels the outbox trigger picks.
    assert db(
        database_url,
        "SELECT quiet_start::text, quiet_end::text, chat_url,"
        " notification_channels(c, 'arriving'), notification_channels(c, 'delivered')"
        " FROM customers c WHERE ref = 'C-1'",
    ) == [
        (
            "22:00:00",
            "07:00:00",
            "tgram://123456789:AAH-bot-token/987654321",
            ["email", "sms"],
            ["email"],
        )
    ]
    # A round trip of what GET shows keeps the chat URL (it is write only); null removes it.
    shown = {k: got[k] for k in ("channels", "events", "locale", "time_zone", "quiet_hours")}
    assert client.put(PREFS, json=shown).json()["chat_url_set"] is True
    off = {**shown, "channels": {**shown["channels"], "chat": False}, "chat_url": None}
    assert client.put(PREFS, json=off).json()["chat_url_set"] is False


REFUSED = [
    ({"channels": {**OFF, "sms": True}}, "sms is on but customer 'C-1' has no phone number"),
    ({"channels": {**OFF, "webhook": True}}, "webhook is on: set webhook_url"),
    ({"channels": {**OFF, "chat": True}}, "chat is on: set chat_url"),
    ({"chat_url": "nosuch://x"}, "chat_url: Apprise has no service called nosuch://"),
    ({"chat_url": "tgram://"}, "chat_url: the tgram:// URL is malformed"),
    ({"webhook_url": "ftp://example.com/x"}, "webhook_url: webhook URL must start with"),
    ({"webhook_url": "https://10.0.0.5/hook"}, "an admin can allow private destinations"),
    ({"time_zone": "Europe/Nowhere"}, "'Europe/Nowhere' is not an IANA time zone name"),
    ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "07:00", "end": "07:00"}}, "for no quiet hours send null"),
    ({"events": {"sms": ["lost"]}}, "events.sms.0"),
    ({"events": {"pigeon": ["confirmed"]}}, "events.pigeon"),
    ({"locale": "fr"}, "locale"),
    ({"notify_fax": True}, "notify_fax: Extra inputs are not permitted"),
]


def test_preferences_that_cannot_work_are_refused_with_what_to_set(
    client: TestClient, database_url: str
) -> None:
    before = db(database_url, "SELECT * FROM customers WHERE ref = 'C-1'")
    for change, says in REFUSED:
        r = client.put(PREFS, json={"channels": {**OFF, "email": True}, **change})
        assert r.status_code == 422, (change, r.text)
        assert says in r.json()["detail"], change
    assert db(database_url, "SELECT * FROM customers WHERE ref = 'C-1'") == before
    db(database_url, "UPDATE customers SET email = NULL WHERE ref = 'C-1'")
    every = client.put(PREFS, json={"channels": dict.fromkeys(OFF, True)}).json()["detail"]
    assert every == (
        "email is on but customer 'C-1' has no email address; sms is on but customer 'C-1' has"
        " no phone number; webhook is on: set webhook_url (the customer's https:// endpoint);"
        " chat is on: set chat_url (an Apprise URL such as tgram://...)"
    )
    assert client.put(PREFS.replace("C-1", "C-404"), json={"channels": OFF}).status_code == 404


def test_a_webhook_secret_is_shown_once_when_made_and_rotated(
    client: TestClient, database_url: str
) -> None:
    def stored() -> str | None:
        return db(database_url, "SELECT webhook_secret FROM customers WHERE ref = 'C-1'")[0][0]

    hook = {"channels": {**OFF, "webhook": True}, "webhook_url": "https://hooks.example/in"}
    put = client.put(PREFS, json=hook)
    assert put.headers["cache-control"] == "no-store"
    made = put.json()
    secret = made["webhook_secret"]
    assert secret.startswith("whsec_") and len(secret) > 40 and stored() == secret
    assert made["webhook_secret_set"] is True
    shown = client.get(PREFS)
    assert secret not in shown.text and shown.json()["webhook_url"] == hook["webhook_url"]
    # Saving the same URL again keeps the secret and does not show it.
    again = client.put(PREFS, json=hook).json()
    assert again["webhook_secret"] is None and stored() == secret
    rotated = client.post(f"{API}/customers/C-1/webhook-secret")
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["webhook_secret"]
    assert new != secret and new.startswith("whsec_") and stored() == new
    # A new URL gets a new secret; no URL, no secret.
    moved = client.put(PREFS, json={**hook, "webhook_url": "https://hooks.example/v2"}).json()
    assert moved["webhook_secret"] not in (None, new) and stored() == moved["webhook_secret"]
    cleared = client.put(PREFS, json={"channels": OFF}).json()
    assert cleared["webhook_secret_set"] is False and stored() is None
    nothing = client.post(f"{API}/customers/C-1/webhook-secret")
    assert nothing.status_code == 409 and "has no webhook URL" in nothing.json()["detail"]
    assert client.post(f"{API}/customers/C-404/webhook-secret").status_code == 404


def test_only_an_admin_lets_a_webhook_reach_a_private_address(
    client: TestClient, database_url: str
) -> None:
    private = {
        "channels": {**OFF, "webhook": True},
        "webhook_url": "http://127.0.0.1:9000/hook",
        "webhook_allow_private": True,
    }
    dispatcher = login(client, "dispatcher")
    assert client.put(PREFS, json=private, headers=dispatcher).status_code == 403
    assert db(database_url, "SELECT webhook_allow_private FROM customers") == [(False,)]
    refused = client.put(
        PREFS, json={**private, "webhook_url": "https://127.0.0.1/", "webhook_allow_private": False}
    )
    assert refused.status_code == 422 and "loopback" in refused.json()["detail"]
    allowed = client.put(PREFS, json=private)
    assert allowed.status_code == 200, allowed.text
    assert client.get(PREFS, headers=dispatcher).json()["webhook_allow_private"] is True


def _notification(database_url: str, channel: str, status: str = "pending") -> int:
    return db(
        database_url,
        "INSERT INTO notifications (order_id, customer_id, event, dedup_key, channel, status,"
        " attempts, last_error)"
        " SELECT o.id, o.customer_id, 'arriving', 'arriving', %s, %s, 8, 'timed out'"
        " FROM orders o WHERE number = 'SO-1' RETURNING id",
        (channel, status),
    )[0][0]


def _delivery(database_url: str, nid: int, channel: str, address: str, attempt: int) -> None:
    db(
        database_url,
        "INSERT INTO notification_deliveries (notification_id, channel, address, attempt,"
        " outcome, error) VALUES (%s, %s, %s, %s, 'failed', 'timed out')",
        (nid, channel, address, attempt),
    )


def test_the_delivery_log_shows_each_attempt_with_the_address_masked(
    client: TestClient, database_url: str
) -> None:
    [(confirmed,)] = db(database_url, "SELECT id FROM notifications WHERE event = 'confirmed'")
    _delivery(database_url, confirmed, "email", "ops@c.example", 1)
    sms = _notification(database_url, "sms", "dead")
    _delivery(database_url, sms, "sms", "+4915112345678", 1)
    _delivery(database_url, sms, "sms", "+4915112345678", 2)
    hook = _notification(database_url, "webhook")
    _delivery(database_url, hook, "webhook", "https://hooks.example/in/secret-path", 1)
    chat = _notification(database_url, "chat")
    _delivery(database_url, chat, "chat", "tgram://…", 1)

    r = client.get(f"{API}/orders/SO-1/notifications", headers=login(client, "dispatcher"))
    assert r.status_code == 200
    log = r.json()
    assert log["order_number"] == "SO-1"
    by_channel = {n["channel"]: n for n in log["notifications"]}
    assert [n["event"] for n in log["notifications"]] == ["confirmed", *["arriving"] * 3]
    assert [d["address"] for d in by_channel["email"]["deliveries"]] == ["o***@c.example"]
    assert [(d["attempt"], d["address"]) for d in by_channel["sms"]["deliveries"]] == [
        (1, "+*********5678"),
        (2, "+*********5678"),
    ]
    assert by_channel["sms"]["status"] == "dead" and by_channel["sms"]["attempts"] == 8
    assert by_channel["webhook"]["deliveries"][0]["address"] == "hooks.example"
    assert by_channel["chat"]["deliveries"][0]["address"] == "tgram://…"
    assert by_channel["sms"]["deliveries"][0]["error"] == "timed out"
    for raw in ("ops@c.example", "15112345678", "secret-path"):
        assert raw not in r.text
    assert client.get(f"{API}/orders/SO-404/notifications").status_code == 404


def test_a_dead_notification_is_found_and_retried_once(
    client: TestClient, database_url: str
) -> None:
    dead = _notification(database_url, "sms", "dead")
    nobody = _notification(database_url, "none", "dead")
    listed = client.get(f"{API}/notifications", params={"status": "dead"}).json()["items"]
    assert [(n["id"], n["order_number"], n["customer"]) for n in listed] == [
        (nobody, "SO-1", "C-1"),
        (dead, "SO-1", "C-1"),
    ]
    assert client.get(f"{API}/notifications", params={"status": "gone"}).status_code == 422
    only_sms = client.get(f"{API}/notifications", params={"channel": "sms", "limit": 5}).json()
    assert [n["id"] for n in only_sms["items"]] == [dead]

    r = client.post(f"{API}/notifications/{dead}/retry")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    assert db(
        database_url,
        "SELECT status, attempts, next_attempt_at <= now() FROM notifications WHERE id = %s",
        (dead,),
    ) == [("pending", 0, True)]
    twice = client.post(f"{API}/notifications/{dead}/retry")
    assert twice.status_code == 409 and "is pending, not dead" in twice.json()["detail"]
    no_channel = client.post(f"{API}/notifications/{nobody}/retry")
    assert no_channel.status_code == 409 and "reach nobody" in no_channel.json()["detail"]
    assert client.post(f"{API}/notifications/987654/retry").status_code == 404
