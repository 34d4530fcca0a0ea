"""Fixed barcode scanners: a pure line parser, the line-to-event stage, and the TCP source.

A scanner sends one decoded barcode per line. Configured to transmit AIM symbology
identifiers (ISO/IEC 15424), each line starts with `]` + code character + modifier, which
tells GS1 data (`]C1`, `]d2`, `]Q3`, `]E0`) from plain codes. `ScanLines` turns a line into
a ScanEvent after `gs1.check_code`: GS1 codes carry their normalized element string, and a
code failing its check digit is counted, logged and kept in `last_rejections` (for the dock
feedback), never published as a scan. The serial source (`scanner_serial`) shares it.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from event_contract import CodeKind, Event, ReadPoint, ScanEvent, Stage, new_event_id
from identifiers.gs1 import Rejected, check_code

from ..config import ScannerTcpSourceConfig
from . import Backoff, SourceContext, TcpLineSource

log = logging.getLogger(__name__)

MAX_CODE_LENGTH = 256  # the contract's ScanEvent.code limit
MAX_LINE_BYTES = MAX_CODE_LENGTH * 4 + 8  # room for an AIM id and multi-byte UTF-8

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


@dataclass(frozen=True, slots=True)
class Rejection:
    """A scan refused at the gateway, for the dock feedback: what, where, when and why."""

    device: str
    read_point: ReadPoint
    at: datetime
    result: Rejected

    @property
    def reason(self) -> str:
        return self.result.reason


OnReject = Callable[[Rejection], None]
"""Called (synchronously, in the event loop) for every rejected scan; must not block."""


class ScanLines:
    """Lines to ScanEvents for one scanner: AIM identifier, GS1 checks, counting rejections.

    Shared by the TCP and serial sources. Counters go into the source's `stats`: lines the
    parser refuses as `rejected_lines`, codes failing GS1 checks as `rejected_<kind>`
    (`rejected_bad_check_digit`, `rejected_bad_element_string`, `rejected_bad_gtin`).
    """

    def __init__(
        self,
        *,
        device: str,
        ctx: SourceContext,
        read_point: ReadPoint,
        stage: Stage | None,
        stats: Counter[str],
        label: Callable[[], str],
        on_reject: OnReject | None = None,
        keep_rejections: int = 100,
    ) -> None:
        self.device = device
        self.ctx = ctx
        self.read_point = read_point
        self.stage = stage
        self.stats = stats
        self.label = label
        self.on_reject = on_reject
        self.last_rejections: deque[Rejection] = deque(maxlen=keep_rejections)

    def events(self, line: str, received_at: datetime) -> list[Event]:
        try:
            scan = parse_scan_line(line)
        except ScanLineError:
            self.stats["rejected_lines"] += 1
            return []
        if scan is None:
            return []
        result = check_code(scan.code, scan.symbology)
        if isinstance(result, Rejected):
            self._reject(result, received_at)
            return []
        # A scanner has no clock of its own: the time it was read is the time it was seen.
        return [
            ScanEvent(
                event_id=new_event_id(),
                device=self.device,
                seq=self.ctx.next_seq(self.device),
                device_time=received_at,
                received_at=received_at,
                code=result.code,
                code_kind=CodeKind.BARCODE,
                symbology=result.symbology,
                read_point=self.read_point,
                stage=self.stage,
            )
        ]

    def _reject(self, result: Rejected, at: datetime) -> None:
        self.stats[f"rejected_{result.kind}"] += 1
        log.info("%s: rejected scan %r: %s", self.label(), result.code, result.reason)
        rejection = Rejection(self.device, self.read_point, at, result)
        self.last_rejections.append(rejection)
        if self.on_reject is not None:
            self.on_reject(rejection)


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
        on_reject: OnReject | None = None,
    ) -> None:
        # No idle timeout: a scanner at a quiet door may rightly say nothing for hours.
        super().__init__(
            device=config.device,
            host=config.host,
            port=config.port,
            ctx=ctx,
            backoff=backoff,
            idle_timeout_s=None,
            max_line=MAX_LINE_BYTES,
        )
        self.read_point = ReadPoint(
            site=ctx.site, door=config.read_point.door, station=config.read_point.station
        )
        self.stage = config.stage
        self.lines = ScanLines(
            device=self.device,
            ctx=ctx,
            read_point=self.read_point,
            stage=self.stage,
            stats=self.stats,
            label=self._label,
            on_reject=on_reject,
        )

    @property
    def last_rejections(self) -> deque[Rejection]:
        return self.lines.last_rejections

    def _on_line(self, line: str, received_at: datetime) -> list[Event]:
        return self.lines.events(line, received_at)
