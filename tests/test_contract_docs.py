"""docs/asyncapi.yaml and docs/event-contract.md against `event_contract`, the truth.

Every example payload in the AsyncAPI document must decode with no reject (a verdict: validate
as `Verdict`; a gateway state: be what edge_agent/health.py builds); its JSON Schemas must
name the same fields, the same required fields and the same types and ranges as the pydantic
models; the reject reasons and verdict kinds the Markdown lists must be the ones the code has.
A change to the contract that the documents do not follow fails here.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, get_args
from uuid import UUID

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from edge_agent import EdgeAgent
from edge_agent.feedback import UNKNOWN_KIND_SHOWN_AS, parse_verdict
from edge_agent.health import (
    HEALTH_SCHEMA_VERSION,
    DeviceHealth,
    GatewayState,
    Snapshot,
    state_payload,
)
from event_contract import (
    EVENT_KINDS,
    KIND_OF_TYPE,
    MAX_EVENTS_PER_BATCH,
    SCHEMA_VERSION,
    Batch,
    DeviceState,
    DeviceStatus,
    PositionEvent,
    ReadPoint,
    ScanEvent,
    Verdict,
    VerdictKind,
    decode,
    event_topic,
    feedback_topic,
    gateway_state_topic,
)
from event_contract.batch import DEFAULT_MAX_FUTURE
from event_contract.topics import ROOT, STATE_ROOT, TYPE_OF_KIND
from mqtt_client import BrokerAddress
from tests.test_gateway_health import scanner_gateway

DOCS = Path(__file__).resolve().parents[1] / "docs"
ASYNCAPI = yaml.safe_load((DOCS / "asyncapi.yaml").read_text(encoding="utf-8"))
CONTRACT_MD = (DOCS / "event-contract.md").read_text(encoding="utf-8")
SCHEMAS: dict[str, Any] = ASYNCAPI["components"]["schemas"]

# Which message and event schema in the document stand for each topic kind.
MESSAGE_OF_KIND = {"scans": "ScanBatch", "positions": "PositionBatch", "status": "StatusBatch"}
EVENT_SCHEMA_OF_KIND = {
    "scans": "ScanEvent",
    "positions": "PositionEvent",
    "status": "DeviceStatus",
}
MODEL_OF_SCHEMA: dict[str, type[BaseModel]] = {
    "ScanEvent": ScanEvent,
    "PositionEvent": PositionEvent,
    "DeviceStatus": DeviceStatus,
    "ReadPoint": ReadPoint,
    "Verdict": Verdict,
}

# Rules the models enforce in validators, which pydantic's JSON schema does not show. The
# document spells them out; test_validator_rules_hold shows that `decode` enforces each.
OFFSET_PATTERN = "([Zz]|[+-][0-9]{2}:?[0-9]{2})$"  # AwareDatetime: an offset is required
NUL_FREE = "^[^\\x00]*$"  # events.Text: PostgreSQL text cannot hold NUL
TEXT_FIELDS = {
    ("ScanEvent", "code"),
    ("ScanEvent", "symbology"),
    ("DeviceStatus", "detail"),
    *(("Verdict", f) for f in ("message", "code", "order_ref", "package_ref")),
}
# The discriminator has a default in each model but `decode` needs it in every event.
EXTRA_REQUIRED_IN_EVENTS = {"type"}
# Verdict.schema_version defaults to 1 and decided_at to the time the gateway parses it (not
# when the verdict was made), so the document tells the server to always send both.
EXTRA_REQUIRED_IN_VERDICT = {"schema_version", "decided_at"}
EXTRA_REQUIRED: dict[str, set[str]] = {
    **{name: EXTRA_REQUIRED_IN_EVENTS for name in EVENT_SCHEMA_OF_KIND.values()},
    "Verdict": EXTRA_REQUIRED_IN_VERDICT,
}
# Batch.schema_version defaults to 1, yet a batch without it that holds one bad event is
# rejected whole as "unknown schema_version None" (see the Markdown's known gaps), so the
# document tells gateways to always send it.
EXTRA_REQUIRED_IN_BATCH = {"schema_version"}

CONSTRAINTS = (
    "type",
    "format",
    "pattern",
    "const",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "maxProperties",
    "default",
)


# -- normalising a JSON Schema so the document's and pydantic's can be compared ------------
def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        path = node["$ref"].removeprefix("#/").split("/")
        target: Any = root
        for part in path:
            target = target[part]
        node = target
    return node


def _shape(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Type, nullability, constraints and nested fields; descriptions and titles dropped."""
    node = _resolve(node, root)
    nullable = False
    if "anyOf" in node:
        options = [_resolve(o, root) for o in node["anyOf"]]
        non_null = [o for o in options if o.get("type") != "null"]
        assert len(non_null) == 1, f"cannot compare a union of {options}"
        nullable = len(non_null) < len(options)
        node = {**non_null[0], **{k: v for k, v in node.items() if k != "anyOf"}}
    kind = node.get("type")
    if isinstance(kind, list):
        nullable = nullable or "null" in kind
        rest = [k for k in kind if k != "null"]
        kind = rest[0] if len(rest) == 1 else rest
    shape = {k: node[k] for k in CONSTRAINTS if k in node}
    shape["type"] = kind
    shape["nullable"] = nullable
    if "enum" in shape:
        shape["enum"] = [v for v in shape["enum"] if v is not None]
    if shape.get("default", ...) is None:
        del shape["default"]
    if kind == "object" and "properties" in node:
        shape["properties"] = {k: _shape(v, root) for k, v in node["properties"].items()}
        shape["required"] = set(node.get("required", []))
        shape["additionalProperties"] = node.get("additionalProperties", True)
    elif kind == "object":  # a map: pydantic's patternProperties, or the document's
        # propertyNames and additionalProperties
        keys: dict[str, Any] = dict(_resolve(node.get("propertyNames", {}), root))
        values = node.get("additionalProperties")
        for pattern, value_schema in node.get("patternProperties", {}).items():
            keys["pattern"], values = pattern, value_schema
        shape["keys"] = {k: keys[k] for k in ("pattern", "minLength", "maxLength") if k in keys}
        shape["values"] = _shape(values, root) if isinstance(values, dict) else values
    return shape


