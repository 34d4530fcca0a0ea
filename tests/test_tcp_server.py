"""TCP simulators stop cleanly: closing one with a client connected leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from simulators.gps import GpsSimConfig, GpsSimulator
from simulators.scanner import ScannerSimConfig, ScannerSimulator
from simulators.tcp_server import TcpDevice

DEVICES: dict[str, Callable[[], TcpDevice]] = {
    "scanner": lambda: ScannerSimulator(ScannerSimConfig(port=0, rate_hz=50)),
    "gps": lambda: GpsSimulator(GpsSimConfig(port=0, rate_hz=20)),
}


@pytest.mark.parametrize("kind", sorted(DEVICES))
def test_closing_with_a_client_connected_logs_no_error(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def serve_one_client() -> bytes:
        device = DEVICES[kind]()
        await device.start()
        reader, writer = await asyncio.open_connection(device.host, device.port)
        try:
            await device.wait_for_client()
            first = await asyncio.wait_for(reader.readline(), 10)
            await device.close()
        finally:
            writer.close()
        return first  # at once: what close() left running is cancelled by asyncio.run

    # asyncio.run ends by cancelling what is still running, and asyncio logs what that breaks.
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        first = asyncio.run(serve_one_client())
    assert first.endswith(b"\r\n")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
