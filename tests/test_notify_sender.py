"""The notification sender against a real SMTP server (aiosmtpd on a free port): the message
arrives with its subject, text and HTML; failures retry with growing backoff and then die;
quiet hours wait; two senders send each message once."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from psycopg import AsyncConnection

from ingest_service.notify import (
    EmailChannel,
    PassResult,
    SmtpConfig,
    parse_smtp_url,
    run_once,
)
from ingest_service.settings import Settings
from notifications import RetryPolicy

# The sender's clock: 09:00 UTC tomorrow, so rows the tests insert (next_attempt_at =
# the database's now()) are always due, and quiet hours see the same time of day every run.
NOW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
SENDER = "Tracklane <notify@tracklane.test>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """An SMTP handler that keeps what it receives; `replies` scripts refusals."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.replies: list[str] = []  # next DATA replies, e.g. "451 later"; then 250
        self.delay_s = delay_s
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            self.envelopes.append(envelope)
            self.received.append(
                email.message_from_bytes(envelope.content, policy=default_policy)  # type: ignore[arg-type]
            )
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def channel(port: int, **kw: Any) -> EmailChannel:
    return EmailChannel(SmtpConfig("127.0.0.1", port, timeout_s=5, **kw), SENDER)


def customer_order(
    url: str,
    *,
    email_address: str | None = "ann@example.test",
    locale: str = "en",
    notify_email: bool = True,
    quiet: tuple[time, time] | None = None,
    time_zone: str = "UTC",
    state: str = "arrived",
    n: int = 1,
) -> list[int]:
    """n orders of one new customer, each moved to `state` (so one outbox row each)."""
    with psycopg.connect(url, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        ref = f"C{count}"
        customer = conn.execute(
            "INSERT INTO customers (ref, name, email, locale, notify_email, time_zone,"
            " quiet_start, quiet_end) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                ref,
                "Ann <b>Lee</b>",
                email_address,
                locale,
                notify_email,
                time_zone,
                quiet[0] if quiet else None,
                quiet[1] if quiet else None,
            ),
        ).fetchone()[0]
        ids = []
        for i in range(n):
            order_id = conn.execute(
                "INSERT INTO orders (number, customer_id, dest_address, created_by)"
                " VALUES (%s, %s, '1 Road', 'test') RETURNING id",
                (f"SO-{ref}-{i}", customer),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO order_events (order_id, kind, to_state, actor)"
                " VALUES (%s, 'state', %s, 'test')",
                (order_id, state),
            )
            ids.append(order_id)
        return ids


def one_pass(url: str, now: datetime, ch: EmailChannel, **kw: Any) -> PassResult:
    async def go() -> PassResult:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await run_once(conn, now, {"email": ch}, **kw)

    return asyncio.run(go())


def notification(url: str, order_id: int) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT * FROM notifications WHERE order_id = %s", (order_id,)
        ).fetchone()


def deliveries(url: str, notification_id: int) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT channel, address, attempt, outcome, error FROM notification_deliveries"
            " WHERE notification_id = %s ORDER BY id",
            (notification_id,),
        ).fetchall()


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# --- a real SMTP server ----------------------------------------------------------------------


def test_a_real_smtp_server_receives_text_and_html_once(database_url: str, sink) -> None:
    handler, port = sink
    [order_id] = customer_order(database_url, locale="zh-CN", time_zone="Asia/Shanghai")
    result = one_pass(database_url, NOW, channel(port))
    assert result == PassResult(sent=1)

    [message] = handler.received
    assert message["Subject"] == "订单 SO-C0-0：司机已到达"  # noqa: RUF001
    assert message["To"] == "ann@example.test"
    assert message["From"] == SENDER
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "Ann <b>Lee</b>，您好" in text  # noqa: RUF001
    assert "Ann &lt;b&gt;Lee&lt;/b&gt;，您好" in html  # noqa: RUF001
    assert "<b>Lee</b>" not in html
    assert "SO-C0-0" in text and "SO-C0-0" in html
    assert handler.envelopes[0].rcpt_tos == ["ann@example.test"]

    row = notification(database_url, order_id)
    assert (row["status"], row["attempts"], row["sent_at"], row["last_error"]) == (
        "sent",
        1,
        NOW,
        None,
    )
    assert message["Message-ID"] == f"<notification-{row['id']}.tracklane@tracklane.test>"
    assert deliveries(database_url, row["id"]) == [("email", "ann@example.test", 1, "sent", None)]
    # Nothing is due any more: a second pass sends nothing.
    assert one_pass(database_url, NOW + timedelta(hours=1), channel(port)) == PassResult()
    assert len(handler.received) == 1


