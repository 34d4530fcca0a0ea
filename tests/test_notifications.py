"""Notifications, the pure core and the outbox: the retry schedule and quiet hours (property
tests), the templates in both locales, and the triggers that write one outbox row per order
and customer-facing event in the transaction of the state change."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications import (
    EVENT_FOR_STATE,
    LOCALES,
    NotificationEvent,
    QuietHours,
    RetryPolicy,
    next_allowed,
    render,
    retry_delay,
    template_context,
)
from notifications.templates import resolve_locale

# --- the retry schedule ----------------------------------------------------------------------

policies = st.builds(
    RetryPolicy,
    base_s=st.floats(0.1, 600),
    factor=st.floats(1, 4),
    cap_s=st.floats(600, 86_400),
    jitter_fraction=st.floats(0, 0.49),
    max_attempts=st.integers(1, 30),
)
jitters = st.floats(0, 1, exclude_max=True)


@given(policies, st.integers(1, 10_000), jitters)
def test_a_retry_waits_within_its_jittered_envelope_and_never_beyond_the_cap(
    policy: RetryPolicy, attempt: int, jitter: float
) -> None:
    delay = retry_delay(attempt, jitter, policy)
    envelope = policy.envelope(attempt)
    assert 0 < delay <= envelope <= policy.cap_s
    assert delay >= envelope * (1 - policy.jitter_fraction) - 1e-9


@given(policies, st.integers(1, 200))
def test_the_envelope_grows_exponentially_until_capped(policy: RetryPolicy, attempt: int) -> None:
    now, nxt = policy.envelope(attempt), policy.envelope(attempt + 1)
    assert nxt >= now
    assert nxt == pytest.approx(min(policy.cap_s, now * policy.factor))


@given(st.integers(1, 40), jitters, jitters)
def test_with_doubling_each_retry_waits_longer_than_the_last_until_the_cap(
    attempt: int, j1: float, j2: float
) -> None:
    policy = RetryPolicy(base_s=1, factor=2, cap_s=2**50, jitter_fraction=0.25)
    assert retry_delay(attempt + 1, j2, policy) > retry_delay(attempt, j1, policy)


@given(st.integers(1, 30), st.integers(0, 100))
def test_a_notification_is_dead_after_max_attempts(max_attempts: int, attempts: int) -> None:
    assert RetryPolicy(max_attempts=max_attempts).is_dead(attempts) == (attempts >= max_attempts)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        retry_delay(0, 0.5)
    with pytest.raises(ValueError):
        retry_delay(1, 1.0)
    with pytest.raises(ValueError):
        RetryPolicy(base_s=10, cap_s=5)


# --- quiet hours -----------------------------------------------------------------------------

# Zones without daylight saving, so "local wall-clock" is unambiguous (a DST case is below).
zones = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=8)),
        timezone(timedelta(hours=-5, minutes=-30)),
        ZoneInfo("Asia/Shanghai"),
        ZoneInfo("Asia/Kolkata"),
    ]
)
minutes_of_day = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)


@given(instants, minutes_of_day, minutes_of_day, zones)
def test_a_message_goes_at_the_first_instant_outside_quiet_hours(
    now: datetime, start: time, end: time, zone
) -> None:
    quiet = QuietHours(start, end)
    at = next_allowed(now, quiet, zone)
    assert at >= now
    assert not quiet.contains(at.astimezone(zone).time())
    if not quiet.contains(now.astimezone(zone).time()):
        assert at == now
    else:
        assert at - now <= timedelta(hours=24)
        assert at.astimezone(zone).time() == end  # exactly when the quiet ends
        # and every minute before it, since now, was quiet
        probe = now
        while probe < at:
            assert quiet.contains(probe.astimezone(zone).time())
            probe += timedelta(minutes=17)


@given(instants, zones)
def test_no_quiet_hours_or_an_empty_window_never_waits(now: datetime, zone) -> None:
    assert next_allowed(now, None, zone) == now
    assert next_allowed(now, QuietHours(time(9), time(9)), zone) == now


def test_a_window_across_midnight_ends_the_next_morning() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    quiet = QuietHours(time(22), time(7))
    evening = datetime(2026, 11, 22, 23, 30, tzinfo=shanghai)
    assert next_allowed(evening, quiet, shanghai) == datetime(2026, 11, 23, 7, tzinfo=shanghai)
    early = datetime(2026, 11, 23, 2, 0, tzinfo=shanghai)
    assert next_allowed(early, quiet, shanghai) == datetime(2026, 11, 23, 7, tzinfo=shanghai)
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=shanghai)
    assert next_allowed(noon, quiet, shanghai) == noon


def test_quiet_hours_follow_daylight_saving() -> None:
    london = ZoneInfo("Europe/London")
    quiet = QuietHours(time(21), time(8))
    # The night the clocks go back (2026-10-25): 08:00 local is 08:00 UTC, not 07:00.
    now = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert next_allowed(now, quiet, london) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        next_allowed(datetime(2026, 1, 1), quiet, london)


# --- templates -------------------------------------------------------------------------------

PAYLOAD = {
    "order_number": "SO-1001",
    "customer_name": "Ann Lee",
    "at": "2026-11-22T06:30:00Z",
    "window_start": "2026-11-22T08:00:00Z",
    "window_end": "2026-11-22T10:00:00Z",
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", list(NotificationEvent))
def test_every_event_renders_in_every_locale(event: NotificationEvent, locale: str) -> None:
    ctx = template_context(PAYLOAD, locale, ZoneInfo("Asia/Shanghai"), "https://t.example/t/x")
    message = render(event, locale, ctx)
    for part in (message.subject, message.text, message.html):
        assert "SO-1001" in part
    assert "\n" not in message.subject
    assert "Ann Lee" in message.text and "Ann Lee" in message.html
    assert "https://t.example/t/x" in message.text
    assert 'href="https://t.example/t/x"' in message.html
    assert f'<html lang="{locale}">' in message.html
    assert "{{" not in message.text + message.html + message.subject


def test_chinese_messages_are_in_chinese_with_local_times() -> None:
    ctx = template_context(PAYLOAD, "zh-CN", ZoneInfo("Asia/Shanghai"))
    message = render("dispatched", "zh-CN", ctx)
    assert message.subject == "订单 SO-1001 已发货"
    assert "Ann Lee，您好" in message.text  # noqa: RUF001
    # 06:30 UTC is 14:30 in Shanghai; the window 16:00-18:00.
    assert "11月22日 周日 14:30" in message.text
    assert "预计送达时间：11月22日 周日 16:00 至 11月22日 周日 18:00" in message.text  # noqa: RUF001
    assert "查看配送进度" not in message.text  # no tracking link given


def test_english_messages_use_the_customers_zone() -> None:
    ctx = template_context(PAYLOAD, "en", ZoneInfo("Europe/London"))
    message = render("delivered", "en", ctx)
    assert message.subject == "Order SO-1001 has been delivered"
    assert "delivered on Sun 22 Nov, 06:30" in message.text


def test_an_unknown_locale_falls_back_to_english_and_zh_variants_to_zh_cn() -> None:
    ctx = template_context(PAYLOAD, "fr", UTC)
    assert render("arrived", "fr", ctx).subject == render("arrived", "en", ctx).subject
    assert render("arrived", None, ctx).subject.startswith("Order")
    assert resolve_locale("zh-TW") == "zh-CN"
    assert resolve_locale("zh_CN") == "zh-CN"
    assert resolve_locale("de-DE") == "en"


def test_a_hostile_customer_name_is_escaped_in_html_and_cannot_add_headers() -> None:
    hostile = {
        **PAYLOAD,
        "customer_name": '<script>alert("x")</script><img src=x onerror=1> & Co',
        "order_number": "SO-1\r\nBcc: victim@example.com",
    }
    for locale in LOCALES:
        message = render("confirmed", locale, template_context(hostile, locale, UTC))
        assert "<script>" not in message.html
        assert "<img" not in message.html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in message.html
        assert "&amp; Co" in message.html
        assert "\r" not in message.subject and "\n" not in message.subject
        # the plain text part is not HTML: it keeps the name as written
        assert '<script>alert("x")</script>' in message.text


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


def test_a_delay_exception_on_an_order_notifies_delayed_once(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        order_id = _order(conn)
        for kind, key in (("delay", "d1"), ("delay", "d2"), ("damage", "x1")):
            conn.execute(
                "INSERT INTO exceptions (kind, summary, order_id, opened_by, dedup_key)"
                " VALUES (%s, 'late', %s, 'rule:test', %s)",
                (kind, order_id, key),
            )
        conn.execute(
            "INSERT INTO exceptions (kind, summary, opened_by) VALUES ('delay', 'no order', 't')"
        )
        assert _outbox(conn, order_id) == [("delayed", "pending", "en")]
        assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (1,)


def test_customers_locale_is_checked(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO customers (ref, name, locale) VALUES ('c', 'n', 'fr')")
        conn.execute("INSERT INTO customers (ref, name) VALUES ('d', 'n')")
        assert conn.execute("SELECT locale FROM customers WHERE ref = 'd'").fetchone() == ("en",)
