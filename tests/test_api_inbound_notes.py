"""What both sides add to an ASN: milestones, notes, links and attachments (size and type
limits, download headers, who sees an unshared note)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.test_api_inbound import API, Parties
from tests.test_api_orders import make_client

PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def parties(database_url: str) -> Iterator[Parties]:
    client = make_client(database_url)
    p = Parties(client)
    p.acknowledged_po("PO-1")
    p.asn("PO-1", number="A1")
    yield p
    client.__exit__(None, None, None)


def test_milestones_are_listed_by_date_and_only_on_live_asns(parties: Parties) -> None:
    c, p = parties.client, parties
    for kind, day in (("port_of_loading", "2026-03-10"), ("fabrication", "2026-03-01")):
        r = c.post(
            f"{API}/asns/A1/milestones",
            json={"kind": kind, "on_date": day, "description": "on plan"},
            headers=p.s1,
        )
        assert r.status_code == 201, r.text
    bad = c.post(f"{API}/asns/A1/milestones", json={"kind": "lunch", "on_date": "2026-03-02"})
    assert bad.status_code == 422
    asn = c.get(f"{API}/asns/A1", headers=p.dispatcher).json()
    assert [(m["kind"], m["created_by"]) for m in asn["milestones"]] == [
        ("fabrication", "acme"),
        ("port_of_loading", "acme"),
    ]
    p.act("A1", "submit")
    later = {"kind": "customs_clearance", "on_date": "2026-03-15"}
    assert c.post(f"{API}/asns/A1/milestones", json=later, headers=p.s1).status_code == 201
    p.act("A1", "cancel", reason="truck broke down")
    closed = c.post(f"{API}/asns/A1/milestones", json=later, headers=p.s1)
    assert closed.status_code == 409
    assert "milestones go on a draft or submitted ASN" in closed.json()["detail"]


def test_notes_and_links_and_who_sees_an_unshared_one(parties: Parties) -> None:
    c, p = parties.client, parties
    link = {"kind": "link", "title": "tracking", "url": "https://carrier.example/t/123"}
    assert c.post(f"{API}/asns/A1/notes", json=link, headers=p.s1).status_code == 201
    internal = {"title": "margin", "body": "do not tell the buyer", "shared_externally": False}
    assert c.post(f"{API}/asns/A1/notes", json=internal, headers=p.s1).status_code == 201
    buyer_only = {"title": "check", "body": "count pallets", "shared_externally": False}
    assert c.post(f"{API}/asns/A1/notes", json=buyer_only, headers=p.dispatcher).status_code == 201
    no_url = c.post(f"{API}/asns/A1/notes", json={"kind": "link", "title": "x"}, headers=p.s1)
    assert no_url.status_code == 422 and "a link needs a url" in no_url.json()["detail"]
    bad_url = {"kind": "link", "title": "x", "url": "javascript:alert(1)"}
    assert c.post(f"{API}/asns/A1/notes", json=bad_url, headers=p.s1).status_code == 422

    def titles(who: dict[str, str]) -> list[str]:
        return [n["title"] for n in c.get(f"{API}/asns/A1", headers=who).json()["notes"]]

    assert titles(p.s1) == ["tracking", "margin"]
    assert titles(p.dispatcher) == ["tracking", "check"]
    note = c.get(f"{API}/asns/A1", headers=p.s1).json()["notes"][0]
    assert (note["url"], note["created_by"]) == ("https://carrier.example/t/123", "acme")


def test_attachments_are_capped_typed_and_downloaded_as_files(parties: Parties) -> None:
    c, p = parties.client, parties
    body = {
        "filename": "Packliste März.png",
        "content_type": "image/png",
        "content_base64": b64(PNG),
    }
    r = c.post(f"{API}/asns/A1/attachments", json=body, headers=p.s1)
    assert r.status_code == 201, r.text
    note_id = r.json()["id"]
    listed = c.get(f"{API}/asns/A1", headers=p.dispatcher).json()["notes"]
    assert listed == [
        {
            **listed[0],
            "kind": "attachment",
            "title": "Packliste März.png",
            "content_type": "image/png",
            "size": len(PNG),
        }
    ]
    assert "content" not in listed[0] and "content_base64" not in listed[0]
    got = c.get(f"{API}/asns/A1/attachments/{note_id}", headers=p.dispatcher)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"Packliste M_rz.png\"; filename*=UTF-8''Packliste%20M%C3%A4rz.png"
    )
    assert c.get(f"{API}/asns/A1/attachments/{note_id + 99}").status_code == 404

    def refused(**change: object) -> str:
        r = c.post(f"{API}/asns/A1/attachments", json={**body, **change}, headers=p.s1)
        assert r.status_code == 422, r.text
        return str(r.json()["detail"])

    big = b"%PDF-" + bytes(5 * 1024 * 1024)
    assert "over the limit of 5,242,880" in refused(
        content_type="application/pdf", content_base64=b64(big)
    )
    assert "is not accepted" in refused(content_type="text/html", content_base64=b64(b"<p>"))
    assert "the content is not image/png" in refused(content_base64=b64(b"%PDF-1.4"))
    assert "not valid base64" in refused(content_base64="***")
    assert refused(filename="../etc/passwd")  # no paths in a filename
    huge = "A" * (11 * 1024 * 1024)  # refused before it is decoded
    assert (
        c.post(
            f"{API}/asns/A1/attachments", json={**body, "content_base64": huge}, headers=p.s1
        ).status_code
        == 422
    )
