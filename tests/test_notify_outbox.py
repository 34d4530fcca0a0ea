"""The outbox triggers of 0007 against a real PostgreSQL: one row per channel the customer has
on for the event, dead 'none' rows for a customer no channel reaches, customer-facing
exceptions, and ETA moves past the threshold (baseline, threshold, cap)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ingest_service.notify import Outgoing, PassResult, Target, run_once

T0 = datetime(2026, 11, 22, 8, tzinfo=UTC)


def customer(conn: psycopg.Connection, ref: str, **columns: Any) -> int:
    values = {"ref": ref, "name": "Ann Lee", "email": "ann@example.test", **columns}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    return conn.execute(
        f"INSERT INTO customers ({names}) VALUES ({marks}) RETURNING id",  # noqa: S608
        [Jsonb(v) if isinstance(v, dict) else v for v in values.values()],
    ).fetchone()[0]


def order(conn: psycopg.Connection, customer_id: int, number: str, **columns: Any) -> int:
    values = {"number": number, "customer_id": customer_id, "dest_address": "1 Road",
              "created_by": "test", **columns}  # fmt: skip
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    return conn.execute(
        f"INSERT INTO orders ({names}) VALUES ({marks}) RETURNING id",  # noqa: S608
        list(values.values()),
    ).fetchone()[0]


def move(conn: psycopg.Connection, order_id: int, to_state: str) -> None:
    conn.execute("UPDATE orders SET state = %s WHERE id = %s", (to_state, order_id))
    conn.execute(
        "INSERT INTO order_events (order_id, kind, to_state, actor) VALUES (%s, 'state', %s, 't')",
        (order_id, to_state),
    )


def rows(conn: psycopg.Connection, order_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT event, channel, dedup_key, status FROM notifications WHERE order_id = %s"
        " ORDER BY event, channel, dedup_key",
        (order_id,),
    ).fetchall()


def test_each_channel_the_customer_has_on_gets_its_own_row(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        c = customer(conn, "C1", phone="+4412345678", notify_sms=True,
                     webhook_url="https://hooks.example/t", notify_webhook=True,
                     chat_url="tgram://bot/chat", notify_chat=False)  # fmt: skip
        o = order(conn, c, "SO-1")
        move(conn, o, "arrived")
        move(conn, o, "arrived")  # redelivered: still one row per channel
        assert rows(conn, o) == [
            ("arrived", "email", "arrived", "pending"),
            ("arrived", "sms", "arrived", "pending"),
            ("arrived", "webhook", "arrived", "pending"),
        ]


def test_per_channel_events_choose_what_each_channel_carries(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        c = customer(conn, "C1", phone="+4412345678", notify_sms=True,
                     notify_events={"sms": ["arriving"]})  # fmt: skip
        o = order(conn, c, "SO-1")
        move(conn, o, "in_transit")
        move(conn, o, "arriving")
        assert rows(conn, o) == [
            ("arriving", "email", "arriving", "pending"),
            ("arriving", "sms", "arriving", "pending"),
            ("dispatched", "email", "dispatched", "pending"),
        ]


def test_a_customer_no_channel_reaches_is_recorded_as_dead(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        c = customer(conn, "C1", email=None)
        o = order(conn, c, "SO-1")
        move(conn, o, "in_transit")
        [(status, error)] = conn.execute(
            "SELECT status, last_error FROM notifications WHERE order_id = %s", (o,)
        ).fetchall()
        assert (status, error) == ("dead", "no channel: none is on for this customer and event")


def test_damage_and_short_loads_tell_the_customer_once_each_but_not_other_kinds(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        o = order(conn, customer(conn, "C1"), "SO-1")
        for kind, key in [("short_load", "a"), ("short_load", "b"), ("damage", "c"),
                          ("wrong_load", "d"), ("stale_tracker", "e")]:  # fmt: skip
            conn.execute(
                "INSERT INTO exceptions (kind, summary, order_id, opened_by, dedup_key)"
                " VALUES (%s, 'internal words', %s, 'rule:test', %s)",
                (kind, o, key),
            )
        assert rows(conn, o) == [
            ("exception", "email", "exception:damage", "pending"),
            ("exception", "email", "exception:short_load", "pending"),
        ]
        reasons = conn.execute(
            "SELECT payload->>'reason' FROM notifications WHERE order_id = %s ORDER BY id", (o,)
        ).fetchall()
        assert reasons == [("short_load",), ("damage",)]


# --- ETA moves -------------------------------------------------------------------------------


@pytest.fixture
def trip(database_url: str) -> dict[str, Any]:
    """Two orders on one departed trip, in transit, at stops 1 and 2."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE notification_settings SET eta_moved_min = 15, eta_moved_max = 2")
        conn.execute("INSERT INTO vehicles (id, name) VALUES ('truck-1', 'Truck 1')")
        conn.execute(
            "INSERT INTO trips (id, vehicle_id, origin_site, state, departed_at)"
            " VALUES ('T1', 'truck-1', 'wh1', 'departed', %s)",
            (T0,),
        )
        orders = []
        for seq in (1, 2):
            fence = conn.execute(
                "INSERT INTO geofences (name, kind, feature, created_by) VALUES"
                " ('stop', 'customer_site', '{}', 'test') RETURNING id"
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO trip_stops (trip_id, seq, fence_id) VALUES ('T1', %s, %s)",
                (seq, fence),
            )
            o = order(conn, customer(conn, f"C{seq}"), f"SO-{seq}", trip_id="T1", stop_seq=seq)
            move(conn, o, "in_transit")
            orders.append(o)
        return {"url": database_url, "orders": orders}


