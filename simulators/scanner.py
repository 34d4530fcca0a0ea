"""A barcode scanner on TCP and on a pty: one decoded code per line, with AIM identifiers.

Mostly GS1-128 SSCC labels (`]C1` + AI 00 + 18 digits with a valid check digit), now and
then a plain code without an identifier, as from an internal label; when configured, a
misread (a label read only in part) or an SSCC with a wrong check digit (a mistyped or
badly printed label), which the gateway must refuse.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Literal

from .pty_device import PtyDevice
from .tcp_server import TcpDevice

Fault = Literal["misread", "bad_check_digit"]


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
    misread_every: int = 0  # every Nth automatic scan is cut short; 0 for never
    bad_check_every: int = 0  # every Nth automatic scan has a wrong check digit; 0 for never
    pty: bool = False  # also serve on a pseudo-terminal, as a serial scanner
    pty_link: str | None = None  # a stable path (symlink) to the pty, kept across hang-ups

    def __post_init__(self) -> None:
        if min(self.rate_hz, self.plain_every, self.misread_every, self.bad_check_every) < 0:
            raise ValueError(
                "rate_hz, plain_every, misread_every and bad_check_every must not be negative"
            )
        if self.terminator not in ("\r\n", "\r", "\n"):
            raise ValueError("terminator must be CRLF, CR or LF")


@dataclass(slots=True)
class SentScan:
    line: str  # as sent, AIM identifier included, terminator excluded
    code: str  # the data, without the identifier
    symbology: str | None
    fault: Fault | None = None  # None: a good scan the gateway must publish


class ScannerSimulator(TcpDevice):
    """`async with ScannerSimulator(ScannerSimConfig(rate_hz=5)) as scanner:`.

    Serves TCP clients, and with `pty=True` a serial client on `scanner.pty_path` as well.
    Automatic scans on TCP alone happen only while a client is connected (nobody scans into
    a dead terminal); with a pty they always happen, since a pty cannot tell whether anyone
    has the port open. Every line that reached a client (or the pty) is recorded in `sent`.
    """

    name = "scanner simulator"

    def __init__(self, config: ScannerSimConfig | None = None) -> None:
        self.config = config or ScannerSimConfig()
        super().__init__(self.config.host, self.config.port)
        self.sent: list[SentScan] = []
        self._serial = self.config.first_serial
        self._count = 0
        self._rng = random.Random(self.config.seed)
        wants_pty = self.config.pty or self.config.pty_link is not None
        self.pty = PtyDevice(self.config.pty_link, self.name) if wants_pty else None

    @property
    def pty_path(self) -> str:
        """The serial port a client opens (the link, if configured)."""
        if self.pty is None:
            raise RuntimeError(f"{self.name}: not serving on a pty; set pty=True")
        return self.pty.path

    async def start(self) -> None:
        if self.pty is not None:
            self.pty.open()
        await super().start()

    async def close(self) -> None:
        await super().close()
        if self.pty is not None:
            await asyncio.to_thread(self.pty.close)

    async def hang_up(self) -> None:
        """Close the pty, like unplugging a USB scanner: the client's reads fail."""
        if self.pty is not None:
            await asyncio.to_thread(self.pty.close)

    def plug_in(self) -> None:
        """A new pty behind the same link, like plugging the scanner in again."""
        if self.pty is not None:
            self.pty.open()

    def _should_produce(self) -> bool:
        return self.config.rate_hz > 0

    def scan(
        self,
        code: str,
        *,
        aim: str | None = "]C1",
        symbology: str | None = None,
        fault: Fault | None = None,
    ) -> bool:
        """Send one scan now, e.g. the SSCC of a package the demo is tracking.

        Returns False if no client was connected and no pty open (the scan went nowhere).
        """
        line = f"{aim or ''}{code}"
        data = f"{line}{self.config.terminator}".encode()
        delivered = self.server.send(data) > 0
        if self.pty is not None:
            delivered = self.pty.send(data) or delivered
        if not delivered:
            return False
        self.sent.append(SentScan(line, code, symbology, fault))
        return True

    def next_code(self) -> tuple[str, str | None, str | None]:
        """The next automatic scan as (code, AIM identifier, symbology)."""
        return self._next()[:3]

    def _next(self) -> tuple[str, str | None, str | None, Fault | None]:
        self._count += 1
        config = self.config
        if config.plain_every and self._count % config.plain_every == 0:
            return f"PKG-{self._rng.randrange(10**6):06d}", None, None, None
        sscc = make_sscc(config.company_prefix, self._serial)
        self._serial += 1
        if config.misread_every and self._count % config.misread_every == 0:
            # A partial read: the end of the label torn off or out of the beam.
            return f"00{sscc[: self._rng.randrange(4, 17)]}", "]C1", "gs1-128", "misread"
        if config.bad_check_every and self._count % config.bad_check_every == 0:
            wrong = (int(sscc[-1]) + self._rng.randrange(1, 10)) % 10
            return f"00{sscc[:-1]}{wrong}", "]C1", "gs1-128", "bad_check_digit"
        return f"00{sscc}", "]C1", "gs1-128", None

    async def _produce(self) -> None:
        period = 1 / self.config.rate_hz
        while True:
            if self.pty is None:
                await self.server.wait_for_client(timeout_s=None)
            code, aim, symbology, fault = self._next()
            self.scan(code, aim=aim, symbology=symbology, fault=fault)
            # Jitter: people do not scan on a metronome.
            await asyncio.sleep(period * self._rng.uniform(0.5, 1.5))
