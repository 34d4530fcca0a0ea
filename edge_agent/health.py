"""The gateway's health on MQTT: a last will, and a retained status on its state topic.

Anyone (an operator's dashboard, `mosquitto_sub -t 'tracklane/state/v1/+/+'`) sees at once
whether each gateway is up, how deep its outbox is and when each device last read something,
without asking the gateway. The broker keeps the latest message (retained), and publishes
the will (retained too) when the gateway's connection dies without a clean goodbye.

    {"schema_version": 1, "site": "wh1", "gateway": "dock-a", "state": "online",
     "reason": "periodic", "at": "2026-11-22T10:00:00+00:00",
     "counters": {"outbox_depth": 0, "outbox_dropped": 0, ...},
     "devices": {"scanner-1": {"state": "online", "detail": "...", "events_read": 12,
                               "last_read": "2026-11-22T09:59:58+00:00"}}}

The will has the same shape without counters or devices. Ingest does not consume it: the
topic (`gateway_state_topic`) is outside the event tree.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

log = logging.getLogger(__name__)

HEALTH_SCHEMA_VERSION = 1
GatewayState = Literal["online", "offline"]


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    state: str | None  # None: the source has not reported yet
    detail: str | None
    events_read: int
    last_read: datetime | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the agent knows about itself right now."""

    counters: Mapping[str, int]
    devices: Mapping[str, DeviceHealth]


def state_payload(
    *,
    site: str,
    gateway: str,
    state: GatewayState,
    reason: str,
    at: datetime | None = None,
    snapshot: Snapshot | None = None,
) -> bytes:
    """The JSON body for the state topic. Pure."""
    body: dict[str, Any] = {
        "schema_version": HEALTH_SCHEMA_VERSION,
        "site": site,
        "gateway": gateway,
        "state": state,
        "reason": reason,
    }
    if at is not None:
        body["at"] = at.isoformat()
    if snapshot is not None:
        body["counters"] = dict(snapshot.counters)
        body["devices"] = {
            name: {
                "state": d.state,
                "detail": d.detail,
                "events_read": d.events_read,
                "last_read": d.last_read.isoformat() if d.last_read else None,
            }
            for name, d in snapshot.devices.items()
        }
    return json.dumps(body, separators=(",", ":")).encode()


Publish = Callable[[bytes], bool]
"""Publish one retained QoS 1 message on the state topic; False if not connected."""


class GatewayHealth:
    """Publishes the retained status: on every connect, every `interval_s`, and on a stop."""

    def __init__(
        self,
        *,
        site: str,
        gateway: str,
        snapshot: Callable[[], Snapshot],
        interval_s: float,
    ) -> None:
        self.site = site
        self.gateway = gateway
        self.snapshot = snapshot
        self.interval_s = interval_s
        self.published = 0
        self._publish: Publish | None = None

    def will(self) -> bytes:
        """The last will: fixed when connecting, so it carries no counters and no time."""
        return state_payload(
            site=self.site,
            gateway=self.gateway,
            state="offline",
            reason="connection lost without a goodbye (last will)",
        )

    def payload(self, state: GatewayState, reason: str) -> bytes:
        return state_payload(
            site=self.site,
            gateway=self.gateway,
            state=state,
            reason=reason,
            at=datetime.now(UTC),
            snapshot=self.snapshot(),
        )

    def attach(self, publish: Publish) -> None:
        self._publish = publish

    def report(self, reason: str) -> None:
        """Publish the current status as online (skipped while the broker is unreachable:
        a status queued for later would be stale when it arrives)."""
        if self._publish is None:
            return
        if self._publish(self.payload("online", reason)):
            self.published += 1

    async def run(self) -> None:
        """Report every `interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.report("periodic")
            except Exception:
                # A broken snapshot must not end health reporting, nor the agent.
                log.exception("gateway %s: could not publish its status", self.gateway)
