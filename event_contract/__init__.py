"""The event contract between edge gateways and ingest: events, batches, topics.

Imports nothing else of Tracklane's and does no I/O, so both sides (and tests) can use it.
"""

from .batch import (
    MAX_EVENTS_PER_BATCH,
    SCHEMA_VERSION,
    Batch,
    Decoded,
    Reject,
    decode,
    encode,
)
from .events import (
    CodeKind,
    DeviceState,
    DeviceStatus,
    DoorOrStation,
    Event,
    Name,
    PositionEvent,
    ReadPoint,
    ScanEvent,
    Stage,
    new_event_id,
)
from .feedback import FEEDBACK_SCHEMA_VERSION, Verdict, VerdictKind
from .topics import (
    EVENT_KINDS,
    KIND_OF_TYPE,
    EventKind,
    Topic,
    TopicError,
    event_topic,
    feedback_topic,
    gateway_state_topic,
    parse_topic,
    subscription,
)

__all__ = [
    "EVENT_KINDS",
    "FEEDBACK_SCHEMA_VERSION",
    "KIND_OF_TYPE",
    "MAX_EVENTS_PER_BATCH",
    "SCHEMA_VERSION",
    "Batch",
    "CodeKind",
    "Decoded",
    "DeviceState",
    "DeviceStatus",
    "DoorOrStation",
    "Event",
    "EventKind",
    "Name",
    "PositionEvent",
    "ReadPoint",
    "Reject",
    "ScanEvent",
    "Stage",
    "Topic",
    "TopicError",
    "Verdict",
    "VerdictKind",
    "decode",
    "encode",
    "event_topic",
    "feedback_topic",
    "gateway_state_topic",
    "new_event_id",
    "parse_topic",
    "subscription",
]