def test_an_unreachable_server_retries_with_growing_backoff_then_gives_up(
    database_url: str,
) -> None:
    [order_id] = customer_order(database_url, state="delivered")
    dead_port = free_port()  # nothing listens there: connection refused
    policy = RetryPolicy(base_s=10, factor=2, cap_s=3600, jitter_fraction=0.25, max_attempts=4)
    now = NOW
    waits = []
    for attempt in range(1, 4):
        result = one_pass(database_url, now, channel(dead_port), policy=policy)
        assert result == PassResult(retried=1)
        row = notification(database_url, order_id)
        assert row["status"] == "pending" and row["attempts"] == attempt
        assert "ConnectionRefusedError" in row["last_error"]
        waits.append(row["next_attempt_at"] - now)
        # Not due yet: a pass a moment before sends nothing.
        early = row["next_attempt_at"] - timedelta(milliseconds=1)
        assert one_pass(database_url, early, channel(dead_port), policy=policy) == PassResult()
        now = row["next_attempt_at"]
    assert waits[0] < waits[1] < waits[2]
    assert timedelta(seconds=7.5) <= waits[0] <= timedelta(seconds=10)

    assert one_pass(database_url, now, channel(dead_port), policy=policy) == PassResult(dead=1)
    row = notification(database_url, order_id)
    assert (row["status"], row["attempts"], row["sent_at"]) == ("dead", 4, None)
    assert "ConnectionRefusedError" in row["last_error"]
    log = deliveries(database_url, row["id"])
    assert [(a, o) for _c, _ad, a, o, _e in log] == [(i, "failed") for i in range(1, 5)]
    assert all("ConnectionRefusedError" in e for *_x, e in log)
    # dead is final
    later = now + timedelta(days=1)
    assert one_pass(database_url, later, channel(dead_port), policy=policy) == PassResult()


def test_a_temporary_refusal_is_retried_and_then_sent(database_url: str, sink) -> None:
    handler, port = sink
    handler.replies = ["451 4.3.0 try again later"]
    [order_id] = customer_order(database_url)
    assert one_pass(database_url, NOW, channel(port)) == PassResult(retried=1)
    row = notification(database_url, order_id)
    assert "451" in row["last_error"]
    assert one_pass(database_url, row["next_attempt_at"], channel(port)) == PassResult(sent=1)
    assert len(handler.received) == 1
    assert [d[2:4] for d in deliveries(database_url, row["id"])] == [(1, "failed"), (2, "sent")]
    assert notification(database_url, order_id)["last_error"] is None


def test_a_permanent_refusal_is_dead_at_once(database_url: str, sink) -> None:
    handler, port = sink
    handler.replies = ["550 5.1.1 no such mailbox"]
    [order_id] = customer_order(database_url)
    assert one_pass(database_url, NOW, channel(port)) == PassResult(dead=1)
    row = notification(database_url, order_id)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    assert "550" in row["last_error"]


@pytest.mark.parametrize(("address", "notify_email"), [(None, True), ("ann@example.test", False)])
def test_a_customer_with_no_channel_on_has_a_dead_row_from_the_start(
    database_url: str, sink, address: str | None, notify_email: bool
) -> None:
    handler, port = sink
    [order_id] = customer_order(database_url, email_address=address, notify_email=notify_email)
    row = notification(database_url, order_id)
    assert (row["channel"], row["status"], row["attempts"]) == ("none", "dead", 0)
    assert row["last_error"].startswith("no channel")
    assert one_pass(database_url, NOW, channel(port)) == PassResult()
    assert deliveries(database_url, row["id"]) == []
    assert handler.received == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("email = '  '", "no channel: no email address"),
        ("notify_email = false", "no channel: email is off"),
    ],
)
def test_a_channel_emptied_or_turned_off_after_the_event_is_dead_with_no_delivery(
    database_url: str, sink, change: str, reason: str
) -> None:
    handler, port = sink
    [order_id] = customer_order(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"UPDATE customers SET {change}")  # noqa: S608 - the test's own text
    assert one_pass(database_url, NOW, channel(port)) == PassResult(dead=1)
    row = notification(database_url, order_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 0, reason)
    assert deliveries(database_url, row["id"]) == []
    assert handler.received == []