def _with_validator_rules(shape: dict[str, Any], schema_name: str) -> dict[str, Any]:
    """A model's shape plus the validator rules the document writes out."""
    for field, prop in shape["properties"].items():
        if prop.get("format") == "date-time":
            prop["pattern"] = OFFSET_PATTERN
        if (schema_name, field) in TEXT_FIELDS:
            prop["pattern"] = NUL_FREE
    return shape


def _model_shape(model: type[BaseModel], schema_name: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    shape = _with_validator_rules(_shape(schema, schema), schema_name)
    for name, field in model.model_fields.items():
        if field.default_factory is not None:  # pydantic's schema leaves these out
            shape["properties"][name]["default"] = field.default_factory()  # type: ignore[call-arg]
    return shape


def _doc_shape(schema_name: str) -> dict[str, Any]:
    return _shape(SCHEMAS[schema_name], ASYNCAPI)


def _without_defaults_of(shape: dict[str, Any], required: set[str]) -> dict[str, Any]:
    """A default means nothing on a field the document requires."""
    props = {
        name: {k: v for k, v in prop.items() if not (k == "default" and name in required)}
        for name, prop in shape["properties"].items()
    }
    return {**shape, "properties": props}


# -- the schemas ---------------------------------------------------------------------------
@pytest.mark.parametrize("schema_name", sorted(MODEL_OF_SCHEMA))
def test_schema_names_the_models_fields(schema_name: str) -> None:
    model = MODEL_OF_SCHEMA[schema_name]
    doc = SCHEMAS[schema_name]
    model_required = {n for n, f in model.model_fields.items() if f.is_required()}
    extra = EXTRA_REQUIRED.get(schema_name, set())

    assert set(doc["properties"]) == set(model.model_fields)
    assert set(doc["required"]) == model_required | extra
    assert doc["additionalProperties"] is False  # extra="forbid"


@pytest.mark.parametrize("schema_name", sorted(MODEL_OF_SCHEMA))
def test_schema_has_the_models_types_and_ranges(schema_name: str) -> None:
    doc = _doc_shape(schema_name)
    model = _model_shape(MODEL_OF_SCHEMA[schema_name], schema_name)
    model["required"] = doc["required"]  # compared on their own above

    required = doc["required"]
    assert _without_defaults_of(doc, required) == _without_defaults_of(model, required)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_batch_schema_is_the_envelope(kind: str) -> None:
    doc_schema = SCHEMAS[MESSAGE_OF_KIND[kind]]
    model_required = {n for n, f in Batch.model_fields.items() if f.is_required()}
    assert set(doc_schema["properties"]) == set(Batch.model_fields)
    assert set(doc_schema["required"]) == model_required | EXTRA_REQUIRED_IN_BATCH
    assert doc_schema["additionalProperties"] is False

    doc = _doc_shape(MESSAGE_OF_KIND[kind])
    model = _model_shape(Batch, MESSAGE_OF_KIND[kind])
    model["required"] = doc["required"]
    assert doc["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert doc["properties"]["events"]["maxItems"] == MAX_EVENTS_PER_BATCH
    # The model's events are any event; on a topic only that kind's event is accepted.
    items = doc_schema["properties"]["events"]["items"]
    assert items == {"$ref": f"#/components/schemas/{EVENT_SCHEMA_OF_KIND[kind]}"}
    required = doc["required"]
    assert _without_defaults_of(doc, required) == _without_defaults_of(model, required)


def test_event_union_is_discriminated_by_type() -> None:
    event = SCHEMAS["Event"]
    assert event["discriminator"] == "type"
    assert "type" in event["required"]
    assert event["properties"]["type"]["enum"] == list(KIND_OF_TYPE)
    refs = [option["$ref"].rsplit("/", 1)[1] for option in event["oneOf"]]
    assert sorted(refs) == sorted(EVENT_SCHEMA_OF_KIND.values())
    for kind, schema_name in EVENT_SCHEMA_OF_KIND.items():
        assert SCHEMAS[schema_name]["properties"]["type"]["const"] == TYPE_OF_KIND[kind]


# -- topics and operations -----------------------------------------------------------------
def test_channels_are_the_topics() -> None:
    channels = ASYNCAPI["channels"]
    assert set(channels) == {*EVENT_KINDS, "feedback", "gatewayState"}
    for name, channel in channels.items():
        assert set(channel["parameters"]) == {"site", "gateway"}, name
    for kind in EVENT_KINDS:
        assert channels[kind]["address"] == f"{ROOT}/{{site}}/{{gateway}}/{kind}"
    assert channels["feedback"]["address"] == feedback_topic("{site}", "{gateway}")
    state = channels["gatewayState"]["address"]
    assert state == f"{STATE_ROOT}/{{site}}/{{gateway}}"
    assert state.format(site="wh1", gateway="dock-a") == gateway_state_topic("wh1", "dock-a")
    assert channels["feedback"]["messages"] == {
        "verdict": {"$ref": "#/components/messages/Verdict"}
    }
    assert channels["gatewayState"]["messages"] == {
        "gatewayState": {"$ref": "#/components/messages/GatewayState"}
    }

    for server in ASYNCAPI["servers"].values():
        assert server["protocolVersion"] == "5"


# Published retained: only the gateway's state (health.py: publish_retained and the will).
RETAINED_CHANNELS = {"gatewayState"}


def test_every_channel_is_sent_and_received_at_qos_1() -> None:
    actions: dict[str, set[str]] = defaultdict(set)
    for operation in ASYNCAPI["operations"].values():
        channel = operation["channel"]["$ref"].rsplit("/", 1)[1]
        assert operation["bindings"]["mqtt"]["qos"] == 1
        if operation["action"] == "send":
            assert operation["bindings"]["mqtt"]["retain"] is (channel in RETAINED_CHANNELS)
        actions[channel].add(operation["action"])
    assert actions == {name: {"send", "receive"} for name in ASYNCAPI["channels"]}


# -- the examples --------------------------------------------------------------------------
def _examples() -> list[Any]:
    out = []
    for kind in EVENT_KINDS:
        message = ASYNCAPI["components"]["messages"][MESSAGE_OF_KIND[kind]]
        for example in message["examples"]:
            out.append(pytest.param(kind, example["payload"], id=f"{kind}-{example['name']}"))
    return out


@pytest.mark.parametrize(("kind", "payload"), _examples())
def test_example_decodes_without_a_reject(kind: str, payload: dict[str, Any]) -> None:
    topic = event_topic(payload["site"], payload["gateway"], kind)  # type: ignore[arg-type]
    now = datetime.fromisoformat(payload["sent_at"])

    decoded = decode(topic, json.dumps(payload).encode(), now=now)

    assert [r.reason for r in decoded.rejects] == []
    assert len(decoded.events) == len(payload["events"])


@pytest.mark.parametrize(("kind", "payload"), _examples())
def test_example_follows_the_prose(kind: str, payload: dict[str, Any]) -> None:
    """UUIDv7 ids, each once; per-device seq strictly increasing."""
    ids = [UUID(e["event_id"]) for e in payload["events"]]
    assert all(i.version == 7 for i in ids)
    assert len(set(ids)) == len(ids)
    seqs: dict[str, list[int]] = defaultdict(list)
    for event in payload["events"]:
        seqs[event["device"]].append(event["seq"])
    for device_seqs in seqs.values():
        assert device_seqs == sorted(set(device_seqs))


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_examples_show_every_field(kind: str) -> None:
    message = ASYNCAPI["components"]["messages"][MESSAGE_OF_KIND[kind]]
    shown = {f for ex in message["examples"] for e in ex["payload"]["events"] for f in e}
    model = MODEL_OF_SCHEMA[EVENT_SCHEMA_OF_KIND[kind]]
    assert shown == set(model.model_fields)


# -- feedback: verdicts to the dock ---------------------------------------------------------
VERDICT_EXAMPLES = ASYNCAPI["components"]["messages"]["Verdict"]["examples"]
VERDICT_KINDS = [kind.value for kind in VerdictKind]


def _markdown_section(heading: str) -> str:
    """The Markdown from `heading` (a whole line) to the next heading of any level."""
    start = CONTRACT_MD.index(f"\n{heading}\n") + len(heading) + 2
    end = re.compile(r"^#{1,6} ", re.M).search(CONTRACT_MD, start)
    return CONTRACT_MD[start : end.start() if end else len(CONTRACT_MD)]


def _markdown_json(heading: str) -> list[Any]:
    """The JSON code blocks in one section of the Markdown, parsed."""
    blocks = re.findall(r"```json\n(.*?)```", _markdown_section(heading), re.S)
    return [json.loads(block) for block in blocks]


@pytest.mark.parametrize(
    "payload", [pytest.param(e["payload"], id=e["name"]) for e in VERDICT_EXAMPLES]
)
def test_verdict_example_validates(payload: dict[str, Any]) -> None:
    verdict = Verdict.model_validate(payload)
    # What the gateway does with the bytes: JSON mode, as strict as the wire.
    assert Verdict.model_validate_json(json.dumps(payload)) == verdict
    assert set(payload) >= set(SCHEMAS["Verdict"]["required"])
    assert verdict.origin == "server"  # the only origin on the topic
    if verdict.event_id is not None:
        assert verdict.event_id.version == 7


def test_verdict_examples_show_every_field() -> None:
    shown = {field for example in VERDICT_EXAMPLES for field in example["payload"]}
    assert shown == set(Verdict.model_fields)


def test_verdict_kinds_are_the_codes() -> None:
    """A kind added to VerdictKind fails here until both documents describe it."""
    assert SCHEMAS["VerdictKind"]["enum"] == VERDICT_KINDS
    assert SCHEMAS["Verdict"]["properties"]["verdict"] == {
        "$ref": "#/components/schemas/VerdictKind"
    }
    table = _markdown_section("### Verdict kinds")
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert listed == VERDICT_KINDS, "every kind, in the code's order, with what the dock does"


def test_markdown_verdict_example_validates() -> None:
    (example,) = _markdown_json("## Feedback: verdicts to the dock")
    verdict = Verdict.model_validate_json(json.dumps(example))
    assert example == VERDICT_EXAMPLES[0]["payload"]  # the same example in both documents
    assert set(_markdown_table_fields("## Feedback: verdicts to the dock")) == set(
        Verdict.model_fields
    )
    assert not verdict.ok


def _markdown_table_fields(heading: str) -> list[str]:
    return re.findall(r"^\| `([a-z_]+)` \|", _markdown_section(heading), re.M)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"message": "a\x00b"}, id="nul-message"),
        pytest.param({"order_ref": "SO\x00"}, id="nul-order-ref"),
        pytest.param({"decided_at": "2025-06-02T09:14:03.910"}, id="no-offset"),
    ],
)
def test_verdict_validator_rules_hold(payload: dict[str, Any]) -> None:
    good = VERDICT_EXAMPLES[0]["payload"]
    Verdict.model_validate_json(json.dumps(good))
    with pytest.raises(ValidationError):
        Verdict.model_validate_json(json.dumps({**good, **payload}))


