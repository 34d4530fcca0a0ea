"""MQTT topic layout, version 1: `tracklane/v1/{site}/{gateway}/{kind}`.

Event kinds (`scans`, `positions`, `status`) are what ingest consumes; `feedback` (verdicts
for the dock, to the gateway) sits beside them. A gateway's retained health and last will go
to `tracklane/state/v1/{site}/{gateway}`, outside `tracklane/v1/`, so that whatever takes
everything a gateway publishes under `tracklane/v1/#` gets event batches only.

A gateway publishes only under its own `{site}/{gateway}` prefix. Ingest checks the payload
against the topic; per-gateway broker credentials and ACLs (the edge-agent issue) will
enforce the prefix at the broker too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ROOT = "tracklane/v1"
EventKind = Literal["scans", "positions", "status"]
EVENT_KINDS: tuple[EventKind, ...] = ("scans", "positions", "status")
# Which event `type` each topic kind carries.
TYPE_OF_KIND: dict[str, str] = {"scans": "scan", "positions": "position", "status": "status"}
KIND_OF_TYPE: dict[str, EventKind] = {"scan": "scans", "position": "positions", "status": "status"}

_LEVEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Topic:
    site: str
    gateway: str
    kind: str

    def __str__(self) -> str:
        return f"{ROOT}/{self.site}/{self.gateway}/{self.kind}"


class TopicError(ValueError):
    pass


def _prefix(site: str, gateway: str) -> str:
    for label, level in (("site", site), ("gateway", gateway)):
        if not _LEVEL.match(level):
            raise TopicError(f"{label} {level!r} is not a valid topic level (letters, digits, _.-)")
    return f"{ROOT}/{site}/{gateway}"


def event_topic(site: str, gateway: str, kind: EventKind) -> str:
    return f"{_prefix(site, gateway)}/{kind}"


def feedback_topic(site: str, gateway: str) -> str:
    """Where verdicts on a gateway's scans go back to it (see event_contract.feedback)."""
    return f"{ROOT}/{site}/{gateway}/feedback"


STATE_ROOT = "tracklane/state/v1"


def gateway_state_topic(site: str, gateway: str) -> str:
    """The gateway's retained health: its last will (offline) and its periodic status.

    Outside ROOT, so `parse_topic` refuses it and no event subscription matches it; every
    gateway's state is `tracklane/state/v1/+/+`. Broker ACLs must let a gateway write here.
    """
    _prefix(site, gateway)  # validates both levels
    return f"{STATE_ROOT}/{site}/{gateway}"


def subscription(kind: EventKind | Literal["+"] = "+") -> str:
    """The wildcard filter for every gateway's events of one kind (or all kinds)."""
    return f"{ROOT}/+/+/{kind}"


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise TopicError(f"topic {topic!r} is not of the form {ROOT}/{{site}}/{{gateway}}/{{kind}}")
    site, gateway, kind = parts[2], parts[3], parts[4]
    if kind not in EVENT_KINDS:
        raise TopicError(f"topic {topic!r}: unknown kind {kind!r}; expected one of {EVENT_KINDS}")
    if not (_LEVEL.match(site) and _LEVEL.match(gateway)):
        raise TopicError(f"topic {topic!r}: site and gateway must be letters, digits, _.-")
    return Topic(site=site, gateway=gateway, kind=kind)