def test_quiet_hours_wait_for_the_customers_morning(database_url: str, sink) -> None:
    handler, port = sink
    # 09:00 UTC is 17:00 in Shanghai; quiet from 16:00 to 08:00 local (00:00 UTC next day).
    [order_id] = customer_order(database_url, time_zone="Asia/Shanghai", quiet=(time(16), time(8)))
    assert one_pass(database_url, NOW, channel(port)) == PassResult(deferred=1)
    row = notification(database_url, order_id)
    morning = (NOW + timedelta(days=1)).replace(hour=0)  # 08:00 in Shanghai
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, morning)
    assert handler.received == []
    assert one_pass(database_url, morning, channel(port)) == PassResult(sent=1)
    assert len(handler.received) == 1


def test_two_senders_at_once_send_each_message_once(database_url: str) -> None:
    handler = Sink(delay_s=0.02)  # slow enough that the two passes overlap
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        orders = customer_order(database_url, n=15) + customer_order(database_url, n=15)

        async def both() -> list[PassResult]:
            conns = [await AsyncConnection.connect(database_url, autocommit=True) for _ in range(2)]
            try:
                return await asyncio.gather(
                    *(run_once(c, NOW, {"email": channel(port)}) for c in conns)
                )
            finally:
                for c in conns:
                    await c.close()

        results = asyncio.run(both())
    finally:
        controller.stop()
    assert sum(r.sent for r in results) == 30
    assert all(r.retried == r.dead == 0 for r in results)
    assert all(r.sent > 0 for r in results)  # both worked, at the same time
    ids = [m["Message-ID"] for m in handler.received]
    assert len(ids) == 30 == len(set(ids))
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT status, count(*) FROM notifications WHERE order_id = ANY(%s) GROUP BY 1",
            (orders,),
        ).fetchall() == [("sent", 30)]
        assert conn.execute("SELECT count(*) FROM notification_deliveries").fetchone() == (30,)


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _contexts(tls_files: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = tls_files
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_starttls_with_login(database_url: str, tls_files) -> None:
    server_ctx, client_ctx = _contexts(tls_files)
    handler = Sink()
    seen: list[tuple[bool, bytes]] = []

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((session.ssl is not None, auth_data.login))
        ok = auth_data.login == b"mailer" and auth_data.password == b"p@ss word"
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        [order_id] = customer_order(database_url)
        config = parse_smtp_url(f"smtp+starttls://mailer:p%40ss%20word@127.0.0.1:{port}")
        config = dataclasses.replace(config, ssl_context=client_ctx)
        assert one_pass(database_url, NOW, EmailChannel(config, SENDER)) == PassResult(sent=1)
    finally:
        controller.stop()
    assert seen == [(True, b"mailer")]
    assert len(handler.received) == 1
    assert notification(database_url, order_id)["status"] == "sent"


def test_implicit_tls(database_url: str, tls_files) -> None:
    server_ctx, client_ctx = _contexts(tls_files)
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_ctx)
    controller.start()
    try:
        customer_order(database_url)
        config = SmtpConfig("127.0.0.1", port, "tls", timeout_s=5, ssl_context=client_ctx)
        assert one_pass(database_url, NOW, EmailChannel(config, SENDER)) == PassResult(sent=1)
    finally:
        controller.stop()
    assert len(handler.received) == 1


# --- configuration ---------------------------------------------------------------------------


def test_smtp_urls() -> None:
    assert parse_smtp_url("smtp://localhost:1025") == SmtpConfig("localhost", 1025, "plain")
    assert parse_smtp_url("smtp+starttls://u%40x:p%3Aw@mail.example") == SmtpConfig(
        "mail.example", 587, "starttls", "u@x", "p:w"
    )
    assert parse_smtp_url("smtps://mail.example") == SmtpConfig("mail.example", 465, "tls")
    assert "p:w" not in repr(parse_smtp_url("smtps://u:p%3Aw@mail.example"))
    for bad in ("http://mail.example", "smtp://", "mail.example:25"):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)


def test_smtp_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLANE_SMTP_URL", "smtp+starttls://mail.example:587")
    monkeypatch.setenv("TRACKLANE_SMTP_FROM", "Shop <shop@example.com>")
    settings = Settings(_env_file=None)
    assert settings.smtp_url is not None
    assert settings.smtp_url.get_secret_value() == "smtp+starttls://mail.example:587"
    assert "mail.example" not in repr(settings)  # it may hold a password
    assert settings.smtp_from == "Shop <shop@example.com>"
    assert Settings(_env_file=None, smtp_url=None).smtp_url is None
    with pytest.raises(ValueError):
        Settings(_env_file=None, smtp_url="http://mail.example")