def test_markdown_states_that_unknown_verdict_kinds_are_refusals() -> None:
    section = _markdown_section("### Verdicts the gateway does not know")
    assert "**Unknown verdict kinds are refusals.**" in section
    assert f"`{UNKNOWN_KIND_SHOWN_AS.value}`" in section
    assert "`feedback_unknown_kind`" in section and "`feedback_malformed`" in section
    assert "Unknown verdict kinds are refusals" in ASYNCAPI["channels"]["feedback"]["description"]

    newer = {**VERDICT_EXAMPLES[1]["payload"], "verdict": "hold_for_inspection"}
    verdict, unknown = parse_verdict(json.dumps(newer).encode())
    assert unknown == "hold_for_inspection" and not verdict.ok
    assert verdict.message.startswith("hold_for_inspection: ")


# -- the gateway's retained state ------------------------------------------------------------
STATE_EXAMPLES = ASYNCAPI["components"]["messages"]["GatewayState"]["examples"]


def _state_built_like(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload edge_agent/health.py builds from the example's own values."""

    def when(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value is not None else None

    snapshot = None
    if "counters" in payload or "devices" in payload:
        devices = {
            name: DeviceHealth(
                state=d["state"],
                detail=d["detail"],
                events_read=d["events_read"],
                last_read=when(d["last_read"]),
            )
            for name, d in payload["devices"].items()
        }
        snapshot = Snapshot(counters=payload["counters"], devices=devices)
    body = state_payload(
        site=payload["site"],
        gateway=payload["gateway"],
        state=payload["state"],
        reason=payload["reason"],
        at=when(payload.get("at")),
        snapshot=snapshot,
    )
    return json.loads(body)


def _state_examples() -> list[Any]:
    out = [pytest.param(e["payload"], id=e["name"]) for e in STATE_EXAMPLES]
    md = _markdown_json("## Gateway state")
    out += [pytest.param(p, id=f"markdown-{i}") for i, p in enumerate(md)]
    return out


@pytest.mark.parametrize("payload", _state_examples())
def test_state_example_is_what_the_gateway_builds(payload: dict[str, Any]) -> None:
    assert _state_built_like(payload) == payload
    assert set(payload) <= set(SCHEMAS["GatewayState"]["properties"])
    assert set(payload) >= set(SCHEMAS["GatewayState"]["required"])


def test_state_examples_are_the_gateways_will_and_status() -> None:
    online, will = (e["payload"] for e in STATE_EXAMPLES)
    assert will in _markdown_json("## Gateway state")
    assert online in _markdown_json("## Gateway state")

    # A real gateway (wh1/dock-a), not running: its will, and the counters it reports. So a
    # new counter is documented (in the example and in the prose) or this fails.
    agent = EdgeAgent(scanner_gateway("dock-a", 5000), BrokerAddress("127.0.0.1", 1))
    try:
        assert json.loads(agent.health.will()) == will
        status = json.loads(agent.health.payload("online", "periodic"))
    finally:
        agent.outbox.close()
    assert list(online["counters"]) == list(status["counters"])
    assert set(online) == set(status) == set(SCHEMAS["GatewayState"]["properties"])
    device = next(iter(status["devices"].values()))
    for shown in online["devices"].values():
        assert list(shown) == list(device)
    prose = _markdown_section("## Gateway state")
    for counter in status["counters"]:
        assert f"`{counter}`" in prose, counter


def test_state_schema_is_what_health_py_builds() -> None:
    doc = SCHEMAS["GatewayState"]
    will = next(e["payload"] for e in STATE_EXAMPLES if e["payload"]["state"] == "offline")
    assert set(doc["required"]) == set(will)  # the will has only what is always there
    assert doc["properties"]["schema_version"]["const"] == HEALTH_SCHEMA_VERSION
    assert doc["properties"]["state"]["enum"] == list(get_args(GatewayState))
    assert doc["properties"]["devices"]["additionalProperties"] == {
        "$ref": "#/components/schemas/DeviceHealth"
    }
    device = SCHEMAS["DeviceHealth"]
    assert (
        set(device["properties"])
        == set(device["required"])
        == set(DeviceHealth.__dataclass_fields__)
    )
    assert device["properties"]["state"]["enum"] == [s.value for s in DeviceState] + [None]


# -- rules the document adds to pydantic's schema, shown to hold in `decode` ----------------
NOW = datetime.fromisoformat("2025-06-02T09:14:10Z")
SITE, GATEWAY = "wh1", "dock-a"
GOOD_SCAN = {
    "type": "scan",
    "event_id": "01972feb-6b90-7b22-b777-d4dd1fc61c6f",
    "device": "scanner-1",
    "seq": 7,
    "device_time": "2025-06-02T09:14:07.120Z",
    "received_at": "2025-06-02T09:14:07.120Z",
    "code": "4006381333931",
    "code_kind": "barcode",
    "read_point": {"site": SITE, "door": "door-1"},
}
GOOD_STATUS = {
    "type": "status",
    "event_id": "01972feb-67a8-7e07-8085-62bedb8b60ce",
    "device": "scanner-1",
    "seq": 8,
    "device_time": "2025-06-02T09:14:07.120Z",
    "received_at": "2025-06-02T09:14:07.120Z",
    "state": "online",
}


def _batch(*events: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "site": SITE,
        "gateway": GATEWAY,
        "sent_at": "2025-06-02T09:14:08Z",
        "events": list(events),
        **envelope,
    }


def _decode(kind: str, payload: dict[str, Any] | bytes, topic: str | None = None) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode(topic or event_topic(SITE, GATEWAY, kind), body, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "bad_event"),
    [
        pytest.param("scans", {k: v for k, v in GOOD_SCAN.items() if k != "type"}, id="no-type"),
        pytest.param("scans", {**GOOD_SCAN, "code": "a\x00b"}, id="nul-code"),
        pytest.param("scans", {**GOOD_SCAN, "symbology": "ean\x00"}, id="nul-symbology"),
        pytest.param("status", {**GOOD_STATUS, "detail": "bad\x00"}, id="nul-detail"),
        pytest.param(
            "scans",
            {**GOOD_SCAN, "read_point": {"site": SITE, "door": "d1", "station": "s1"}},
            id="door-and-station",
        ),
        pytest.param("scans", {**GOOD_SCAN, "read_point": {"site": SITE}}, id="neither"),
        pytest.param("scans", {**GOOD_SCAN, "device_time": "2025-06-02T09:14:07"}, id="no-offset"),
    ],
)
def test_validator_rules_hold(kind: str, bad_event: dict[str, Any]) -> None:
    decoded = _decode(kind, _batch(bad_event))
    assert decoded.events == []
    assert len(decoded.rejects) == 1


def test_offset_pattern_matches_what_decode_accepts() -> None:
    offset = re.compile(OFFSET_PATTERN)
    for stamp in ("2025-06-02T09:14:07Z", "2025-06-02T09:14:07z", "2025-06-02T11:14:07+02:00"):
        assert offset.search(stamp)
        assert _decode("scans", _batch({**GOOD_SCAN, "device_time": stamp})).rejects == []


# -- the reject reasons the Markdown lists -------------------------------------------------
def _template_regex(template: str) -> re.Pattern[str]:
    literal = re.escape(template)
    return re.compile("^" + re.sub(r"<[^>]+>", ".+", literal) + "$")


WRONG_SITE_SCAN = {**GOOD_SCAN, "read_point": {"site": "wh2", "door": "door-1"}}
FUTURE_SCAN = {**GOOD_SCAN, "device_time": "2025-06-02T09:30:00Z"}
# (case id, topic kind, payload, topic override, template as the Markdown prints it,
#  whether the whole message is lost). Per-event cases put a good event first.
REJECT_CASES = [
    (
        "bad-topic-level",
        "scans",
        _batch(GOOD_SCAN),
        f"{ROOT}/{SITE}/dock a/scans",
        "topic '<topic>': site and gateway must be letters, digits, _.-",
        True,
    ),
    ("not-json", "scans", b"{", None, "payload is not valid JSON: <parser error>", True),
    ("json-list", "scans", b"[]", None, "payload is a JSON <type>, expected an object", True),
    (
        "schema-version-2",
        "scans",
        _batch(GOOD_SCAN, schema_version=2),
        None,
        "unknown schema_version <value>; this ingest understands [1]; "
        "upgrade ingest before the gateways",
        True,
    ),
    (
        "too-many-events",
        "scans",
        _batch(*[GOOD_SCAN] * (MAX_EVENTS_PER_BATCH + 1)),
        None,
        "events: List should have at most 5000 items after validation, not 5001",
        True,
    ),
    (
        "gateway-mismatch",
        "scans",
        _batch(GOOD_SCAN, gateway="dock-b"),
        None,
        "payload gateway '<gateway>' does not match topic gateway '<gateway>'",
        True,
    ),
    (
        "site-mismatch",
        "scans",
        _batch(GOOD_SCAN, site="wh2"),
        None,
        "payload site '<site>' does not match topic site '<site>'",
        True,
    ),
    (
        "field-error",
        "scans",
        _batch(GOOD_SCAN, {**GOOD_SCAN, "read_count": 0}),
        None,
        "events[<i>].<type>.<field>: <problem>",
        False,
    ),
    (
        "no-type",
        "scans",
        _batch(GOOD_SCAN, {k: v for k, v in GOOD_SCAN.items() if k != "type"}),
        None,
        "events[<i>]: Unable to extract tag using discriminator 'type'",
        False,
    ),
    (
        "unknown-type",
        "scans",
        _batch(GOOD_SCAN, {**GOOD_SCAN, "type": "pallet"}),
        None,
        "events[<i>]: Input tag '<type>' found using 'type' does not match any of the "
        "expected tags: 'scan', 'position', 'status'",
        False,
    ),
    (
        "wrong-kind",
        "scans",
        _batch(GOOD_SCAN, GOOD_STATUS),
        None,
        "events[<i>]: a <type> event on a <kind> topic",
        False,
    ),
    (
        "future",
        "scans",
        _batch(GOOD_SCAN, FUTURE_SCAN),
        None,
        "events[<i>]: device_time <time> is <duration> ahead of ingest's clock; "
        "check the gateway's or device's clock",
        False,
    ),
    (
        "read-point-site",
        "scans",
        _batch(GOOD_SCAN, WRONG_SITE_SCAN),
        None,
        "events[<i>]: read point site '<site>' is not the topic's site",
        False,
    ),
]


@pytest.mark.parametrize(
    ("kind", "payload", "topic", "template", "whole_message"),
    [pytest.param(*case[1:], id=case[0]) for case in REJECT_CASES],
)
def test_markdown_lists_the_reject_reason(
    kind: str,
    payload: dict[str, Any] | bytes,
    topic: str | None,
    template: str,
    whole_message: bool,
) -> None:
    assert template in CONTRACT_MD

    decoded = _decode(kind, payload, topic)

    assert len(decoded.rejects) == 1
    reject = decoded.rejects[0]
    assert _template_regex(template).match(reject.reason), reject.reason
    if whole_message:
        assert decoded.events == []
        assert reject.event_index is None
    else:  # one bad event does not cost its neighbour
        assert len(decoded.events) == 1
        assert reject.event_index == 1


def test_markdown_states_the_limits() -> None:
    assert f"1..{MAX_EVENTS_PER_BATCH}" in CONTRACT_MD
    assert f"`schema_version: {SCHEMA_VERSION}`" in CONTRACT_MD
    assert DEFAULT_MAX_FUTURE.total_seconds() == 5 * 60
    assert "at most 5 minutes" in CONTRACT_MD
