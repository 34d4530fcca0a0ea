"""Match newly stored scans to packages, orders and products, move them on, judge the load.

Runs inside the ingest writer's transaction, after the scans are inserted and before the
commit, so a scan and what it did are stored together or not at all. The orders concerned
are locked (`FOR UPDATE`, in id order, so workers never deadlock) before anything is decided:
two ingest workers handling scans of one order take turns, each seeing the other's result.
See docs/orders.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from event_contract import ReadPoint, Stage, Verdict, VerdictKind, feedback_topic
from ingest_service.inbound.receiving import InboundDoors
from orders.dispatch import DoorAssignment
from orders.lifecycle import (
    ORDER_RANK,
    Moved,
    OrderState,
    PackageState,
    Trigger,
    after_packages,
    order_move,
)
from orders.scan_keys import ScanKeys, scan_keys
from orders.scan_rules import (
    Decision,
    OrderView,
    PackageView,
    decide_order_label,
    decide_package,
    decide_product,
    decide_unknown,
)

from .changes import Changes, OrderRow, PackageRow
from .loading import Loaded, load

log = logging.getLogger(__name__)
PICKED_RANK = ORDER_RANK[OrderState.PICKED]


@dataclass(frozen=True, slots=True)
class NewScan:
    """A scan the writer has just inserted (not a duplicate): the columns matching needs."""

    event_id: UUID
    time: datetime
    site: str
    gateway: str
    device: str
    code: str
    code_kind: str
    symbology: str | None
    door: str | None
    station: str | None
    stage: str | None

    @property
    def read_point(self) -> dict[str, Any]:
        return {"site": self.site, "door": self.door, "station": self.station}

    @property
    def actor(self) -> str:
        return f"gateway:{self.site}/{self.gateway}/{self.device}"


Outgoing = tuple[str, bytes]  # (feedback topic, verdict JSON)


def _verdict(scan: NewScan, d: Decision, order: str | None, package: str | None) -> Outgoing:
    verdict = Verdict(
        event_id=scan.event_id,
        device=scan.device,
        read_point=ReadPoint(site=scan.site, door=scan.door, station=scan.station)
        if scan.door or scan.station
        else None,
        verdict=d.verdict,
        message=d.message[:500],
        code=scan.code[:256],
        order_ref=order,
        package_ref=package,
    )
    return feedback_topic(scan.site, scan.gateway), verdict.model_dump_json().encode()


class ScanMatcher:
    def match(self, conn: psycopg.Connection[Any], scans: Sequence[NewScan]) -> list[Outgoing]:
        """Match `scans` inside the caller's transaction; the verdicts to publish after it
        commits. A failure of the order logic costs a savepoint, never the scans."""
        if not scans:
            return []
        try:
            with conn.transaction():
                return self._match(conn, scans)
        except psycopg.OperationalError:
            raise  # the database is away: the writer retries the whole batch
        except Exception as err:
            log.exception("order matching failed on %d scans; kept them as unmatched", len(scans))
            return self._record_failure(conn, scans, f"{type(err).__name__}: {err}")

    def _match(self, conn: psycopg.Connection[Any], scans: Sequence[NewScan]) -> list[Outgoing]:
        keys = {s.event_id: scan_keys(s.code, s.code_kind, s.symbology) for s in scans}
        loaded = load(conn.cursor(row_factory=dict_row), scans, keys)
        inbound = InboundDoors.load(conn, scans)
        changes = Changes()
        out: list[Outgoing] = []
        for scan in sorted(scans, key=lambda s: (s.time, s.event_id)):
            k = keys[scan.event_id]
            if k.invalid is None and inbound.takes(scan):  # reconciled against the door's ASN
                out.append(self._receive(scan, k, loaded, inbound, changes))
            else:
                out.append(self._one(scan, k, loaded, changes))
        inbound.write(conn)
        changes.write(conn, list(loaded.orders.values()), list(loaded.packages.values()))
        return out

    @staticmethod
    def _receive(
        scan: NewScan, k: ScanKeys, db: Loaded, inbound: InboundDoors, changes: Changes
    ) -> Outgoing:
        product = db.products.get(k.gtin) if k.gtin else None
        verdict, message, sscc = inbound.reconcile(
            scan, k, product[0] if product else None, changes
        )
        return _verdict(scan, Decision(VerdictKind(verdict), message), None, sscc)

    def _one(self, scan: NewScan, k: ScanKeys, db: Loaded, changes: Changes) -> Outgoing:
        stage = Stage(scan.stage) if scan.stage else None
        door = db.doors.get((scan.site, scan.door)) if scan.door else None
        if scan.door and door is None:
            door = DoorAssignment(door=scan.door, trip=None, vehicle=None)
        base = (scan.event_id, scan.site, scan.gateway, scan.door, scan.station)
        if k.invalid is not None:
            kind = VerdictKind.BAD_CHECK_DIGIT if k.bad_check_digit else VerdictKind.INVALID_CODE
            d = Decision(kind, k.invalid)
            self._unmatched(scan, k.invalid, changes)
            changes.outcomes.append((*base, "invalid", None, None, None, d.verdict, d.message))
            return _verdict(scan, d, None, None)
        package = db.package_for(k)
        order = db.order_by_number.get(k.label) if k.label and package is None else None
        if package is not None:
            order = db.orders[package.order_id]
            d = decide_package(_view(package, order), stage, door)
            self._apply(d, scan, order, package, door, changes)
            changes.outcomes.append(
                (*base, "package", order.id, package.id, None, d.verdict, d.message)
            )
            return _verdict(scan, d, order.number, package.sscc)
        if order is not None:
            views = [_view(p, order) for p in order.packages]
            d = decide_order_label(_order_view(order), stage, views, door)
            only = order.packages[0] if len(order.packages) == 1 else None
            self._apply(d, scan, order, only, door, changes)
            changes.outcomes.append((*base, "order", order.id, None, None, d.verdict, d.message))
            return _verdict(scan, d, order.number, None)
        product = db.products.get(k.gtin) if k.gtin else None
        if product is not None:
            sku, name = product
            d = decide_product(sku, name, stage)
            if stage is Stage.RECEIVE:
                changes.movements.append(
                    (sku, scan.site, 1, "receipt", scan.event_id, None, scan.actor)
                )
            changes.outcomes.append((*base, "product", None, None, sku, d.verdict, d.message))
            return _verdict(scan, d, None, None)
        reason = "no package, order or product has this code"
        d = decide_unknown(scan.code, reason)
        self._unmatched(scan, reason, changes)
        changes.outcomes.append((*base, "unmatched", None, None, None, d.verdict, d.message))
        return _verdict(scan, d, None, None)

    def _apply(
        self,
        d: Decision,
        scan: NewScan,
        order: OrderRow,
        package: PackageRow | None,
        door: DoorAssignment | None,
        changes: Changes,
    ) -> None:
        common = {"evidence": scan.event_id, "read_point": scan.read_point, "actor": scan.actor,
                  "at": scan.time}  # fmt: skip
        if package is not None and d.package_to is not None:
            changes.event(order.id, "package_state", package_id=package.id,
                          from_state=package.state, to_state=d.package_to, **common)  # fmt: skip
            package.state, package.changed = d.package_to, True
        if package is not None and d.load_trip is not None:
            package.loaded_trip, package.loaded_at, package.changed = d.load_trip, scan.time, True
            changes.event(order.id, "loaded", package_id=package.id, detail={"trip": d.load_trip},
                          **common)  # fmt: skip
        if d.exception is not None:
            changes.exceptions.append(
                (d.exception, d.message, order.id, package.id if package else None,
                 door.vehicle if door else None, door.trip if door else None, None,
                 scan.event_id, f"rule:{d.exception}", f"{d.exception}:{scan.event_id}")
            )  # fmt: skip
        before = OrderState(order.state)
        if d.start_picking:
            self._move(order, order_move(before, Trigger.PICK_STARTED, OrderState.PICKING),
                       Trigger.PICK_STARTED, changes, common)  # fmt: skip
        if d.package_to is not None:
            moved = after_packages(
                OrderState(order.state), [PackageState(p.state) for p in order.packages]
            )
            self._move(order, moved, Trigger.PACKAGES, changes, common)
        if ORDER_RANK.get(before, 99) < PICKED_RANK <= ORDER_RANK.get(OrderState(order.state), -1):
            for sku, qty in order.lines:  # the order's goods left the shelves
                changes.movements.append(
                    (sku, order.origin_site, -qty, "pick", scan.event_id, order.id, scan.actor)
                )

    @staticmethod
    def _move(order: OrderRow, outcome: object, trigger: Trigger, changes: Changes,
              common: dict[str, Any]) -> None:  # fmt: skip
        if isinstance(outcome, Moved):
            changes.event(order.id, "state", from_state=outcome.before, to_state=outcome.after,
                          trigger=trigger, **common)  # fmt: skip
            order.state, order.changed = outcome.after, True

    @staticmethod
    def _unmatched(scan: NewScan, reason: str, changes: Changes) -> None:
        changes.unmatched.append(
            (scan.event_id, scan.time, scan.site, scan.gateway, scan.device, scan.code,
             scan.code_kind, scan.symbology, scan.door, scan.station, scan.stage, reason)
        )  # fmt: skip

    def _record_failure(
        self, conn: psycopg.Connection[Any], scans: Sequence[NewScan], error: str
    ) -> list[Outgoing]:
        changes = Changes()
        reason = f"matching failed ({error[:300]}); a dispatcher should check this scan"
        out = []
        for scan in scans:
            self._unmatched(scan, reason, changes)
            d = decide_unknown(scan.code, "the server could not judge it")
            changes.outcomes.append(
                (scan.event_id, scan.site, scan.gateway, scan.door, scan.station, "error",
                 None, None, None, d.verdict, reason)
            )  # fmt: skip
            out.append(_verdict(scan, d, None, None))
        with conn.transaction():
            changes.write(conn, [], [])
        return out


def _order_view(o: OrderRow) -> OrderView:
    return OrderView(o.id, o.number, OrderState(o.state), o.trip_id, len(o.packages))


def _view(p: PackageRow, o: OrderRow) -> PackageView:
    return PackageView(p.id, p.sscc, PackageState(p.state), p.loaded_trip, _order_view(o))
