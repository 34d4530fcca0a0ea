"""Webhook signatures (notifications/signing.py): what a receiver checks holds for any secret,
body and time; a changed byte, another secret or a stale timestamp never passes; the body
carries only the fields we chose to publish."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.signing import (
    SignatureError,
    new_secret,
    sign,
    verify,
    webhook_body,
)

secrets_ = st.text(min_size=1, max_size=80)
bodies = st.binary(max_size=2000)
times = st.integers(min_value=0, max_value=10**11)
skews = st.integers(min_value=-300, max_value=300)


@given(secret=secrets_, body=bodies, t=times, skew=skews)
def test_a_signed_body_verifies_within_the_window(secret: str, body: bytes, t: int, skew: int):
    assert verify(sign(secret, t, body), body, secret, now=t + skew) == t


@given(secret=secrets_, body=bodies, t=times)
def test_the_signature_is_plain_hmac_sha256_of_timestamp_dot_body(secret, body, t):
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    assert sign(secret, t, body) == f"t={t},v1={mac}"


@given(secret=secrets_, body=bodies.filter(bool), t=times, data=st.data())
def test_any_changed_byte_fails(secret: str, body: bytes, t: int, data: st.DataObject):
    i = data.draw(st.integers(0, len(body) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[i]), label="byte")
    tampered = body[:i] + bytes([new]) + body[i + 1 :]
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify(sign(secret, t, body), tampered, secret, now=t)


@given(secret=secrets_, other=secrets_, body=bodies, t=times)
def test_another_secret_fails(secret: str, other: str, body: bytes, t: int):
    if other == secret:
        return
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify(sign(secret, t, body), body, other, now=t)


@given(body=bodies, t=times, body_extra=st.binary(min_size=1, max_size=5))
def test_appending_or_truncating_fails(body: bytes, t: int, body_extra: bytes):
    header = sign("whsec_k", t, body)
    with pytest.raises(SignatureError):
        verify(header, body + body_extra, "whsec_k", now=t)
    if body:
        with pytest.raises(SignatureError):
            verify(header, body[:-1], "whsec_k", now=t)


@given(
    secret=secrets_,
    body=bodies,
    t=times,
    skew=st.integers(301, 10**9) | st.integers(-(10**9), -301),
)
def test_outside_the_window_fails(secret: str, body: bytes, t: int, skew: int):
    with pytest.raises(SignatureError, match="outside the 300 s replay window"):
        verify(sign(secret, t, body), body, secret, now=t + skew)


def test_a_shifted_timestamp_breaks_the_signature():
    # Moving t forward to get a replay back into the window changes what was signed.
    header = sign("whsec_k", 1000, b"{}")
    forged = header.replace("t=1000", "t=5000")
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify(forged, b"{}", "whsec_k", now=5000)


@given(
    old=secrets_,
    new=secrets_,
    body=bodies,
    t=times,
    decoys=st.lists(st.text("0123456789abcdef", min_size=64, max_size=64), max_size=3),
)
def test_several_v1_entries_for_rotation(old, new, body, t, decoys):
    v_old = sign(old, t, body).split(",")[1]
    v_new = sign(new, t, body).split(",")[1]
    header = ",".join([f"t={t}", *(f"v1={d}" for d in decoys), v_old, v_new])
    assert verify(header, body, old, now=t) == t
    assert verify(header, body, new, now=t) == t
    assert verify(header.replace(",", ", "), body, new, now=t) == t  # spaces after commas
    assert verify(f"{header},v2=something-newer", body, new, now=t) == t


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "is not key=value"),
        ("garbage", "is not key=value"),
        ("v1=abc", "no t= timestamp"),
        ("t=123", "no v1= signature"),
        ("t=12a,v1=00", "is not a unix time"),
        ("t=-5,v1=00", "is not a unix time"),
        ("t=+5,v1=00", "is not a unix time"),
        ("t=1,t=2,v1=00", "more than one t="),
    ],
)
def test_malformed_headers_say_what_is_wrong(header: str, message: str):
    with pytest.raises(SignatureError, match=message):
        verify(header, b"{}", "whsec_k", now=1)


def test_non_ascii_signature_is_a_mismatch_not_a_crash():
    with pytest.raises(SignatureError, match="no v1 signature matches"):
        verify("t=1,v1=é", b"{}", "whsec_k", now=1)


def test_new_secrets_are_prefixed_long_and_different():
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and len(a) >= 6 + 43
    assert a != b


PAYLOAD = {
    "order_number": "SO-1",
    "customer_name": "Ann <b>Lee</b>",
    "window_start": "2026-12-08T09:00:00Z",
    "window_end": None,
    "at": "2026-12-07T08:00:00Z",
    "something_internal": "never sent",
}


def test_body_holds_only_the_published_fields():
    body = webhook_body(42, "confirmed", PAYLOAD, "https://t.example/t/abc")
    assert json.loads(body) == {
        "id": "42",
        "event": "confirmed",
        "occurred_at": "2026-12-07T08:00:00Z",
        "order": {"number": "SO-1"},
        "window": {"start": "2026-12-08T09:00:00Z", "end": None},
        "tracking_url": "https://t.example/t/abc",
    }
    assert b"Ann" not in body and b"internal" not in body
    assert b" " not in body  # compact
    assert body == webhook_body(
        42, "confirmed", dict(reversed(PAYLOAD.items())), "https://t.example/t/abc"
    )


def test_eta_and_reason_when_the_event_has_them():
    payload = {
        **PAYLOAD,
        "eta": "2026-12-07T10:00:00Z",
        "eta_earliest": "2026-12-07T09:45:00Z",
        "eta_latest": None,
        "reason": "damage",
    }
    body = json.loads(webhook_body(7, "eta_moved", payload, None))
    assert body["eta"] == {
        "at": "2026-12-07T10:00:00Z",
        "earliest": "2026-12-07T09:45:00Z",
        "latest": None,
    }
    assert body["reason"] == "damage"
    assert body["tracking_url"] is None
    assert set(body) == {
        "id",
        "event",
        "occurred_at",
        "order",
        "window",
        "eta",
        "reason",
        "tracking_url",
    }
