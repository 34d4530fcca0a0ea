"""A fixed barcode scanner on TCP: one decoded code per line, with AIM symbology identifiers.

Mostly GS1-128 SSCC labels (`]C1` + AI 00 + 18 digits with a valid check digit), now and
then a plain code without an identifier, as from an internal label.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from .tcp_server import TcpDevice


def gs1_check_digit(digits: str) -> int:
    """GS1 mod-10 check digit for `digits` (without the check digit)."""
    if not digits.isdigit():
        raise ValueError(f"GS1 data must be digits, not {digits!r}")
    # Weights 3, 1, 3, ... from the rightmost digit leftwards.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def make_sscc(company_prefix: str, serial: int, extension: int = 0) -> str:
    """An 18-digit SSCC: extension digit, company prefix, serial reference, check digit."""
    width = 16 - len(company_prefix)
    if not 6 <= len(company_prefix) <= 12 or not company_prefix.isdigit():
        raise ValueError(f"GS1 company prefix {company_prefix!r}: 6 to 12 digits")
    if not 0 <= serial < 10**width or not 0 <= extension <= 9:
        raise ValueError(f"serial {serial} does not fit {width} digits (or bad extension)")
    body = f"{extension}{company_prefix}{serial:0{width}d}"
    return f"{body}{gs1_check_digit(body)}"


@dataclass(frozen=True, slots=True)
class ScannerSimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port; read ScannerSimulator.port after start()
    rate_hz: float = 1.0  # automatic scans per second; 0 scans only when scan() is called
    seed: int = 0
    company_prefix: str = "0614141"  # GS1's example prefix
    first_serial: int = 1
    plain_every: int = 5  # every 5th automatic scan is a plain code; 0 for never
    terminator: str = "\r\n"

    def __post_init__(self) -> None:
        if self.rate_hz < 0 or self.plain_every < 0:
            raise ValueError("rate_hz and plain_every must not be negative")
        if self.terminator not in ("\r\n", "\r", "\n"):
            raise ValueError("terminator must be CRLF, CR or LF")


@dataclass(slots=True)
class SentScan:
    line: str  # as sent, AIM identifier included, terminator excluded
    code: str  # the data, without the identifier
    symbology: str | None


class ScannerSimulator(TcpDevice):
    """`async with ScannerSimulator(ScannerSimConfig(rate_hz=5)) as scanner:`.

    Automatic scans happen only while a client is connected (nobody scans into a dead
    terminal); every line that reached a client is recorded in `sent`.
    """

    name = "scanner simulator"

    def __init__(self, config: ScannerSimConfig | None = None) -> None:
        self.config = config or ScannerSimConfig()
        super().__init__(self.config.host, self.config.port)
        self.sent: list[SentScan] = []
        self._serial = self.config.first_serial
        self._count = 0
        self._rng = random.Random(self.config.seed)

    def _should_produce(self) -> bool:
        return self.config.rate_hz > 0

    def scan(self, code: str, *, aim: str | None = "]C1", symbology: str | None = None) -> bool:
        """Send one scan now, e.g. the SSCC of a package the demo is tracking.

        Returns False if no client was connected (the scan went nowhere).
        """
        line = f"{aim or ''}{code}"
        if not self.server.send(f"{line}{self.config.terminator}".encode()):
            return False
        self.sent.append(SentScan(line, code, symbology))
        return True

    def next_code(self) -> tuple[str, str | None, str | None]:
        """The next automatic scan as (code, AIM identifier, symbology)."""
        self._count += 1
        if self.config.plain_every and self._count % self.config.plain_every == 0:
            return f"PKG-{self._rng.randrange(10**6):06d}", None, None
        sscc = make_sscc(self.config.company_prefix, self._serial)
        self._serial += 1
        return f"00{sscc}", "]C1", "gs1-128"

    async def _produce(self) -> None:
        period = 1 / self.config.rate_hz
        while True:
            await self.server.wait_for_client(timeout_s=None)
            code, aim, symbology = self.next_code()
            self.scan(code, aim=aim, symbology=symbology)
            # Jitter: people do not scan on a metronome.
            await asyncio.sleep(period * self._rng.uniform(0.5, 1.5))
