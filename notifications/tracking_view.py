"""What the customer's tracking page may show: a strict allowlist built from plain rows.

`/t/{token}` and `/t/{token}/status` (ingest_service/api/routers/tracking_page.py) read the
rows; this module decides what of them leaves the building. Nothing here knows a customer's
name, email, phone or address, a driver, or any other stop: the input cannot carry them, so
the output cannot leak them. See docs/notifications.md, "Tracking page".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# The customer's steps, in order, and the order states that have reached each.
STEPS = ("confirmed", "dispatched", "arriving", "arrived", "delivered")
CANCELLED = "cancelled"
_STEP_OF_STATE = {
    "created": "confirmed",
    "picking": "confirmed",
    "picked": "confirmed",
    "packed": "confirmed",
    "loaded": "confirmed",
    "in_transit": "dispatched",
    "arriving": "arriving",
    "arrived": "arrived",
    "delivered": "delivered",
    "cancelled": CANCELLED,
}
# order_events.to_state (or kind 'created') → the step it reached.
_STEP_OF_EVENT = {
    "created": "confirmed",
    "in_transit": "dispatched",
    "arriving": "arriving",
    "arrived": "arrived",
    "delivered": "delivered",
    "cancelled": CANCELLED,
}
CLOSED_STATES = frozenset({"delivered", "cancelled"})
ON_THE_WAY = frozenset({"in_transit", "arriving"})
STATUS_KEYS = frozenset(
    {"order_number", "state", "timeline", "window", "eta", "delayed", "vehicle", "expires_at"}
)
LANGUAGES = ("en", "zh-CN")


@dataclass(frozen=True, slots=True)
class OrderRow:
    """The order's own columns the page may use."""

    number: str
    state: str
    created_at: datetime
    window_start: datetime | None = None
    window_end: datetime | None = None
    closed_at: datetime | None = None  # when it was delivered or cancelled


@dataclass(frozen=True, slots=True)
class StopRow:
    """The order's trip and stop: the trip's state, its next stop, this stop's ETA."""

    trip_state: str
    stop_seq: int
    next_stop_seq: int | None  # the lowest seq not yet arrived or done
    eta_earliest: datetime | None = None
    eta_latest: datetime | None = None


@dataclass(frozen=True, slots=True)
class VehicleFix:
    lat: float
    lon: float
    heading: float | None
    at: datetime


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, to the second."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def link_expires_at(order: OrderRow, days: int) -> datetime | None:
    """When the order's link stops working: `days` after it was delivered or cancelled."""
    if order.state not in CLOSED_STATES:
        return None
    return (order.closed_at or order.created_at) + timedelta(days=days)


def link_is_live(order: OrderRow, days: int, now: datetime) -> bool:
    expires = link_expires_at(order, days)
    return expires is None or now < expires


def step_reached_events(events: Mapping[str, datetime]) -> dict[str, datetime]:
    """{to_state (or 'created'): first time} → {step: first time}, unknown states dropped."""
    out: dict[str, datetime] = {}
    for state, at in events.items():
        step = _STEP_OF_EVENT.get(state)
        if step is not None and (step not in out or at < out[step]):
            out[step] = at
    return out


def timeline(order: OrderRow, reached: Mapping[str, datetime]) -> list[dict[str, Any]]:
    """Every customer step up to the current one (all five while the order is open), each
    with the time it was reached or null; a cancelled order ends with 'cancelled'."""
    times = {**step_reached_events(reached)}
    times.setdefault("confirmed", order.created_at)
    if order.state in CLOSED_STATES and order.closed_at is not None:
        times.setdefault(_STEP_OF_STATE[order.state], order.closed_at)
    if order.state == CANCELLED:
        steps = [s for s in STEPS if s in times and s != "delivered"] + [CANCELLED]
    else:
        steps = list(STEPS)
        current = STEPS.index(_STEP_OF_STATE.get(order.state, "confirmed"))
        # A step after the current one has not happened, whatever an old event says.
        times = {s: t for s, t in times.items() if s in STEPS[: current + 1]}
    return [{"step": s, "at": iso(times.get(s))} for s in steps]


def vehicle_shown(order: OrderRow, stop: StopRow | None) -> bool:
    """The vehicle is shown only while this order's stop is the next of its departed trip:
    before that it is serving other customers, after it the route is none of ours."""
    return (
        stop is not None
        and order.state in ON_THE_WAY
        and stop.trip_state == "departed"
        and stop.next_stop_seq is not None
        and stop.next_stop_seq == stop.stop_seq
    )


def tracking_status(
    order: OrderRow,
    *,
    reached: Mapping[str, datetime],
    stop: StopRow | None,
    vehicle: VehicleFix | None,
    delay_open: bool,
    link_days: int,
) -> dict[str, Any]:
    """The JSON of GET /t/{token}/status: exactly the keys in STATUS_KEYS."""
    window = None
    if order.window_start is not None or order.window_end is not None:
        window = {"start": iso(order.window_start), "end": iso(order.window_end)}
    eta = None
    if (
        order.state in ON_THE_WAY
        and stop is not None
        and (stop.eta_earliest is not None or stop.eta_latest is not None)
    ):
        eta = {"earliest": iso(stop.eta_earliest), "latest": iso(stop.eta_latest)}
    fix = None
    if vehicle is not None and vehicle_shown(order, stop):
        fix = {
            "lat": round(vehicle.lat, 5),  # about a metre: enough for a map
            "lon": round(vehicle.lon, 5),
            "heading": None if vehicle.heading is None else round(vehicle.heading),
            "at": iso(vehicle.at),
        }
    return {
        "order_number": order.number,
        "state": _STEP_OF_STATE.get(order.state, "confirmed"),
        "timeline": timeline(order, reached),
        "window": window,
        "eta": eta,
        "delayed": delay_open and order.state not in CLOSED_STATES,
        "vehicle": fix,
        "expires_at": iso(link_expires_at(order, link_days)),
    }


def choose_language(accept_language: str | None) -> str:
    """zh-CN or en from an Accept-Language header: the highest q among the languages we
    have (zh-* → zh-CN, en-* or * → en); en when none of them is asked for."""
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        language = tag.strip().lower().split("-")[0]
        found = {"zh": "zh-CN", "en": "en", "*": "en"}.get(language)
        if found and q > 0:
            ranked.append((-q, n, found))
    return min(ranked)[2] if ranked else "en"
