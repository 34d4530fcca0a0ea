"""Is a vehicle in a fence? One small state machine per (vehicle, fence), on EVENT time. Pure.

Input per fix: its device time (POSIX seconds), the signed distance in metres from the fix to
the fence's edge (negative inside) and its HDOP. Output: confirmed `entered`/`exited`
transitions, and a small state to keep (`to_json`/`from_json`) in a row, under a lock.

Each fix falls in a zone (`FenceParams.zone`), with distance hysteresis:

    in    distance <= -(inner_margin_m + w)      (inside the fence shrunk by the inner margin)
    out   distance >= +(outer_margin_m + w)      (outside the fence grown by the outer margin)
    band  anything between, and any fix with HDOP above max_hdop: it changes nothing

where w = min(hdop * uere_m, max_widening_m) widens both margins for a poor fix (UERE, the
user-equivalent range error, about 5 m for a civil single-frequency receiver: HDOP x UERE
is the 1-sigma horizontal error). A fix without HDOP is taken as `assumed_hdop`.

Time hysteresis, by the table `RULES`: from a confirmed side, the first fix in the opposite
zone starts a candidate; a fix back on the confirmed side cancels it; band fixes neither
cancel nor advance it. The candidate is confirmed by a fix in the new zone at least
`min_dwell_s` of event time after the candidate began. A `Transition` carries both times:
`at_s`, when the dwell began (the first fix on the new side: our best estimate of when the
vehicle crossed, which is what "arrived at" should say), and `confirmed_at_s`, the fix that
completed the dwell. Before any side is known, the first `in` fix is an entry at once
(`initial=True`, at_s == confirmed_at_s); the first `out` fix settles "outside" silently.

Late fixes. The state keeps a base (the machine as of `base_time_s`) and the fixes of the
last `history_s` of event time (at most `max_fixes`), sorted by time. The confirmed history
is, by construction, the machine run over the accepted fixes in event-time order. A fix is:
- `applied` if it is newer than every kept fix (the usual case), or if it is late but
  replaying the window with it inserted keeps every transition already confirmed in the
  window unchanged: then it may break a pending candidate (a fix back on the old side
  inside the dwell), complete one (an earlier fix on the new side makes the dwell long
  enough), or change nothing (a fix inside an already-confirmed period). Any newly
  confirmed transitions are returned, possibly with times in the past.
- `conflicts` if it would rewrite a transition already confirmed (retract it or move its
  times): confirmed transitions are final, so the fix is counted in `rejected` and dropped.
  A late fix later than the last confirmed transition can never conflict.
- `too_old` if it is older than the window (before `base_time_s`, or more than `history_s`
  behind the newest fix): counted in `rejected` and dropped.
- `duplicate` if a kept fix has the same time (at-least-once delivery): dropped.
So whatever the delivery order, the transitions returned equal those of running the
accepted fixes in event-time order. Parameters are per fence and should not change between
calls; stored fixes keep the zone they were given on arrival.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

UERE_M = 5.0  # typical user-equivalent range error of a civil L1 receiver, metres


class Zone(StrEnum):
    IN = "in"
    OUT = "out"
    BAND = "band"


class Kind(StrEnum):
    ENTERED = "entered"
    EXITED = "exited"


class Verdict(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    TOO_OLD = "too_old"
    CONFLICTS = "conflicts"


class Rule(StrEnum):
    AT_ONCE = "at_once"  # the first decisive fix is inside: entered, initial
    SETTLE = "settle"  # the first decisive fix is outside: now outside, nothing to report
    HOLD = "hold"  # a band fix: nothing changes
    RESET = "reset"  # back on the confirmed side: a pending candidate is cancelled
    DWELL = "dwell"  # on the other side: start or continue the candidate, confirm after dwell


# THE table: (confirmed side, or None before any; the fix's zone) -> what the fix does.
RULES: Mapping[tuple[Zone | None, Zone], Rule] = MappingProxyType(
    {
        (None, Zone.IN): Rule.AT_ONCE,
        (None, Zone.OUT): Rule.SETTLE,
        (None, Zone.BAND): Rule.HOLD,
        (Zone.IN, Zone.IN): Rule.RESET,
        (Zone.IN, Zone.BAND): Rule.HOLD,
        (Zone.IN, Zone.OUT): Rule.DWELL,
        (Zone.OUT, Zone.OUT): Rule.RESET,
        (Zone.OUT, Zone.BAND): Rule.HOLD,
        (Zone.OUT, Zone.IN): Rule.DWELL,
    }
)


def _finite(name: str, value: float, *, minimum: float = 0.0) -> None:
    if not (math.isfinite(value) and value >= minimum):
        raise ValueError(f"fence parameter {name}={value!r}: must be a finite number >= {minimum}")


@dataclass(frozen=True, slots=True)
class FenceParams:
    inner_margin_m: float = 15.0
    outer_margin_m: float = 30.0
    min_dwell_s: float = 60.0
    uere_m: float = UERE_M
    max_widening_m: float = 50.0
    max_hdop: float = 20.0
    assumed_hdop: float = 2.0
    history_s: float = 600.0
    max_fixes: int = 120

    def __post_init__(self) -> None:
        for name in (
            "inner_margin_m",
            "outer_margin_m",
            "min_dwell_s",
            "uere_m",
            "max_widening_m",
            "max_hdop",
            "assumed_hdop",
        ):
            _finite(name, getattr(self, name))
        if not self.history_s >= self.min_dwell_s:
            raise ValueError(
                f"fence parameter history_s={self.history_s!r} is shorter than min_dwell_s="
                f"{self.min_dwell_s!r}: a late fix inside a pending dwell could not be weighed;"
                " raise history_s"
            )
        _finite("history_s", self.history_s)
        if self.max_fixes < 1:
            raise ValueError(f"fence parameter max_fixes={self.max_fixes!r}: must be at least 1")

    def widening_m(self, hdop: float | None) -> float:
        """How much a fix of this HDOP widens both margins, in metres (capped)."""
        h = self.assumed_hdop if hdop is None else hdop
        return min(h * self.uere_m, self.max_widening_m)

    def zone(self, fix: FenceFix) -> Zone:
        """The zone of one fix, with both margins widened by its HDOP."""
        hdop = self.assumed_hdop if fix.hdop is None else fix.hdop
        if hdop > self.max_hdop:
            return Zone.BAND
        widen = self.widening_m(hdop)
        if fix.distance_m <= -(self.inner_margin_m + widen):
            return Zone.IN
        if fix.distance_m >= self.outer_margin_m + widen:
            return Zone.OUT
        return Zone.BAND


@dataclass(frozen=True, slots=True)
class FenceFix:
    time_s: float  # device (fix) time, POSIX seconds
    distance_m: float  # signed distance to the fence's edge, negative inside
    hdop: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_s) and math.isfinite(self.distance_m)):
            raise ValueError(f"fence fix {self!r}: time and distance must be finite")
        if self.hdop is not None and not (math.isfinite(self.hdop) and self.hdop >= 0):
            raise ValueError(f"fence fix {self!r}: hdop must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Kind
    at_s: float  # when the dwell began: the first fix on the new side
    confirmed_at_s: float  # the fix that completed the dwell
    initial: bool = False  # the first decisive fix was already inside


@dataclass(frozen=True, slots=True)
class FenceState:
    """What to persist. `side`/`pending_since_s`: the machine after every accepted fix."""

    side: Zone | None = None
    pending_since_s: float | None = None
    base_side: Zone | None = None
    base_pending_since_s: float | None = None
    base_time_s: float | None = None
    fixes: tuple[tuple[float, Zone], ...] = ()
    rejected: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (plain str, float, int, None and lists)."""
        return {
            "v": 1,
            "side": None if self.side is None else self.side.value,
            "pending_since_s": self.pending_since_s,
            "base": {
                "side": None if self.base_side is None else self.base_side.value,
                "pending_since_s": self.base_pending_since_s,
                "time_s": self.base_time_s,
            },
            "fixes": [[t, zone.value] for t, zone in self.fixes],
            "rejected": self.rejected,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FenceState:
        """The state `to_json` wrote; a ValueError names what is wrong."""
        if data.get("v") != 1:
            raise ValueError(f"fence state version {data.get('v')!r}: expected 1")
        try:
            base = data["base"]
            side, base_side = data["side"], base["side"]
            return cls(
                side=None if side is None else Zone(side),
                pending_since_s=_opt_float(data["pending_since_s"]),
                base_side=None if base_side is None else Zone(base_side),
                base_pending_since_s=_opt_float(base["pending_since_s"]),
                base_time_s=_opt_float(base["time_s"]),
                fixes=tuple((float(t), Zone(z)) for t, z in data["fixes"]),
                rejected=int(data["rejected"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"fence state is malformed ({exc!r}); was it written by to_json?"
            raise ValueError(msg) from exc


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class Stepped:
    state: FenceState
    transitions: tuple[Transition, ...]
    verdict: Verdict


def _run(
    side: Zone | None,
    pending: float | None,
    fixes: Iterable[tuple[float, Zone]],
    min_dwell_s: float,
) -> tuple[Zone | None, float | None, list[Transition]]:
    """The machine over fixes in time order, by the table."""
    out: list[Transition] = []
    for t, zone in fixes:
        rule = RULES[(side, zone)]
        if rule is Rule.AT_ONCE:
            side, pending = zone, None
            out.append(Transition(Kind.ENTERED, t, t, initial=True))
        elif rule is Rule.SETTLE:
            side, pending = zone, None
        elif rule is Rule.RESET:
            pending = None
        elif rule is Rule.DWELL:
            pending = t if pending is None else pending
            if t - pending >= min_dwell_s:
                kind = Kind.ENTERED if zone is Zone.IN else Kind.EXITED
                out.append(Transition(kind, pending, t))
                side, pending = zone, None
    return side, pending, out


def step(state: FenceState, fix: FenceFix, params: FenceParams) -> Stepped:
    """Weigh one fix (in order or late) and return the new state and any confirmed moves."""
    t = fix.time_s
    times = [ft for ft, _ in state.fixes]
    newest = times[-1] if times else None
    too_old = (state.base_time_s is not None and t <= state.base_time_s) or (
        newest is not None and t < newest - params.history_s
    )
    if too_old:
        return Stepped(replace(state, rejected=state.rejected + 1), (), Verdict.TOO_OLD)
    i = bisect.bisect_left(times, t)
    if i < len(times) and times[i] == t:
        return Stepped(state, (), Verdict.DUPLICATE)
    zone = params.zone(fix)
    fixes = (*state.fixes[:i], (t, zone), *state.fixes[i:])
    dwell = params.min_dwell_s
    if i == len(times):
        side, pending, new = _run(state.side, state.pending_since_s, [(t, zone)], dwell)
    else:
        base = (state.base_side, state.base_pending_since_s)
        *_, before = _run(*base, state.fixes, dwell)
        side, pending, after = _run(*base, fixes, dwell)
        if after[: len(before)] != before:
            rejected = replace(state, rejected=state.rejected + 1)
            return Stepped(rejected, (), Verdict.CONFLICTS)
        new = after[len(before) :]
    moved = replace(state, side=side, pending_since_s=pending, fixes=fixes)
    return Stepped(_prune(moved, params), tuple(new), Verdict.APPLIED)


def _prune(state: FenceState, params: FenceParams) -> FenceState:
    """Fold fixes older than the window (or beyond max_fixes) into the base."""
    times = [t for t, _ in state.fixes]
    keep = bisect.bisect_left(times, times[-1] - params.history_s)
    keep = max(keep, len(times) - params.max_fixes)
    if keep <= 0:
        return state
    old = state.fixes[:keep]
    base_side, base_pending, _ = _run(
        state.base_side, state.base_pending_since_s, old, params.min_dwell_s
    )
    return replace(
        state,
        base_side=base_side,
        base_pending_since_s=base_pending,
        base_time_s=old[-1][0],
        fixes=state.fixes[keep:],
    )
