"""Notifications, the pure core: the retry schedule and quiet hours (property tests) and the
templates in both locales. The outbox triggers are in test_notify_triggers.py."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications import (
    LOCALES,
    NotificationEvent,
    QuietHours,
    RetryPolicy,
    next_allowed,
    render,
    retry_delay,
    template_context,
)
from notifications.events import CUSTOMER_REASONS
from notifications.templates import resolve_locale, sample_payload

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
    payload = {**sample_payload(event), **PAYLOAD}
    ctx = template_context(payload, locale, ZoneInfo("Asia/Shanghai"), "https://t.example/t/x")
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


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", list(NotificationEvent))
def test_a_hostile_customer_name_is_escaped_in_html_and_cannot_add_headers(
    event: NotificationEvent, locale: str
) -> None:
    hostile = {
        **sample_payload(event),
        "customer_name": '<script>alert("x")</script><img src=x onerror=1> & Co',
        "order_number": "SO-1\r\nBcc: victim@example.com",
    }
    message = render(event, locale, template_context(hostile, locale, UTC))
    assert "<script>" not in message.html
    assert "<img" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in message.html
    assert "&amp; Co" in message.html
    assert "\r" not in message.subject and "\n" not in message.subject
    assert "Bcc: victim@example.com" in message.subject  # folded onto the one line
    # the plain text part is not HTML: it keeps the name as written
    assert '<script>alert("x")</script>' in message.text


def test_a_moved_eta_is_told_in_the_customers_zone_and_words() -> None:
    payload = sample_payload("eta_moved")  # ETA 09:40Z, between 09:25Z and 10:05Z
    en = render("eta_moved", "en", template_context(payload, "en", ZoneInfo("Europe/London")))
    assert en.subject == "New delivery time for order SO-1001: around Sun 22 Nov, 09:40"
    assert "around Sun 22 Nov, 09:40 (between Sun 22 Nov, 09:25 and Sun 22 Nov, 10:05)" in en.text
    assert "<strong>Sun 22 Nov, 09:40</strong>" in en.html
    zh_ctx = template_context(payload, "zh-CN", ZoneInfo("Asia/Shanghai"))
    zh = render("eta_moved", "zh-CN", zh_ctx)
    assert zh.subject == "订单 SO-1001 预计送达时间已更新：约 11月22日 周日 17:40"  # noqa: RUF001
    assert "（11月22日 周日 17:25 至 11月22日 周日 18:05 之间）" in zh.text  # noqa: RUF001


def test_an_eta_move_without_times_still_reads_well() -> None:
    message = render("eta_moved", "en", template_context(PAYLOAD, "en", UTC))
    assert message.subject == "New delivery time for order SO-1001"
    assert "has changed. We will let you know" in message.text
    assert "None" not in message.text + message.html


@pytest.mark.parametrize(
    ("reason", "en_words", "zh_words"),
    [
        (
            "damage",
            "was damaged on its way to you. We will contact you about a replacement",
            "运输途中受损。我们会尽快与您联系，为您安排补发",  # noqa: RUF001
        ),
        ("short_load", "will follow in a later delivery", "将在后续配送中送达"),
        ("stale_tracker", "We will contact you about it", "我们会尽快与您联系"),  # no wording
    ],
)
def test_an_exception_says_what_happened_in_customer_words_only(
    reason: str, en_words: str, zh_words: str
) -> None:
    payload = {**sample_payload("exception"), "reason": reason, "summary": "driver dropped it"}
    en = render("exception", "en", template_context(payload, "en", UTC))
    zh = render("exception", "zh-CN", template_context(payload, "zh-CN", UTC))
    assert en_words in en.text and en_words in en.html
    assert zh_words in zh.text and zh_words in zh.html
    for message in (en, zh):
        everything = message.subject + message.text + message.html
        assert "driver dropped it" not in everything  # the internal summary is never sent
        if reason not in CUSTOMER_REASONS:
            assert reason not in everything  # nor an internal kind's name


def test_every_customer_reason_has_its_own_subject() -> None:
    for locale in LOCALES:
        subjects = {
            render(
                "exception",
                locale,
                template_context(sample_payload("exception", reason=r), locale, UTC),
            ).subject
            for r in (*CUSTOMER_REASONS, None, "other")
        }
        assert len(subjects) == len(CUSTOMER_REASONS) + 1  # None and "other" read the same
