"""The outbox triggers of 0006/0007 against a real PostgreSQL: one outbox row per order and
customer-facing event, written in the transaction of the state change, once whatever
redelivers the move, and agreeing with the pure table in notifications/events.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg
import pytest

from notifications import EVENT_FOR_STATE, NotificationEvent
from notifications.events import CUSTOMER_REASONS

# --- the outbox triggers ---------------------------------------------------------------------


def _order(conn: psycopg.Connection, *, locale: str = "en", email: str | None = "a@x.test") -> int:
    customer = conn.execute(
        "INSERT INTO customers (ref, name, email, locale) VALUES (%s, 'Ann Lee', %s, %s)"
        " RETURNING id",
        (f"C-{datetime.now(UTC).timestamp()}-{threading.get_ident()}", email, locale),
    ).fetchone()[0]
    return conn.execute(
        "INSERT INTO orders (number, customer_id, dest_address, created_by, window_start,"
        " window_end) VALUES (%s, %s, '1 Road', 'test', %s, %s) RETURNING id",
        (
            f"SO-{customer}",
            customer,
            datetime(2026, 11, 22, 8, tzinfo=UTC),
            datetime(2026, 11, 22, 10, tzinfo=UTC),
        ),
    ).fetchone()[0]


def _move(conn: psycopg.Connection, order_id: int, to_state: str, kind: str = "state") -> None:
    conn.execute(
        "INSERT INTO order_events (order_id, kind, to_state, actor) VALUES (%s, %s, %s, 'test')",
        (order_id, kind, to_state),
    )


def _outbox(conn: psycopg.Connection, order_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT event, status, locale FROM notifications WHERE order_id = %s ORDER BY id",
        (order_id,),
    ).fetchall()


def test_each_customer_facing_move_writes_one_outbox_row(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        order_id = _order(conn, locale="zh-CN")
        _move(conn, order_id, "created", kind="created")
        for state in ("picking", "picked", "packed", "loaded", "in_transit", "arriving"):
            _move(conn, order_id, state)
        _move(conn, order_id, "arrived")
        _move(conn, order_id, "arrived")  # redelivered
        _move(conn, order_id, "delivered")
        _move(conn, order_id, "delivered", kind="note")  # not a move
        assert _outbox(conn, order_id) == [
            ("confirmed", "pending", "zh-CN"),
            ("dispatched", "pending", "zh-CN"),
            ("arriving", "pending", "zh-CN"),
            ("arrived", "pending", "zh-CN"),
            ("delivered", "pending", "zh-CN"),
        ]
        payload = conn.execute(
            "SELECT payload FROM notifications WHERE order_id = %s AND event = 'arrived'",
            (order_id,),
        ).fetchone()[0]
        number = conn.execute("SELECT number FROM orders WHERE id = %s", (order_id,)).fetchone()
        assert payload["order_number"] == number[0]
        assert payload["customer_name"] == "Ann Lee"
        assert payload["window_start"] == "2026-11-22T08:00:00Z"
        assert payload["window_end"] == "2026-11-22T10:00:00Z"
        assert payload["at"].endswith("Z")


def test_the_trigger_agrees_with_the_pure_table(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for state, event in EVENT_FOR_STATE.items():
            order_id = _order(conn)
            _move(conn, order_id, state)
            assert [r[0] for r in _outbox(conn, order_id)] == [event.value]


def test_one_statement_with_the_same_move_twice_writes_one_row(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        order_id = _order(conn)
        conn.execute(
            "INSERT INTO order_events (order_id, kind, to_state, actor)"
            " VALUES (%s, 'state', 'arrived', 'a'), (%s, 'state', 'arrived', 'b')",
            (order_id, order_id),
        )
        assert _outbox(conn, order_id) == [("arrived", "pending", "en")]


def test_the_outbox_row_commits_or_rolls_back_with_the_move(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        order_id = _order(conn)
        with pytest.raises(RuntimeError), conn.transaction():
            _move(conn, order_id, "in_transit")
            assert _outbox(conn, order_id) == [("dispatched", "pending", "en")]
            raise RuntimeError("the state change fails")
        assert _outbox(conn, order_id) == []


def test_two_connections_applying_the_same_move_concurrently_write_one_row(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        order_id = _order(conn)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with psycopg.connect(database_url) as c:
                barrier.wait(timeout=10)
                _move(c, order_id, "arrived")
                c.commit()
        except BaseException as e:  # surfaced below
            errors.append(e)

    for _round in range(5):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        barrier.reset()
    assert errors == []
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert _outbox(conn, order_id) == [("arrived", "pending", "en")]
        events = conn.execute(
            "SELECT count(*) FROM order_events WHERE order_id = %s", (order_id,)
        ).fetchone()[0]
        assert events == 10


def test_both_transactions_open_at_once_still_write_one_row(database_url: str) -> None:
    """The second writer waits on the first's uncommitted outbox row, then does nothing."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        order_id = _order(conn)
    first = psycopg.connect(database_url)
    second = psycopg.connect(database_url)
    try:
        _move(first, order_id, "delivered")
        done = threading.Event()

        def later() -> None:
            _move(second, order_id, "delivered")  # blocks until `first` commits
            done.set()

        t = threading.Thread(target=later)
        t.start()
        assert not done.wait(0.5)
        first.commit()
        t.join(timeout=10)
        assert done.is_set()
        second.commit()
    finally:
        first.close()
        second.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert _outbox(conn, order_id) == [("delivered", "pending", "en")]


def test_exceptions_on_an_order_notify_once_per_kind_and_only_customer_facing_ones(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        order_id = _order(conn)
        raised = [
            ("delay", "d1"),
            ("delay", "d2"),
            ("damage", "x1"),
            ("damage", "x2"),
            ("short_load", "s1"),
            ("wrong_load", "w1"),  # internal: the customer hears nothing
            ("stale_tracker", "t1"),
        ]
        for kind, key in raised:
            conn.execute(
                "INSERT INTO exceptions (kind, summary, order_id, opened_by, dedup_key)"
                " VALUES (%s, 'internal words', %s, 'rule:test', %s)",
                (kind, order_id, key),
            )
        conn.execute(
            "INSERT INTO exceptions (kind, summary, opened_by) VALUES ('delay', 'no order', 't')"
        )
        rows = conn.execute(
            "SELECT event, dedup_key, payload->>'reason', payload ? 'summary' FROM notifications"
            " WHERE order_id = %s ORDER BY id",
            (order_id,),
        ).fetchall()
        assert rows == [
            ("delayed", "delayed", None, False),
            ("exception", "exception:damage", "damage", False),
            ("exception", "exception:short_load", "short_load", False),
        ]
        assert {r[2] for r in rows if r[2]} == set(CUSTOMER_REASONS)
        assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (3,)


def test_the_trigger_raises_exactly_the_events_the_enum_lists(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        check = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'notifications_event_check'"
        ).fetchone()[0]
    for event in NotificationEvent:
        assert f"'{event.value}'" in check
    assert check.count("'::text") == len(NotificationEvent)


def test_customers_locale_is_checked(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO customers (ref, name, locale) VALUES ('c', 'n', 'fr')")
        conn.execute("INSERT INTO customers (ref, name) VALUES ('d', 'n')")
        assert conn.execute("SELECT locale FROM customers WHERE ref = 'd'").fetchone() == ("en",)