def set_eta(conn: psycopg.Connection, seq: int, eta: datetime, state: str = "pending") -> None:
    conn.execute(
        "UPDATE trip_stops SET eta = %s, eta_earliest = %s, eta_latest = %s, eta_at = %s,"
        " state = %s WHERE trip_id = 'T1' AND seq = %s",
        (eta, eta - timedelta(minutes=5), eta + timedelta(minutes=10), T0, state, seq),
    )


def eta_moves(conn: psycopg.Connection, order_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT dedup_key, payload->>'eta', payload->>'eta_latest' FROM notifications"
        " WHERE order_id = %s AND event = 'eta_moved' ORDER BY id",
        (order_id,),
    ).fetchall()


def test_the_first_eta_is_the_baseline_and_small_moves_say_nothing(trip: dict) -> None:
    first, second = trip["orders"]
    with psycopg.connect(trip["url"], autocommit=True) as conn:
        set_eta(conn, 1, T0 + timedelta(hours=1))
        set_eta(conn, 1, T0 + timedelta(hours=1, minutes=14))
        assert eta_moves(conn, first) == []
        assert eta_moves(conn, second) == []  # another stop's ETA is not this customer's news
        assert conn.execute(
            "SELECT eta FROM notification_eta WHERE order_id = %s", (first,)
        ).fetchone() == (T0 + timedelta(hours=1),)


def test_a_move_past_the_threshold_is_news_and_the_new_baseline(trip: dict) -> None:
    first, _ = trip["orders"]
    with psycopg.connect(trip["url"], autocommit=True) as conn:
        set_eta(conn, 1, T0 + timedelta(hours=1))
        set_eta(conn, 1, T0 + timedelta(hours=1, minutes=20))  # +20 min: news
        set_eta(conn, 1, T0 + timedelta(hours=1, minutes=30))  # +10 from the news: quiet
        set_eta(conn, 1, T0 + timedelta(minutes=50))  # -40: news again
        set_eta(conn, 1, T0 + timedelta(hours=3))  # news, but the cap (2) is reached
        assert eta_moves(conn, first) == [
            ("eta_moved:1", "2026-11-22T09:20:00Z", "2026-11-22T09:30:00Z"),
            ("eta_moved:2", "2026-11-22T08:50:00Z", "2026-11-22T09:00:00Z"),
        ]


def test_no_eta_news_once_the_stop_is_arriving_or_the_order_not_in_transit(trip: dict) -> None:
    first, second = trip["orders"]
    with psycopg.connect(trip["url"], autocommit=True) as conn:
        set_eta(conn, 1, T0 + timedelta(hours=1))
        set_eta(conn, 1, T0 + timedelta(hours=2), state="arriving")
        set_eta(conn, 2, T0 + timedelta(hours=2))
        move(conn, second, "cancelled")
        set_eta(conn, 2, T0 + timedelta(hours=4))
        assert eta_moves(conn, first) == []
        assert eta_moves(conn, second) == []


# --- the sender hands each row to its own channel ----------------------------------------------


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[Target, Outgoing]] = []

    async def send(self, target: Target, out: Outgoing, *, now: datetime) -> None:
        self.sent.append((target, out))


def test_each_row_goes_to_its_channel_with_a_tracking_link_and_waits_for_a_missing_one(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        c = customer(conn, "C1", webhook_url="https://hooks.example/t?key=k", notify_webhook=True,
                     webhook_secret="whsec_x", phone="+4412345678", notify_sms=True)  # fmt: skip
        o = order(conn, c, "SO-1")
        move(conn, o, "in_transit")
    email, webhook = Recorder("email"), Recorder("webhook")

    async def go() -> PassResult:
        async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await run_once(conn, datetime.now(UTC) + timedelta(minutes=1),
                                  {"email": email, "webhook": webhook},
                                  public_url="https://track.example/")  # fmt: skip

    assert asyncio.run(go()) == PassResult(sent=2)
    [(target, out)] = webhook.sent
    assert target == Target("https://hooks.example/t?key=k", "whsec_x", False)
    assert out.event == "dispatched" and out.payload["order_number"] == "SO-1"
    [(mail_target, mail)] = email.sent
    assert mail_target.address == "ann@example.test"
    assert out.tracking_url == mail.tracking_url  # one link per order
    assert mail.tracking_url is not None and mail.tracking_url.startswith(
        "https://track.example/t/"
    )
    assert mail.tracking_url in mail.message.text
    with psycopg.connect(database_url) as conn:
        token = conn.execute("SELECT token FROM tracking_links").fetchone()[0]
        assert mail.tracking_url.endswith(token) and len(token) >= 32
        # The SMS row waits for a sender that has SMS; the log keeps no webhook query.
        assert conn.execute(
            "SELECT channel, status FROM notifications ORDER BY channel"
        ).fetchall() == [("email", "sent"), ("sms", "pending"), ("webhook", "sent")]
        assert conn.execute(
            "SELECT address FROM notification_deliveries WHERE channel = 'webhook'"
        ).fetchone() == ("https://hooks.example/t",)
