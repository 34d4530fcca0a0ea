"""Dock feedback: verdicts from the broker and from local rejections reach the outputs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from edge_agent import EdgeAgent, GatewayConfigError, feedback, feedback_outputs
from edge_agent.feedback import UNKNOWN_KIND_SHOWN_AS, DockFeedback
from edge_agent.feedback_outputs.console import ConsoleOutput
from event_contract import ReadPoint, Verdict, VerdictKind, feedback_topic, new_event_id
from mqtt_client import BrokerAddress
from simulators.scanner import ScannerSimConfig, ScannerSimulator, make_sscc
from tests.mqtt_helpers import publish_all
from tests.test_gateway_health import running, scanner_gateway, until


def test_console_line_names_the_verdict_in_colour_on_a_terminal() -> None:
    verdict = Verdict(
        device="scanner-1",
        read_point=ReadPoint(site="wh1", door="door-3"),
        verdict=VerdictKind.WRONG_TRUCK,
        message="belongs on truck T-7",
        code="00106141410000000011",
        order_ref="SO-42",
    )
    console = ConsoleOutput()
    plain = console.format(verdict, color=False)
    assert plain == (
        "[door-3] scanner-1 WRONG TRUCK 00106141410000000011 (order SO-42) - belongs on truck T-7"
    )
    assert "\x1b[1;31mWRONG TRUCK\x1b[0m" in console.format(verdict, color=True)
    ok = verdict.model_copy(update={"verdict": VerdictKind.ACCEPTED})
    assert "\x1b[1;32mACCEPTED\x1b[0m" in console.format(ok, color=True)


def test_verdicts_from_the_broker_and_local_rejections_reach_the_console(
    mqtt_broker: BrokerAddress, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    topic = feedback_topic("wh1", gateway)
    device = f"{gateway}-scanner"
    event_id = new_event_id()
    verdict = Verdict(
        event_id=event_id,
        device=device,
        read_point=ReadPoint(site="wh1", door="door-1"),
        verdict=VerdictKind.WRONG_ORDER,
        message="package P-9 is not on order SO-1",
        code="00106141410000000028",
        order_ref="SO-1",
        package_ref="P-9",
    )
    good = make_sscc("0614141", 77)
    bad = f"00{good[:-1]}{(int(good[-1]) + 1) % 10}"

    async def scenario() -> dict[str, int]:
        async with ScannerSimulator(ScannerSimConfig(rate_hz=0)) as scanner:
            config = scanner_gateway(gateway, scanner.port)
            assert config.feedback.outputs == ["console"]  # the default
            async with running(EdgeAgent(config, mqtt_broker)) as agent:
                feedback = agent.feedback
                await asyncio.to_thread(
                    publish_all,
                    agent.broker,
                    [
                        (topic, b"not json at all"),
                        (topic, json.dumps({"device": device, "verdict": 5}).encode()),
                        (topic, verdict.model_dump_json().encode()),
                        # From a newer server: a kind this gateway does not know.
                        (topic, json.dumps(NEWER_KIND | {"device": device}).encode()),
                    ],
                )
                await until(lambda: feedback.stats["shown"] >= 2, "the verdicts to be shown")
                assert feedback.stats["malformed"] == 2
                assert feedback.stats["unknown_kind"] == 1

                # A bad check digit never leaves the gateway, but the dock hears of it at once.
                await scanner.server.wait_for_client()
                assert scanner.scan(bad, fault="bad_check_digit")
                await until(lambda: feedback.stats["local"] >= 1, "the local verdict")
                assert feedback.last is not None and feedback.last.origin == "gateway"
                assert agent.events_read[device] == 0
                return agent.counters()

    with caplog.at_level(logging.WARNING, logger="edge_agent.feedback"):
        counters = asyncio.run(scenario())
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if device in line]
    assert lines[0] == (
        f"[door-1] {device} WRONG ORDER 00106141410000000028 (order SO-1, package P-9)"
        " - package P-9 is not on order SO-1"
    )
    assert lines[1] == (
        f"[door-2] {device} WRONG ORDER 00106141410000000035 (order SO-3)"
        " - hold_for_inspection: STOP: pallet held for customs inspection"
    )
    assert lines[2].startswith(f"[door-1] {device} BAD CHECK DIGIT {bad} - ")
    assert lines[2].endswith("[local]") and "check digit" in lines[2]
    assert len(lines) == 3
    assert counters["feedback_malformed"] == 2 and counters["feedback_shown"] == 3
    assert counters["feedback_unknown_kind"] == 1 and counters["feedback_received"] == 2
    malformed = [r.getMessage() for r in caplog.records if "malformed verdict" in r.getMessage()]
    assert len(malformed) == 2 and "not json at all" in malformed[0]
    assert "verdict" in malformed[1]


def test_an_unknown_output_is_refused_with_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(GatewayConfigError, match=r"unknown feedback output 'stack_lite'.*console"):
        scanner_gateway("gw", 5000, feedback={"outputs": ["console", "stack_lite"]})
    with pytest.raises(GatewayConfigError, match="unknown option 'colour'"):
        EdgeAgent(
            scanner_gateway("gw", 5000, feedback={"options": {"console": {"colour": "red"}}}),
            BrokerAddress("127.0.0.1", 1),
        )


def test_a_new_output_is_one_module_and_one_config_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for a stack-light plugin, in its own module found by name.
    (tmp_path / "recorder.py").write_text(
        "SEEN = []\n"
        "class Recorder:\n"
        "    def __init__(self, options):\n"
        "        self.options = options\n"
        "    def show(self, verdict):\n"
        "        SEEN.append((self.options['lamp'], verdict.verdict.value))\n"
        "def make_output(options):\n"
        "    return Recorder(options)\n"
    )
    monkeypatch.setattr(feedback_outputs, "__path__", [*feedback_outputs.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "edge_agent.feedback_outputs.recorder", raising=False)
    config = scanner_gateway(
        "gw",
        5000,
        feedback={"outputs": ["recorder"], "options": {"recorder": {"lamp": "red"}}},
    )
    agent = EdgeAgent(config, BrokerAddress("127.0.0.1", 1))
    try:
        agent.feedback.on_message(
            Verdict(device="gw-scanner", verdict=VerdictKind.UNKNOWN_CODE)
            .model_dump_json()
            .encode()
        )
        recorder = sys.modules["edge_agent.feedback_outputs.recorder"]
        assert recorder.SEEN == [("red", "unknown_code")]
    finally:
        agent.outbox.close()


# -- forward compatibility: unknown verdict kinds are refusals -------------------------------
NEWER_KIND = {
    "schema_version": 1,
    "read_point": {"site": "wh1", "door": "door-2"},
    "verdict": "hold_for_inspection",
    "message": "STOP: pallet held for customs inspection",
    "code": "00106141410000000035",
    "order_ref": "SO-3",
    "decided_at": "2025-06-02T09:14:03.910Z",
}


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Verdict] = []

    def show(self, verdict: Verdict) -> None:
        self.seen.append(verdict)


def _dock() -> tuple[DockFeedback, Recorder]:
    recorder = Recorder()
    return DockFeedback(gateway="gw", outputs=[recorder]), recorder


# The gateway before `order_cancelled` existed: its VerdictKind had every kind but that one.
OldVerdictKind = StrEnum(  # type: ignore[misc]
    "OldVerdictKind", {k.name: k.value for k in VerdictKind if k is not VerdictKind.ORDER_CANCELLED}
)


class OldVerdict(Verdict):
    verdict: OldVerdictKind  # type: ignore[valid-type]


def test_an_old_gateway_shows_order_cancelled_as_a_refusal_with_the_servers_message(
    monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setattr(feedback, "Verdict", OldVerdict)
    dock, recorder = _dock()
    sent = Verdict(
        event_id=new_event_id(),
        device="scanner-1",
        read_point=ReadPoint(site="wh1", door="door-1"),
        verdict=VerdictKind.ORDER_CANCELLED,
        message="STOP: order SO-1057 is cancelled; take package 340123450000018517 off the truck",
        code="00340123450000018517",
        order_ref="SO-1057",
        package_ref="340123450000018517",
    )

    with caplog.at_level(logging.WARNING, logger="edge_agent.feedback"):
        dock.on_message(sent.model_dump_json().encode())
        dock.on_message(sent.model_dump_json().encode())  # at least once: it may come twice

    assert len(recorder.seen) == 2
    shown = recorder.seen[0]
    assert not shown.ok
    assert shown.verdict == UNKNOWN_KIND_SHOWN_AS
    assert shown.message == f"order_cancelled: {sent.message}"
    # Everything else is the server's, untouched.
    assert shown.model_dump(exclude={"verdict", "message"}) == sent.model_dump(
        exclude={"verdict", "message"}
    )
    line = ConsoleOutput(color="never", stream=io.StringIO()).format(shown, color=False)
    assert line == (
        "[door-1] scanner-1 WRONG ORDER 00340123450000018517 (order SO-1057, package"
        " 340123450000018517) - order_cancelled: STOP: order SO-1057 is cancelled;"
        " take package 340123450000018517 off the truck"
    )
    assert dock.counters() == {
        "feedback_received": 2,
        "feedback_local": 0,
        "feedback_shown": 2,
        "feedback_malformed": 0,
        "feedback_unknown_kind": 2,
        "feedback_output_errors": 0,
    }
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # once per kind, not once per verdict
    assert "'order_cancelled' is unknown to this gateway" in warnings[0]


def test_this_gateway_knows_order_cancelled() -> None:
    dock, recorder = _dock()
    sent = Verdict(device="scanner-1", verdict=VerdictKind.ORDER_CANCELLED, message="STOP")
    dock.on_message(sent.model_dump_json().encode())
    assert recorder.seen == [sent]
    assert dock.stats["unknown_kind"] == 0


def test_an_unknown_kind_without_a_message_still_names_the_kind() -> None:
    dock, recorder = _dock()
    dock.on_message(json.dumps({"device": "scanner-1", "verdict": "recount"}).encode())
    (shown,) = recorder.seen
    assert not shown.ok and shown.message.startswith("recount: ")
    assert shown.origin == "server"


def test_a_long_message_with_an_unknown_kind_is_cut_to_the_contracts_limit() -> None:
    dock, recorder = _dock()
    payload = {"device": "scanner-1", "verdict": "recount", "message": "x" * 500}
    dock.on_message(json.dumps(payload).encode())
    (shown,) = recorder.seen
    assert len(shown.message) == 500 and shown.message.startswith("recount: xxx")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not json at all", id="not-json"),
        pytest.param(b'["hold"]', id="json-list"),
        pytest.param({"device": "scanner-1", "verdict": 5}, id="kind-a-number"),
        pytest.param({"device": "scanner-1", "verdict": None}, id="kind-null"),
        pytest.param({"device": "scanner-1"}, id="no-kind"),
        pytest.param({"device": "scanner-1", "verdict": "Hold On"}, id="kind-misspelt"),
        pytest.param({"device": "scanner-1", "verdict": "x" * 65}, id="kind-too-long"),
        pytest.param({"verdict": "hold"}, id="unknown-kind-and-no-device"),
        pytest.param({"device": "scanner-1", "verdict": "hold", "lamp": "red"}, id="extra-field"),
        pytest.param({"device": "scanner-1", "verdict": "hold", "message": None}, id="bad-message"),
        pytest.param(
            {"device": "scanner-1", "verdict": "hold", "schema_version": 2}, id="version-2"
        ),
        pytest.param(
            {"device": "scanner-1", "verdict": "hold", "decided_at": "2025-06-02T09:14:03"},
            id="no-offset",
        ),
    ],
)
def test_a_malformed_verdict_is_still_dropped_counted_and_logged(
    payload: dict[str, Any] | bytes, caplog: Any
) -> None:
    dock, recorder = _dock()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with caplog.at_level(logging.WARNING, logger="edge_agent.feedback"):
        dock.on_message(body)
    assert recorder.seen == []
    assert dock.stats["malformed"] == 1 and dock.stats["unknown_kind"] == 0
    assert dock.stats["received"] == 0 and dock.stats["shown"] == 0
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "ignored a malformed verdict" in warning
