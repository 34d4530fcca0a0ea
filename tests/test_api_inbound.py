"""Suppliers, purchase orders and ASNs through the API: the quantity rule over several ASNs,
cancel-and-replace, delete only in draft, material lines only, and who sees what."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.test_api_orders import make_client

API = "/api/v1"
SSCC_1, SSCC_2 = "106141411234567897", "006141411234567890"


def login(client: TestClient, name: str, role: str) -> dict[str, str]:
    password = f"{name}-password-long"
    r = client.post(f"{API}/users", json={"username": name, "password": password, "role": role})
    assert r.status_code == 201, r.text
    r = client.post(f"{API}/auth/login", json={"username": name, "password": password})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def po_body(number: str, supplier: str = "S1", **extra: object) -> dict[str, object]:
    return {
        "number": number,
        "supplier": supplier,
        "site": "wh1",
        "delivery_date": "2026-03-20",
        "comments": "one ASN per truck",
        "lines": [
            {"sku": "SKU-A", "quantity": 10, "unit_price": "2.50"},
            {"sku": "SKU-B", "quantity": 4},
            {"sku": "SKU-B", "kind": "service", "quantity": 1},
        ],
        **extra,
    }


class Parties:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        for ref in ("S1", "S2"):
            body = {"ref": ref, "name": f"Supplier {ref}", "email": f"asn@{ref.lower()}.example"}
            assert client.post(f"{API}/suppliers", json=body).status_code == 201
        self.s1 = login(client, "acme", "supplier")
        self.s2 = login(client, "globex", "supplier")
        self.lonely = login(client, "nobody-yet", "supplier")
        self.dispatcher = login(client, "buyer", "dispatcher")
        for ref, name in (("S1", "acme"), ("S2", "globex")):
            r = client.post(f"{API}/suppliers/{ref}/users/{name}")
            assert r.status_code == 200 and r.json()["users"] == [name], r.text

    def acknowledged_po(self, number: str, supplier: str = "S1") -> None:
        r = self.client.post(f"{API}/purchase-orders", json=po_body(number, supplier))
        assert r.status_code == 201, r.text
        who = self.s1 if supplier == "S1" else self.s2
        r = self.client.post(f"{API}/purchase-orders/{number}/acknowledge", headers=who)
        assert r.status_code == 200, r.text

    def asn(self, po: str, status: int = 201, **body: object) -> dict:
        r = self.client.post(f"{API}/purchase-orders/{po}/asns", json=body, headers=self.s1)
        assert r.status_code == status, r.text
        return r.json()

    def act(self, asn: str, action: str, status: int = 200, **body: object) -> dict:
        r = self.client.post(f"{API}/asns/{asn}/{action}", json=body or None, headers=self.s1)
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture
def parties(database_url: str) -> Iterator[Parties]:
    client = make_client(database_url)
    yield Parties(client)
    client.__exit__(None, None, None)


def lines(of: dict) -> dict[int, int]:
    return {line["po_line_no"]: line["quantity"] for line in of["lines"]}


def test_a_po_is_acknowledged_then_shipped_by_several_asns(parties: Parties) -> None:
    c, p = parties.client, parties
    r = c.post(f"{API}/purchase-orders", json=po_body("PO-1"))
    assert (
        r.status_code == 201 and r.json()["status"] == "sent" and r.json()["created_by"] == "admin"
    )
    early = p.asn("PO-1", status=409)
    assert early["detail"] == "purchase order PO-1 is not acknowledged yet; acknowledge it first"
    acked = c.post(f"{API}/purchase-orders/PO-1/acknowledge", headers=p.s1).json()
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "acme")
    again = c.post(f"{API}/purchase-orders/PO-1/acknowledge", headers=p.s1)
    assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]

    first = p.asn("PO-1", carrier="DHL")  # no lines given: every material line's remainder
    assert first["number"] == "PO-1-ASN1" and first["status"] == "draft"
    assert lines(first) == {1: 10, 2: 4} and first["created_by"] == "acme"
    second = p.asn("PO-1", number="ASN-B", lines=[{"po_line_no": 1, "quantity": 5}])
    assert lines(second) == {1: 5}  # drafts do not block each other
    assert p.act("PO-1-ASN1", "submit")["status"] == "submitted"
    refused = p.act("ASN-B", "submit", status=409)["detail"]
    assert refused == (
        "ASN ASN-B cannot be submitted: ASN ASN-B: PO PO-1 line 1 (SKU-A): 5 to ship, but 10"
        " ordered, 10 already shipped on submitted ASNs, 0 remaining"
    )
    third = p.asn("PO-1", lines=[{"po_line_no": 1, "quantity": 1}], status=422)
    assert "0 remaining" in third["detail"]
    service = p.asn("PO-1", lines=[{"po_line_no": 3, "quantity": 1}], status=422)
    assert (
        "line 3 (SKU-B) is a service line; only material lines go on an ASN" in (service["detail"])
    )
    po = c.get(f"{API}/purchase-orders/PO-1", headers=p.s1).json()
    assert [(x["ordered"], x["shipped"], x["in_drafts"], x["remaining"]) for x in po["lines"]] == [
        (10, 10, 5, 0),
        (4, 4, 0, 0),
        (1, 0, 0, 1),
    ]
    assert [(a["number"], a["status"]) for a in po["asns"]] == [
        ("PO-1-ASN1", "submitted"),
        ("ASN-B", "draft"),
    ]
    nothing_left = p.asn("PO-1", status=409)
    assert "has nothing left to ship" in nothing_left["detail"]


def test_cancel_frees_the_quantity_and_the_replacement_names_the_cancelled(
    parties: Parties,
) -> None:
    p = parties
    p.acknowledged_po("PO-1")
    p.asn("PO-1", number="A1", lines=[{"po_line_no": 1, "quantity": 10}])
    p.act("A1", "submit")
    new = p.asn("PO-1", number="A2", replaces="A1", lines=[{"po_line_no": 1, "quantity": 8}])
    assert new["replaces"] == "A1" and lines(new) == {1: 8}
    old = p.client.get(f"{API}/asns/A1", headers=p.s1).json()
    assert (old["status"], old["cancel_reason"]) == ("cancelled", "replaced by ASN A2")
    assert p.act("A2", "submit")["status"] == "submitted"
    assert "only a draft or a submitted ASN" in p.act("A1", "cancel", 409, reason="x")["detail"]
    cancelled = p.act("A2", "cancel", reason="wrong pallet count")
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "wrong pallet count")
    assert p.act("A2", "cancel", status=422)["detail"]  # a reason is required
    # Both cancelled: the whole line is free again.
    assert lines(p.asn("PO-1", number="A3")) == {1: 10, 2: 4}
    statuses = p.client.get(f"{API}/asns", params={"po": "PO-1", "status": "cancelled"}).json()
    assert sorted(a["number"] for a in statuses) == ["A1", "A2"]


def test_only_a_draft_is_edited_or_deleted(parties: Parties) -> None:
    c, p = parties.client, parties
    p.acknowledged_po("PO-1")
    p.asn("PO-1", number="A1")
    changed = c.patch(
        f"{API}/asns/A1",
        json={"carrier": "UPS", "lines": [{"po_line_no": 2, "quantity": 3}]},
        headers=p.s1,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["carrier"] == "UPS" and lines(changed.json()) == {2: 3}
    too_much = c.patch(f"{API}/asns/A1", json={"lines": [{"po_line_no": 2, "quantity": 5}]})
    assert too_much.status_code == 422 and "5 to ship, but 4 ordered" in too_much.json()["detail"]
    assert c.delete(f"{API}/asns/A1", headers=p.s1).status_code == 204
    assert c.get(f"{API}/asns/A1").status_code == 404
    p.asn("PO-1", number="A2")
    p.act("A2", "submit")
    refused = c.delete(f"{API}/asns/A2", headers=p.s1)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "ASN A2 is submitted: only a draft can be deleted; cancel a submitted ASN instead"
    )
    late_edit = c.patch(f"{API}/asns/A2", json={"carrier": "x"}, headers=p.s1)
    assert late_edit.status_code == 409 and "only a draft can be changed" in late_edit.text
    assert p.act("A2", "submit", status=409)["detail"].endswith("only a draft can be submitted")


def test_packages_are_declared_by_valid_sscc_once(parties: Parties) -> None:
    p = parties
    p.acknowledged_po("PO-1")
    p.acknowledged_po("PO-2")
    bad = p.asn(
        "PO-1",
        packages=[{"sscc": "106141411234567898", "po_line_no": 1, "quantity": 5}],
        status=422,
    )
    assert "SSCC 106141411234567898: check digit 8 should be 7" in bad["detail"]
    one = {
        "sscc": SSCC_1,
        "po_line_no": 1,
        "quantity": 5,
        "epc": "urn:epc:id:sscc:0614141.1123456789",
    }
    made = p.asn("PO-1", number="A1", packages=[one, {**one, "sscc": SSCC_2, "epc": None}])
    assert [(x["sscc"], x["quantity"]) for x in made["packages"]] == [(SSCC_2, 5), (SSCC_1, 5)]
    elsewhere = p.asn("PO-2", packages=[one], status=409)["detail"]
    assert elsewhere == f"SSCC {SSCC_1} is already declared on ASN A1"
    overfull = p.asn("PO-2", packages=[{**one, "quantity": 11}], status=422)["detail"]
    assert "packages of line 1 hold 11, but the line ships 10" in overfull


def test_a_supplier_sees_only_its_own_documents(parties: Parties) -> None:
    c, p = parties.client, parties
    p.acknowledged_po("PO-1")
    p.acknowledged_po("PO-2", supplier="S2")
    p.asn("PO-1", number="A1")
    pdf = {"filename": "cmr.pdf", "content_type": "application/pdf", "content_base64": "JVBERi0="}
    note = c.post(f"{API}/asns/A1/attachments", json=pdf, headers=p.s1).json()["id"]

    def numbers(path: str, who: dict[str, str]) -> list[str]:
        r = c.get(f"{API}/{path}", headers=who)
        assert r.status_code == 200, r.text
        return [d["number"] for d in r.json()]

    assert numbers("purchase-orders", p.s1) == ["PO-1"]
    assert numbers("purchase-orders", p.s2) == ["PO-2"]
    assert numbers("purchase-orders", p.dispatcher) == ["PO-1", "PO-2"]
    assert numbers("purchase-orders", p.lonely) == [] and numbers("asns", p.lonely) == []
    assert numbers("asns", p.s2) == [] and numbers("asns", p.s1) == ["A1"]
    foreign = [
        ("GET", "purchase-orders/PO-1", None),
        ("POST", "purchase-orders/PO-1/acknowledge", None),
        ("POST", "purchase-orders/PO-1/asns", {}),
        ("GET", "asns/A1", None),
        ("PATCH", "asns/A1", {"carrier": "x"}),
        ("DELETE", "asns/A1", None),
        ("POST", "asns/A1/submit", None),
        ("POST", "asns/A1/cancel", {"reason": "x"}),
        ("POST", "asns/A1/milestones", {"kind": "fabrication", "on_date": "2026-03-01"}),
        ("POST", "asns/A1/notes", {"title": "hi"}),
        ("POST", "asns/A1/attachments", pdf),
        ("GET", f"asns/A1/attachments/{note}", None),
    ]
    for who in (p.s2, p.lonely):
        for method, path, body in foreign:
            r = c.request(method, f"{API}/{path}", json=body, headers=who)
            assert r.status_code == 404, (method, path, r.text)
    assert c.get(f"{API}/asns/A1", headers=p.s1).status_code == 200  # still there
    assert "no purchase order PO-1" in c.get(f"{API}/purchase-orders/PO-1", headers=p.s2).text
    # Suppliers cannot buy; buyers do not acknowledge for the supplier.
    assert c.post(f"{API}/purchase-orders", json=po_body("PO-9"), headers=p.s1).status_code == 403
    assert c.post(f"{API}/purchase-orders/PO-1/cancel", headers=p.s1).status_code == 403
    assert c.get(f"{API}/suppliers", headers=p.s1).status_code == 403
    assert (
        c.post(f"{API}/purchase-orders/PO-1/acknowledge", headers=p.dispatcher).status_code == 403
    )
    viewer = login(c, "watcher", "viewer")
    assert c.get(f"{API}/purchase-orders", headers=viewer).status_code == 403


def test_the_buyer_keeps_suppliers_and_cancels_a_po_with_its_asns(parties: Parties) -> None:
    c, p = parties.client, parties
    dup = c.post(f"{API}/suppliers", json={"ref": "S1", "name": "again"}, headers=p.dispatcher)
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    changed = c.patch(f"{API}/suppliers/S1", json={"reminder_days": 10, "email": None})
    assert (changed.json()["reminder_days"], changed.json()["email"]) == (10, None)
    assert c.patch(f"{API}/suppliers/S1", json={"reminder_days": 6}).status_code == 422
    assert c.patch(f"{API}/suppliers/S9", json={"name": "x"}).status_code == 404
    not_supplier = c.post(f"{API}/suppliers/S1/users/buyer")
    assert not_supplier.status_code == 422 and "only a supplier-role user" in not_supplier.text
    assert c.post(f"{API}/suppliers/S1/users/acme", headers=p.dispatcher).status_code == 403
    unknown = c.post(f"{API}/purchase-orders", json=po_body("PO-X", supplier="S9"))
    assert unknown.status_code == 422 and "no supplier S9" in unknown.text
    p.acknowledged_po("PO-1")
    p.asn("PO-1", number="A1")
    p.asn("PO-1", number="A2", lines=[{"po_line_no": 2, "quantity": 1}])
    p.act("A1", "submit")
    dupe = c.post(f"{API}/purchase-orders", json=po_body("PO-1"), headers=p.dispatcher)
    assert dupe.status_code == 409
    r = c.post(f"{API}/purchase-orders/PO-1/cancel", json={"reason": "plant closed"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    for number in ("A1", "A2"):
        asn = c.get(f"{API}/asns/{number}").json()
        assert asn["status"] == "cancelled"
        assert asn["cancel_reason"] == "purchase order PO-1 was cancelled: plant closed"
    assert "is cancelled" in p.asn("PO-1", status=409)["detail"]
    assert (
        c.get(f"{API}/purchase-orders", params={"status": "cancelled"}).json()[0]["number"]
        == "PO-1"
    )
