"""The demo's inbound shipment: a supplier announces it, the receiving door scans it, one line
comes up short.

Everything goes through the running API as the people would use it: the buyer (the demo's
admin, as a dispatcher) creates the supplier and a purchase order; the supplier's own user
acknowledges it, creates the ASN (two pallets of chairs by SSCC, desks and lamps as units)
with its milestones, and submits it; the dispatcher assigns it to door-2, the inbound door;
the receiving handheld at door-2 (`receiving-scanner`, a scanner simulator over TCP) scans
what arrives, through the edge agent, MQTT and ingest like any scan; two lamps never come,
and when the dispatcher closes receiving the short line is caught (a `short_receipt`
exception and a short receipt). See docs/inbound.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from orders.codes import make_sscc
from simulators.scanner import ScannerSimulator
from tracklane.demo_warehouse import PRODUCTS

log = logging.getLogger(__name__)

SUPPLIER = {"ref": "SUP-NORD", "name": "Nordwerk Furniture", "email": "asn@nordwerk.example",
            "reminder_days": 7}  # fmt: skip
SUPPLIER_PREFIX = "4098765"  # the supplier's (made-up) GS1 company prefix, for its pallets
DOOR = ("wh1", "door-2")
# (product index in PRODUCTS, ordered, shipped in the ASN, how it is scanned, arriving)
LINES = [(0, 12, 12, "pallets", 12), (1, 4, 4, "units", 4), (2, 10, 10, "units", 8)]
PALLETS = 2  # the chairs come on two pallets of six
SCAN_EVERY_S = 1.5


class InboundShipment:
    """`await InboundShipment(api_url, admin, password, database_url).run(stop, scanner)`,
    then `summary()`."""

    def __init__(self, api_url: str, admin: str, password: str, database_url: str) -> None:
        self.api_url = api_url
        self.database_url = database_url
        self.admin = (admin, password)
        self.result: dict[str, Any] = {}

    async def run(self, stop: asyncio.Event, scanner: ScannerSimulator | None) -> None:
        if scanner is None:
            log.warning("demo: no receiving-scanner in the demo configs: no inbound shipment")
            return
        async with httpx.AsyncClient(base_url=f"{self.api_url}/api/v1", timeout=30) as api:
            buyer = await _login(api, *self.admin)
            asn, po, pallets = await self._announce(api, buyer)
            await _ok(api.put(f"/docks/{DOOR[0]}/{DOOR[1]}/asn", json={"asn": asn},
                              headers=buyer))  # fmt: skip
            log.info("demo: inbound: ASN %s for %s assigned to %s", asn, po, DOOR[1])
            scans = [f"00{sscc}" for sscc in pallets]
            for index, _ordered, _shipped, how, arriving in LINES:
                if how == "units":
                    scans += [f"01{PRODUCTS[index][1]}"] * arriving
            for code in scans:
                if stop.is_set():
                    return
                scanner.scan(code, aim="]C1", symbology="gs1-128")
                await asyncio.sleep(SCAN_EVERY_S)
            expected = sum(arriving for *_, arriving in LINES)
            if not await self._all_counted(api, buyer, asn, expected, stop):
                return
            receipt = await _ok(api.post(f"/asns/{asn}/close", headers=buyer))
            self.result = {"purchase_order": po, "asn": asn, "receipt": receipt["number"],
                           "receipt_status": receipt["status"],
                           "lines": [{k: line[k] for k in ("sku", "shipped", "received")}
                                     for line in receipt["lines"]]}  # fmt: skip
            log.info("demo: inbound: %s closed, receipt %s (%s)", asn, receipt["number"],
                     receipt["status"])  # fmt: skip

    async def _announce(
        self, api: httpx.AsyncClient, buyer: dict[str, str]
    ) -> tuple[str, str, list[str]]:
        """The buyer's PO, then the supplier's acknowledgement and submitted ASN."""
        r = await api.post("/suppliers", json=SUPPLIER, headers=buyer)
        if r.status_code != 409:  # made by an earlier demo on this database
            _check(r)
        name, password = f"nordwerk-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        await _ok(api.post("/users", json={"username": name, "password": password,
                                           "role": "supplier"}, headers=buyer))  # fmt: skip
        await _ok(api.post(f"/suppliers/{SUPPLIER['ref']}/users/{name}", headers=buyer))
        supplier = await _login(api, name, password)
        stamp = datetime.now(UTC)
        po = f"PO-{stamp:%y%m%d%H%M%S}"
        lines = [{"sku": PRODUCTS[i][0], "kind": "material", "quantity": ordered}
                 for i, ordered, *_ in LINES]  # fmt: skip
        await _ok(api.post("/purchase-orders", headers=buyer, json={
            "number": po, "supplier": SUPPLIER["ref"], "site": DOOR[0],
            "delivery_date": (stamp + timedelta(days=3)).date().isoformat(),
            "comments": "Pallets labelled with SSCCs, please.", "lines": lines}))  # fmt: skip
        await _ok(api.post(f"/purchase-orders/{po}/acknowledge", headers=supplier))
        serial = int(stamp.timestamp()) % 10**8
        pallets = [make_sscc(SUPPLIER_PREFIX, serial * 10 + n) for n in range(PALLETS)]
        per_pallet = LINES[0][2] // PALLETS
        asn = await _ok(api.post(f"/purchase-orders/{po}/asns", headers=supplier, json={
            "estimated_delivery": stamp.date().isoformat(), "carrier": "Nordwerk Logistics",
            "tracking_number": f"NW{serial}",
            "lines": [{"po_line_no": n, "quantity": shipped}
                      for n, (_, _, shipped, _, _) in enumerate(LINES, start=1)],
            "packages": [{"sscc": s, "po_line_no": 1, "quantity": per_pallet}
                         for s in pallets]}))  # fmt: skip
        number = asn["number"]
        for kind, days in (("fabrication", -10), ("ready_to_pick_up", -2),
                           ("transport_to_plant", 0)):  # fmt: skip
            await _ok(
                api.post(
                    f"/asns/{number}/milestones",
                    headers=supplier,
                    json={
                        "kind": kind,
                        "on_date": (stamp + timedelta(days=days)).date().isoformat(),
                    },
                )
            )
        await _ok(api.post(f"/asns/{number}/submit", headers=supplier))
        log.info("demo: inbound: %s announced ASN %s against %s", SUPPLIER["name"], number, po)
        return number, po, pallets

    async def _all_counted(
        self, api: httpx.AsyncClient, buyer: dict[str, str], asn: str, expected: int,
        stop: asyncio.Event,
    ) -> bool:  # fmt: skip
        """Wait until ingest has counted every scan (they travel through MQTT)."""
        while not stop.is_set():
            state = await _ok(api.get(f"/asns/{asn}/receiving", headers=buyer))
            if sum(line["received"] for line in state["lines"]) >= expected:
                return True
            await asyncio.sleep(1.0)
        return False

    def summary(self) -> dict[str, Any]:
        """What was received against the ASN, and the exceptions receiving raised on it."""
        if not self.result:
            return {"inbound": {"status": "not finished"}}
        with psycopg.connect(self.database_url) as conn:
            kinds = conn.execute(
                "SELECT x.kind, count(*) FROM exceptions x JOIN asns a ON a.id = x.asn_id"
                " WHERE a.number = %s GROUP BY 1 ORDER BY 1",
                (self.result["asn"],),
            ).fetchall()
        return {"inbound": self.result | {"exceptions": dict(kinds)}}


async def _login(api: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    token = await _ok(api.post("/auth/login", json={"username": username, "password": password}))
    return {"Authorization": f"Bearer {token['access_token']}"}


def _check(r: httpx.Response) -> None:
    if r.is_error:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")


async def _ok(call: Any) -> Any:
    r = await call
    _check(r)
    return r.json() if r.content else None
