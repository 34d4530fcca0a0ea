"""Webhook signatures: what we sign, how, and how a receiver checks it (docs/notifications.md).

The `Tracklane-Signature` header is `t=<unix seconds>,v1=<hex HMAC-SHA256>`; the HMAC key is
the customer's webhook secret (the whole string, `whsec_` included, as UTF-8) and the signed
bytes are `f"{t}."` followed by the raw request body. A receiver recomputes it, accepts the
request only within a few minutes of `t` (the replay window) and drops a
`Tracklane-Notification-Id` it has already seen (at-least-once delivery, and replays inside
the window). During a secret rotation a header may carry several `v1=` entries.

Pure: no I/O, the clock is an argument.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "Tracklane-Signature"
ID_HEADER = "Tracklane-Notification-Id"  # stable per notification: receivers dedupe on it
EVENT_HEADER = "Tracklane-Event"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)
DEFAULT_TOLERANCE_S = 300

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class SignatureError(ValueError):
    """The signature header is malformed, too old or new, or matches no signature."""


def new_secret() -> str:
    """A fresh signing secret: 256 random bits, base64url, prefixed `whsec_`."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Tracklane-Signature` header value for `body` sent at `timestamp`."""
    if not secret:
        raise ValueError("cannot sign with an empty secret")
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed {SIGNATURE_HEADER}: {item.strip()!r} is not key=value")
        if key == "t":
            if timestamp is not None:
                raise SignatureError(f"malformed {SIGNATURE_HEADER}: more than one t=")
            if not _TIMESTAMP.fullmatch(value):
                raise SignatureError(
                    f"malformed {SIGNATURE_HEADER}: t={value!r} is not a unix time in seconds"
                )
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
        # Other schemes (v0, v2, ...) are skipped, so a new one can be added alongside v1.
    if timestamp is None:
        raise SignatureError(f"malformed {SIGNATURE_HEADER}: no t= timestamp")
    if not candidates:
        raise SignatureError(f"malformed {SIGNATURE_HEADER}: no v1= signature")
    return timestamp, candidates


def verify(
    header: str, body: bytes, secret: str, now: int, tolerance_s: int = DEFAULT_TOLERANCE_S
) -> int:
    """The signed timestamp, if one `v1=` of `header` signs `body` with `secret` and the
    timestamp is within `tolerance_s` of `now`; raises SignatureError otherwise."""
    timestamp, candidates = _parse(header)
    expected = _digest(secret, timestamp, body).encode()
    # Compare every candidate (no early exit) and as bytes: compare_digest refuses non-ASCII str.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.lower().encode("utf-8", "replace"))
    if not matched:
        raise SignatureError(
            f"no v1 signature matches: wrong secret, or the body was changed "
            f"({len(candidates)} checked)"
        )
    skew = now - timestamp
    if abs(skew) > tolerance_s:
        when = "old" if skew > 0 else "in the future"
        raise SignatureError(
            f"timestamp {timestamp} is {abs(skew)} s {when}, outside the {tolerance_s} s "
            f"replay window (check the receiver's clock if this is a fresh request)"
        )
    return timestamp


def webhook_body(
    notification_id: int, event: str, payload: Mapping[str, Any], tracking_url: str | None
) -> bytes:
    """The JSON we POST: only these fields, never the customer's name or anything else that
    is in the outbox payload. Compact, keys sorted, UTF-8."""
    body: dict[str, Any] = {
        "id": str(notification_id),
        "event": event,
        "occurred_at": payload["at"],
        "order": {"number": payload["order_number"]},
        "window": {"start": payload.get("window_start"), "end": payload.get("window_end")},
        "tracking_url": tracking_url,
    }
    if "eta" in payload:
        body["eta"] = {
            "at": payload["eta"],
            "earliest": payload.get("eta_earliest"),
            "latest": payload.get("eta_latest"),
        }
    if "reason" in payload:
        body["reason"] = payload["reason"]
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
