"""Webhooks against a real receiver (tests/webhook_receiver.py, its own HMAC check): signed
delivery, replays and tampering refused, status codes, no redirects, only published fields,
the SSRF guard refusing private destinations before any connection, TLS with the checked
address, and the sender end to end with two senders at once."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

# Not `tests.webhook_receiver`: tests/ is on sys.path under both `pytest` and `python -m pytest`.
from webhook_receiver import Receiver, self_signed, tls_receiver

from ingest_service.notify.channels import Outgoing, PermanentFailure, Target
from ingest_service.notify.netguard import (
    UnsafeDestination,
    check_url,
    resolve_public,
    why_unsafe,
)
from ingest_service.notify.sender import PassResult, run_once
from ingest_service.notify.webhook import WebhookChannel, WebhookError
from notifications import Message

SECRET = "whsec_test-secret"
PAYLOAD = {
    "order_number": "SO-7",
    "customer_name": "Ann <b>Lee</b>",
    "window_start": "2026-12-08T09:00:00Z",
    "window_end": "2026-12-08T12:00:00Z",
    "at": "2026-12-07T08:00:00Z",
}
OUT = Outgoing(41, "dispatched", "en", PAYLOAD, Message("s", "t", "h"), "https://t.test/t/x")


def send(
    url: str,
    *,
    allow_private: bool = True,
    secret: str | None = SECRET,
    out: Outgoing = OUT,
    **kw: Any,
) -> None:
    target = Target(url, secret=secret, allow_private=allow_private)
    asyncio.run(WebhookChannel(**kw).send(target, out, now=datetime.now(UTC)))


@pytest.fixture
def receiver():
    with Receiver(SECRET) as r:
        yield r


def test_delivers_a_signed_notification_with_only_published_fields(receiver: Receiver) -> None:
    send(receiver.url())
    (got,) = receiver.accepted
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"] == "Tracklane-Webhook/1"
    assert got.headers["Tracklane-Notification-Id"] == "41"
    assert got.headers["Tracklane-Event"] == "dispatched"
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}"
    body = got.json()
    assert set(body) == {"id", "event", "occurred_at", "order", "window", "tracking_url"}
    assert body["order"] == {"number": "SO-7"}
    assert body["window"] == {"start": "2026-12-08T09:00:00Z", "end": "2026-12-08T12:00:00Z"}
    assert b"Ann" not in got.body


def test_replays_and_tampering_are_refused_by_the_receiver(receiver: Receiver) -> None:
    send(receiver.url())
    (got,) = receiver.accepted
    headers, body = got.headers, got.body
    assert receiver.resend(headers, body) == 409  # at once: the id was accepted
    assert receiver.resend({**headers, "Tracklane-Notification-Id": "999"}, body) == 400
    tampered = body.replace(b"SO-7", b"SO-8")
    assert receiver.resend({**headers, "Tracklane-Notification-Id": "41"}, tampered) == 401
    receiver.seen_ids.clear()  # even a receiver that forgot the id: later, it is stale
    receiver.clock = lambda: datetime.now(UTC).timestamp() + 301
    assert receiver.resend(headers, body) == 400
    assert len(receiver.accepted) == 1


def test_a_wrong_secret_is_refused(receiver: Receiver) -> None:
    with pytest.raises(PermanentFailure, match="401 Unauthorized: bad signature"):
        send(receiver.url(), secret="whsec_other")


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
def test_temporary_refusals_are_retryable(receiver: Receiver, status: int) -> None:
    receiver.scripted.append((status, {}, b"busy,\n  try   later" + b"x" * 5000))
    with pytest.raises(WebhookError, match=f"answered {status}.*: busy, try later") as e:
        send(receiver.url())
    assert not isinstance(e.value, PermanentFailure)
    assert e.value.status == status and len(e.value.excerpt) <= 200


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_other_client_errors_are_permanent(receiver: Receiver, status: int) -> None:
    receiver.scripted.append((status, {}, b"no such hook"))
    with pytest.raises(PermanentFailure, match=f"refused with {status}.*no such hook"):
        send(receiver.url())


def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.scripted.append((302, {"Location": receiver.url("/elsewhere")}, b""))
    with pytest.raises(PermanentFailure, match=r"302 Found to http://.*/elsewhere; redirects"):
        send(receiver.url())
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_unreachable_and_missing_secret() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    with pytest.raises(WebhookError, match="could not connect"):
        send(f"http://127.0.0.1:{port}/hook")
    with pytest.raises(PermanentFailure, match="no webhook secret"):
        send(f"http://127.0.0.1:{port}/hook", secret=None)


REFUSED = [
    ("127.0.0.1:{port}", "127.0.0.1 is a loopback address"),
    ("[::1]:{port}", "::1 is a loopback address"),
    ("localhost:{port}", "localhost is a loopback name"),
    ("10.0.0.5", "10.0.0.5 is a private address"),
    ("172.16.0.1", "172.16.0.1 is a private address"),
    ("192.168.1.10", "192.168.1.10 is a private address"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
    ("100.64.0.1", r"100.64.0.1 is a carrier-grade NAT address \(100.64.0.0/10\)"),
    ("[::ffff:127.0.0.1]:{port}", r"::ffff:127.0.0.1 is a loopback address \(127.0.0.1\) in IPv4-"),
    ("[fc00::1]", "fc00::1 is a private address"),
    ("[fd12:3456::1]", "fd12:3456::1 is a private address"),
    ("[fe80::1]", "fe80::1 is a link-local address"),
]


@pytest.mark.parametrize(("host", "reason"), REFUSED)
def test_private_destinations_are_refused_before_any_connection(
    receiver: Receiver, host: str, reason: str
) -> None:
    url = f"https://{host.format(port=receiver.port)}/hook"
    with pytest.raises(UnsafeDestination, match=f"refused: {reason}.*an admin can allow"):
        send(url, allow_private=False)
    assert receiver.connections == 0 and not receiver.requests


def test_a_name_resolving_to_a_private_address_is_refused_at_send_time() -> None:
    with pytest.raises(UnsafeDestination, match=r"localhost resolves to (127\.0\.0\.1|::1), a"):
        asyncio.run(resolve_public("localhost", 443, allow_private=False))
    private = ["10.0.0.5", "172.16.0.1", "192.168.1.10", "169.254.169.254", "100.64.0.1",
               "::ffff:127.0.0.1", "fc00::1", "fe80::1"]  # fmt: skip
    for literal in private:  # with the admin's leave they resolve, to themselves
        assert asyncio.run(resolve_public(literal, 443, allow_private=True)) == [literal]


def test_a_name_is_checked_by_the_channel_at_send_time(receiver: Receiver) -> None:
    # This machine's own name: a name (so not caught when saved) that resolves to a loopback or
    # private address on most hosts and containers.
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 443)}
    except OSError:
        pytest.skip(f"{name} does not resolve here")
    if all(why_unsafe(ipaddress.ip_address(a)) is None for a in addresses):
        pytest.skip(f"{name} resolves to public addresses only here")
    check_url(f"https://{name}/hook", allow_private=False)  # passes when saved
    with pytest.raises(UnsafeDestination, match=f"refused: {name} resolves to .*, a"):
        send(f"https://{name}:{receiver.port}/hook", allow_private=False)
    assert receiver.connections == 0


def test_with_allow_private_loopback_is_delivered(receiver: Receiver) -> None:
    send(receiver.url(), allow_private=True)
    # localhost may resolve to ::1 first, where nobody listens: the next checked address is used.
    url = receiver.url("/hook?x=1", host="localhost")
    send(url, allow_private=True, out=dataclasses.replace(OUT, notification_id=42))
    assert [r.path for r in receiver.accepted] == ["/hook", "/hook?x=1"]
    assert receiver.accepted[1].headers["Host"] == f"localhost:{receiver.port}"


def test_ipv6_loopback_with_allow_private() -> None:
    try:
        r = Receiver(SECRET, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with r:
        send(r.url(), allow_private=True)
    assert len(r.accepted) == 1 and r.accepted[0].headers["Host"] == f"[::1]:{r.port}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def test_https_connects_to_the_checked_address_and_verifies_the_name(certs) -> None:
    cert, key = certs["localhost"]
    sni: list[str | None] = []
    with tls_receiver(SECRET, cert, key, sni) as r:
        trust = ssl.create_default_context(cafile=str(cert))
        send(r.url(host="localhost"), allow_private=True, ssl_context=trust)
    assert [req.headers["Host"] for req in r.accepted] == [f"localhost:{r.port}"]
    assert sni == ["localhost"]  # the URL's name, though we connected to 127.0.0.1


def test_https_refuses_a_certificate_for_another_name(certs) -> None:
    cert, key = certs["other"]
    with tls_receiver(SECRET, cert, key, []) as r:
        trust = ssl.create_default_context(cafile=str(cert))
        with pytest.raises(WebhookError, match=r"certificate|hostname"):
            send(r.url(host="localhost"), allow_private=True, ssl_context=trust)
        with pytest.raises(WebhookError, match="certificate"):  # not trusted at all
            send(r.url(host="localhost"), allow_private=True)
    assert not r.accepted


# End to end: the outbox trigger, the sender (run_once) and this channel, against a receiver.


def webhook_customer_orders(url: str, hook: str, *, allow_private: bool, n: int = 1) -> list[int]:
    """n new orders (a 'confirmed' outbox row each) of a new customer on webhooks only."""
    with psycopg.connect(url, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        ref = f"W{count}"
        customer = conn.execute(
            "INSERT INTO customers (ref, name, notify_email, notify_webhook, webhook_url,"
            " webhook_secret, webhook_allow_private)"
            " VALUES (%s, 'Ann <b>Lee</b>', false, true, %s, %s, %s) RETURNING id",
            (ref, hook, SECRET, allow_private),
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
                " VALUES (%s, 'created', 'created', 'test')",
                (order_id,),
            )
            ids.append(order_id)
        return ids


def passes(url: str, senders: int = 1, **kw: Any) -> list[PassResult]:
    """`senders` run_once passes at once, each on its own connection, at the real time."""

    async def one() -> PassResult:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await run_once(conn, datetime.now(UTC), {"webhook": WebhookChannel()}, **kw)

    async def all_() -> list[PassResult]:
        return list(await asyncio.gather(*(one() for _ in range(senders))))

    return asyncio.run(all_())


def rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, channel, event, status, last_error FROM notifications ORDER BY id"
        ).fetchall()


def test_the_sender_delivers_webhooks_once_each(database_url: str, receiver: Receiver) -> None:
    (order,) = webhook_customer_orders(database_url, receiver.url(), allow_private=True)
    (result,) = passes(database_url, public_url="https://track.example")
    assert result.sent == 1
    (got,) = receiver.accepted  # the receiver's own HMAC check passed
    ((nid, channel, event, status, error),) = rows(database_url)
    assert (channel, event, status, error) == ("webhook", "confirmed", "sent", None)
    body = got.json()
    assert body["id"] == got.headers["Tracklane-Notification-Id"] == str(nid)
    assert body["event"] == got.headers["Tracklane-Event"] == "confirmed"
    assert body["order"] == {"number": "SO-W0-0"}
    assert body["tracking_url"].startswith("https://track.example/t/")
    assert b"Ann" not in got.body

    more = webhook_customer_orders(database_url, receiver.url(), allow_private=True, n=8)
    results = passes(database_url, senders=2)
    assert sum(r.sent for r in results) == 8
    ids = [r.json()["id"] for r in receiver.accepted]
    assert len(ids) == len(set(ids)) == 9  # each exactly once, no 409 from the receiver
    assert [r.status for r in receiver.requests] == [200] * 9
    assert {s for *_, s, _e in rows(database_url)} == {"sent"}
    assert len(more) == 8 and order not in more


def test_the_sender_refuses_a_private_destination(database_url: str, receiver: Receiver) -> None:
    # Exactly the delivering setup but without the admin's leave: http is refused, and so is
    # https to 127.0.0.1, before any connection.
    webhook_customer_orders(database_url, receiver.url(), allow_private=False)
    webhook_customer_orders(database_url, receiver.url(scheme="https"), allow_private=False)
    (result,) = passes(database_url)
    assert result.dead == 2 and result.sent == 0
    (_, _, _, status1, error1), (_, _, _, status2, error2) = rows(database_url)
    assert status1 == status2 == "dead"
    assert "must start with https://" in error1 and "only for private destinations" in error1
    assert "refused: 127.0.0.1 is a loopback address" in error2
    assert "an admin can allow private destinations" in error2
    assert receiver.connections == 0 and not receiver.requests
