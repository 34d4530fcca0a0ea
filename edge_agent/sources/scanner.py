"""Fixed barcode scanners: a pure line parser, and a TCP source built on it.

A scanner in TCP server mode sends one decoded barcode per line. Configured to transmit
AIM symbology identifiers (ISO/IEC 15424), each line starts with `]` + code character +
modifier, which tells GS1 data (`]C1`, `]d2`, `]Q3`, `]E0`) from plain codes. Checking GS1
element strings and check digits is ingest's job and a later issue's.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from event_contract import CodeKind, Event, ReadPoint, ScanEvent, new_event_id

from ..config import ScannerTcpSourceConfig
from . import Backoff, SourceContext, TcpLineSource

MAX_CODE_LENGTH = 256  # the contract's ScanEvent.code limit

# AIM identifier -> our symbology name. Unknown identifiers are stripped, symbology None.
AIM_SYMBOLOGIES: dict[str, str] = {
    "]C0": "code-128",
    "]C1": "gs1-128",
    "]E0": "ean-13",  # also UPC-A, sent as EAN-13 with a leading 0
    "]E4": "ean-8",
    "]e0": "gs1-databar",
    "]A0": "code-39",
    "]I1": "itf",
    "]d1": "datamatrix",
    "]d2": "gs1-datamatrix",
    "]Q1": "qr",
    "]Q3": "gs1-qr",
}
_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")


class ScanLine(NamedTuple):
    code: str
    symbology: str | None


class ScanLineError(ValueError):
    pass


def parse_scan_line(line: str) -> ScanLine | None:
    """One scanner line to (code, symbology); None for a blank line. No I/O.

    Terminators (CR, LF, CRLF) are stripped; everything else, spaces and GS1's group
    separator (ASCII 29) included, is barcode data and kept as sent.
    """
    line = line.rstrip("\r\n")
    symbology = None
    if _AIM.match(line):
        symbology = AIM_SYMBOLOGIES.get(line[:3])
        line = line[3:]
    if not line:
        return None
    if len(line) > MAX_CODE_LENGTH:
        raise ScanLineError(f"code of {len(line)} characters; at most {MAX_CODE_LENGTH}")
    if "\x00" in line:
        raise ScanLineError("code contains a NUL character")  # line noise, not barcode data
    return ScanLine(line, symbology)


class ScannerTcpSource(TcpLineSource):
    """`async for event in ScannerTcpSource(config, ctx)`: ScanEvents from a scanner on TCP."""

    what = "scanner"
    hint = "scanner (or simulator)"

    def __init__(
        self,
        config: ScannerTcpSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        # No idle timeout: a scanner at a quiet door may rightly say nothing for hours.
        super().__init__(
            device=config.device,
            host=config.host,
            port=config.port,
            ctx=ctx,
            backoff=backoff,
            idle_timeout_s=None,
            max_line=MAX_CODE_LENGTH * 4 + 8,  # room for an AIM id and multi-byte UTF-8
        )
        self.read_point = ReadPoint(
            site=ctx.site, door=config.read_point.door, station=config.read_point.station
        )
        self.stage = config.stage

    def _on_line(self, line: str, received_at: datetime) -> list[Event]:
        try:
            scan = parse_scan_line(line)
        except ScanLineError:
            self.stats["rejected_lines"] += 1
            return []
        if scan is None:
            return []
        # A scanner has no clock of its own: the time it was read is the time it was seen.
        return [
            ScanEvent(
                event_id=new_event_id(),
                device=self.device,
                seq=self.ctx.next_seq(self.device),
                device_time=received_at,
                received_at=received_at,
                code=scan.code,
                code_kind=CodeKind.BARCODE,
                symbology=scan.symbology,
                read_point=self.read_point,
                stage=self.stage,
            )
        ]
