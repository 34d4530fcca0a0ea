"""The sender as `tracklane serve` and `tracklane demo` run it: a thread that mails new
orders' customers through a real SMTP sink (the demo's Mailbox, aiosmtpd) with a tracking
link, the triggers' thresholds written from the settings, and the demo's mailbox API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest_service.api.app import create_app
from ingest_service.auth.users import ensure_admin
from ingest_service.notify.mailbox import Mailbox
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode
from tracklane.embedded.broker import free_port
from tracklane.notifier import build_channels, notifier_running

SECRET = "s" * 40


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.start(free_port())
    yield box
    box.close()


def settings_for(mailbox: Mailbox, **extra: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        secret_key=SECRET,
        smtp_url=SecretStr(f"smtp://127.0.0.1:{mailbox.port}"),
        public_url="https://track.example",
        notify_interval_s=0.2,
        **extra,
    )


def new_order(url: str, number: str, email: str = "ann@example.test") -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        customer = conn.execute(
            "INSERT INTO customers (ref, name, email) VALUES (%s, 'Ann', %s) RETURNING id",
            (f"C-{number}", email),
        ).fetchone()[0]  # type: ignore[index]
        order_id = conn.execute(
            "INSERT INTO orders (number, customer_id, dest_address, created_by)"
            " VALUES (%s, %s, '1 Road', 'test') RETURNING id",
            (number, customer),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO order_events (order_id, kind, to_state, actor)"
            " VALUES (%s, 'created', 'created', 'test')",
            (order_id,),
        )


def wait_for_mail(mailbox: Mailbox, count: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while len(mailbox.messages()) < count:
        assert time.monotonic() < deadline, f"only {len(mailbox.messages())} of {count} arrived"
        time.sleep(0.1)


def test_the_running_sender_mails_a_new_order_with_its_tracking_link(
    database_url: str, mailbox: Mailbox
) -> None:
    settings = settings_for(mailbox, notify_eta_moved_min=25, notify_eta_moved_max=5)
    with notifier_running(settings, database_url):
        new_order(database_url, "SO-1")
        wait_for_mail(mailbox, 1)
    [mail] = mailbox.messages()
    assert mail.to == ("ann@example.test",)
    assert "SO-1" in mail.subject
    assert mail.tracking_token is not None
    assert f"https://track.example/t/{mail.tracking_token}" in mail.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT eta_moved_min, eta_moved_max FROM notification_settings"
        ).fetchone() == (25, 5)
        assert conn.execute("SELECT status FROM notifications").fetchall() == [("sent",)]
        assert conn.execute("SELECT token FROM tracking_links").fetchone() == (mail.tracking_token,)


def test_without_a_mail_server_email_waits_and_other_channels_still_go(
    database_url: str,
) -> None:
    settings = Settings(_env_file=None, secret_key=SECRET)  # type: ignore[call-arg]
    assert sorted(build_channels(settings)) == ["chat", "webhook"]
    with notifier_running(settings, database_url):
        new_order(database_url, "SO-1")
        time.sleep(0.5)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT channel, status FROM notifications").fetchall() == [
            ("email", "pending")
        ]


# --- the demo's mailbox API ----------------------------------------------------------------


def client_with(database_url: str, mailbox: Mailbox | None) -> TestClient:
    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password="admin-password-long")
    app = create_app(
        settings=Settings(secret_key=SECRET, _env_file=None),  # type: ignore[call-arg]
        database_url=database_url,
        storage_mode=StorageMode("postgresql", "test"),
        mailbox=mailbox,
    )
    client = TestClient(app)
    client.__enter__()
    return client


def token(client: TestClient, role: str) -> dict[str, str]:
    if role != "admin":
        r = client.post(
            "/api/v1/users",
            json={"username": role, "password": f"{role}-password-long", "role": role},
            headers=token(client, "admin"),
        )
        assert r.status_code == 201, r.text
    password = "admin-password-long" if role == "admin" else f"{role}-password-long"
    r = client.post("/api/v1/auth/login", json={"username": role, "password": password})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_demo_mailbox_lists_each_customers_mail_for_dispatchers(
    database_url: str, mailbox: Mailbox
) -> None:
    with notifier_running(settings_for(mailbox), database_url):
        new_order(database_url, "SO-1", "ann@example.test")
        new_order(database_url, "SO-2", "bob@example.test")
        wait_for_mail(mailbox, 2)
    client = client_with(database_url, mailbox)
    try:
        assert client.get("/api/v1/demo/mailbox").status_code == 401
        assert (
            client.get("/api/v1/demo/mailbox", headers=token(client, "driver")).status_code == 403
        )
        r = client.get("/api/v1/demo/mailbox", headers=token(client, "dispatcher"))
        assert r.status_code == 200
        boxes = {b["to"]: b["messages"] for b in r.json()}
        assert sorted(boxes) == ["ann@example.test", "bob@example.test"]
        [ann] = boxes["ann@example.test"]
        assert (ann["event"], ann["order_number"]) == ("confirmed", "SO-1")
        assert ann["tracking_path"].startswith("/t/") and len(ann["tracking_path"]) > 30
    finally:
        client.__exit__(None, None, None)


def test_without_a_mailbox_there_is_no_mailbox_route(database_url: str) -> None:
    client = client_with(database_url, None)
    try:
        r = client.get("/api/v1/demo/mailbox", headers=token(client, "admin"))
        assert r.status_code == 404
    finally:
        client.__exit__(None, None, None)


def test_the_running_notifier_reminds_a_supplier_once_by_mail(
    database_url: str, mailbox: Mailbox
) -> None:
    """A PO due in 3 days with no ASN, from a supplier reminded 5 days ahead: one mail."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        supplier = conn.execute(
            "INSERT INTO suppliers (ref, name, email, reminder_days)"
            " VALUES ('SUP-1', 'Nordwerk', 'asn@nordwerk.example', 5) RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO purchase_orders (number, supplier_id, site, status, delivery_date,"
            " created_by) VALUES ('PO-1', %s, 'wh1', 'acknowledged',"
            " (now() AT TIME ZONE 'UTC')::date + 3, 'buyer')",
            (supplier,),
        )
    with notifier_running(settings_for(mailbox), database_url, reminder_interval_s=0.2):
        wait_for_mail(mailbox, 1)
        time.sleep(0.6)  # a few more passes: still one
    [mail] = mailbox.messages()
    assert mail.to == ("asn@nordwerk.example",)
    assert "PO-1" in mail.subject
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM supplier_reminders").fetchone() == (1,)
