"""Dock feedback: verdicts from the broker and from local rejections reach the outputs."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from edge_agent import EdgeAgent, GatewayConfigError, feedback_outputs
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
                        (topic, json.dumps({"device": device, "verdict": "maybe"}).encode()),
                        (topic, verdict.model_dump_json().encode()),
                    ],
                )
                await until(lambda: feedback.stats["shown"] >= 1, "the verdict to be shown")
                assert feedback.stats["malformed"] == 2

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
    assert lines[1].startswith(f"[door-1] {device} BAD CHECK DIGIT {bad} - ")
    assert lines[1].endswith("[local]") and "check digit" in lines[1]
    assert len(lines) == 2
    assert counters["feedback_malformed"] == 2 and counters["feedback_shown"] == 2
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
