"""One MQTT message = one batch of 1..N events of one kind from one gateway.

`decode` is the single place where bytes from the broker become events. It never raises on
bad input: whatever it cannot accept comes back as a `Reject` with a reason a person can
read, so the caller can quarantine it and carry on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from pydantic import AwareDatetime, Field, TypeAdapter, ValidationError

from .events import Event, Name, _Frozen
from .topics import TYPE_OF_KIND, Topic, TopicError, parse_topic

SCHEMA_VERSION: Final = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
MAX_EVENTS_PER_BATCH = 5000
DEFAULT_MAX_FUTURE = timedelta(minutes=5)


class Batch(_Frozen):
    schema_version: Literal[1]
    site: Name
    gateway: Name
    sent_at: AwareDatetime
    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class _LooseBatch(_Frozen):
    """The envelope alone, used to salvage good events from a batch with bad ones."""

    schema_version: Literal[1]
    site: Name
    gateway: Name
    sent_at: AwareDatetime
    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


_event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


def encode(batch: Batch) -> bytes:
    return batch.model_dump_json(exclude_none=True).encode()


@dataclass(frozen=True, slots=True)
class Reject:
    """Something that could not be accepted: why, and what to keep (the message's bytes, or
    the one bad event as JSON)."""

    reason: str
    raw: bytes
    event_index: int | None = None


@dataclass(slots=True)
class Decoded:
    topic: Topic | None
    events: list[Any] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def _first_error(err: ValidationError, prefix: str = "") -> str:
    first = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"])
    where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "payload"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def decode(
    topic: str, payload: bytes, *, now: datetime, max_future: timedelta = DEFAULT_MAX_FUTURE
) -> Decoded:
    """Turn one MQTT message into accepted events and rejects with reasons."""
    try:
        parsed = parse_topic(topic)
    except TopicError as err:
        return Decoded(None, rejects=[Reject(str(err), payload)])
    try:
        batch = Batch.model_validate_json(payload)
        events: list[Any] = list(batch.events)
        out = Decoded(parsed)
    except ValidationError as err:
        salvaged = _salvage(parsed, payload, err)
        if isinstance(salvaged, Reject):
            return Decoded(parsed, rejects=[salvaged])
        batch, events, out = salvaged
    envelope_error = _check_envelope(parsed, batch)
    if envelope_error:
        return Decoded(parsed, rejects=[Reject(envelope_error, payload)])
    want_type = TYPE_OF_KIND[parsed.kind]
    horizon = now + max_future
    for index, event in enumerate(events):
        reason = None
        if event.type != want_type:
            reason = f"a {event.type} event on a {parsed.kind} topic"
        elif event.device_time > horizon:
            ahead = event.device_time - now
            reason = (
                f"device_time {event.device_time.isoformat()} is {ahead} ahead of ingest's clock;"
                " check the gateway's or device's clock"
            )
        elif event.type == "scan" and event.read_point.site != parsed.site:
            reason = f"read point site {event.read_point.site!r} is not the topic's site"
        if reason:
            out.rejects.append(Reject(f"events[{index}]: {reason}", _raw_event(event), index))
        else:
            out.events.append(event)
    return out


def _check_envelope(topic: Topic, batch: Batch) -> str | None:
    if batch.gateway != topic.gateway:
        return f"payload gateway {batch.gateway!r} does not match topic gateway {topic.gateway!r}"
    if batch.site != topic.site:
        return f"payload site {batch.site!r} does not match topic site {topic.site!r}"
    return None


def _salvage(
    topic: Topic, payload: bytes, err: ValidationError
) -> Reject | tuple[Batch, list[Any], Decoded]:
    """The batch failed as a whole: say why, or keep its good events and reject the rest."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as bad_json:
        return Reject(f"payload is not valid JSON: {bad_json}", payload)
    except RecursionError:
        return Reject("payload is JSON nested too deeply to read", payload)
    if not isinstance(doc, dict):
        return Reject(f"payload is a JSON {type(doc).__name__}, expected an object", payload)
    version = doc.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return Reject(
            f"unknown schema_version {version!r}; this ingest understands "
            f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}; upgrade ingest before the gateways",
            payload,
        )
    try:
        loose = _LooseBatch.model_validate(doc)
    except ValidationError as envelope_err:
        return Reject(_first_error(envelope_err), payload)
    out = Decoded(topic)
    events: list[Any] = []
    for index, raw in enumerate(loose.events):
        try:
            events.append(_event_adapter.validate_python(raw))
        except ValidationError as event_err:
            reason = _first_error(event_err, f"events[{index}].")
            out.rejects.append(Reject(reason, json.dumps(raw).encode(), index))
    batch = Batch.model_construct(
        schema_version=SCHEMA_VERSION,
        site=loose.site,
        gateway=loose.gateway,
        sent_at=loose.sent_at,
        events=events,
    )
    return batch, events, out


def _raw_event(event: Any) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()
