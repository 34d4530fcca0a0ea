"""ASN reminders against PostgreSQL under a controlled clock: sent once, on the right day,
not once an ASN is submitted, never twice even with two workers, retried after a failure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import AsyncConnection

from ingest_service.inbound.reminders import send_due_reminders

Mail = tuple[str, str, str]


def at(day: str, time: str = "08:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}:00").replace(tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO products (sku, name) VALUES ('SKU-A', 'Widget')")
        conn.execute(
            "INSERT INTO suppliers (ref, name, email, reminder_days) VALUES"
            " ('S1', 'Acme', 'asn@acme.example', 7), ('S2', 'Globex', 'asn@globex.example', 10),"
            " ('S3', 'Silent', NULL, 5)"
        )
    return database_url


def add_po(url: str, number: str, supplier: str, delivery: str, status: str = "sent") -> int:
    with psycopg.connect(url) as conn:
        po_id = conn.execute(
            "INSERT INTO purchase_orders (number, supplier_id, site, status, delivery_date,"
            " created_by) SELECT %s, id, 'wh1', %s, %s, 'buyer' FROM suppliers WHERE ref = %s"
            " RETURNING id",
            (number, status, delivery, supplier),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO po_lines (po_id, line_no, sku, quantity) VALUES (%s, 1, 'SKU-A', 5)",
            (po_id,),
        )
    return po_id


def add_asn(url: str, po_id: int, number: str, status: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO asns (number, po_id, supplier_id, status, created_by)"
            " SELECT %s, id, supplier_id, %s, 'acme' FROM purchase_orders WHERE id = %s",
            (number, status, po_id),
        )


def run(url: str, now: datetime, fail: bool = False) -> tuple[int, list[Mail]]:
    sent: list[Mail] = []

    async def send(to: str, subject: str, text: str) -> None:
        if fail:
            raise ConnectionError("smtp.example:587 refused the connection")
        sent.append((to, subject, text))

    async def main() -> int:
        async with await AsyncConnection.connect(url) as conn:
            return await send_due_reminders(conn, now, send)

    return asyncio.run(main()), sent


def reminders(url: str) -> list[tuple[str, str, datetime, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(  # type: ignore[return-value]
            "SELECT p.number, r.due_on::text, r.sent_at, r.sent_to FROM supplier_reminders r"
            " JOIN purchase_orders p ON p.id = r.po_id ORDER BY p.number"
        ).fetchall()


def test_one_reminder_on_the_day_it_is_due_and_never_again(db: str) -> None:
    add_po(db, "PO-1", "S1", "2026-03-20")  # Acme: 7 days before, 13 March
    add_po(db, "PO-2", "S2", "2026-03-20", status="acknowledged")  # Globex: 10 days, 10 March
    assert run(db, at("2026-03-09", "23:59")) == (0, [])
    count, mails = run(db, at("2026-03-10"))
    assert count == 1 and [m[0] for m in mails] == ["asn@globex.example"]
    assert mails[0][1] == "ASN needed: purchase order PO-2, delivery in 10 days"
    assert "create the Advance Shipping Notice" in mails[0][2]  # acknowledged already
    assert run(db, at("2026-03-12", "23:59")) == (0, [])
    count, mails = run(db, at("2026-03-13", "00:00"))
    assert count == 1 and mails[0][0] == "asn@acme.example"
    assert "acknowledge the order" in mails[0][2]  # still only sent
    for day in ("2026-03-13", "2026-03-15", "2026-03-20"):
        assert run(db, at(day, "12:00")) == (0, [])
    assert reminders(db) == [
        ("PO-1", "2026-03-13", at("2026-03-13", "00:00"), "asn@acme.example"),
        ("PO-2", "2026-03-10", at("2026-03-10"), "asn@globex.example"),
    ]


def test_no_reminder_once_an_asn_is_submitted_and_none_that_are_not_due(db: str) -> None:
    submitted = add_po(db, "PO-SUB", "S1", "2026-03-20")
    add_asn(db, submitted, "A1", "submitted")
    received = add_po(db, "PO-REC", "S1", "2026-03-20", status="acknowledged")
    add_asn(db, received, "A2", "received")
    draft_only = add_po(db, "PO-DRAFT", "S1", "2026-03-20", status="acknowledged")
    add_asn(db, draft_only, "A3", "draft")
    cancelled_asn = add_po(db, "PO-CXL", "S1", "2026-03-20", status="acknowledged")
    add_asn(db, cancelled_asn, "A4", "cancelled")
    add_po(db, "PO-CANCELLED", "S1", "2026-03-20", status="cancelled")
    add_po(db, "PO-CLOSED", "S1", "2026-03-20", status="closed")
    add_po(db, "PO-NO-MAIL", "S3", "2026-03-16")  # the supplier has no email
    add_po(db, "PO-LATE", "S1", "2026-03-14")  # due 7 March, but the delivery day is past
    count, mails = run(db, at("2026-03-15"))
    assert count == 2
    assert sorted(m[1].split(",")[0] for m in mails) == [
        "ASN needed: purchase order PO-CXL",
        "ASN needed: purchase order PO-DRAFT",
    ]
    # Submitting after the reminder went out changes nothing; it is not sent again either.
    add_asn(db, draft_only, "A5", "submitted")
    assert run(db, at("2026-03-16")) == (0, [])


def test_a_failed_send_is_rolled_back_and_tried_again(db: str) -> None:
    add_po(db, "PO-1", "S1", "2026-03-20")
    assert run(db, at("2026-03-14"), fail=True) == (0, [])
    assert reminders(db) == []
    count, mails = run(db, at("2026-03-14", "09:00"))
    assert count == 1 and len(mails) == 1 and len(reminders(db)) == 1


def test_two_workers_never_send_the_same_reminder(db: str) -> None:
    for n in range(6):
        add_po(db, f"PO-{n}", "S1", "2026-03-20")
    sent: list[str] = []

    async def send(to: str, subject: str, text: str) -> None:
        await asyncio.sleep(0.05)  # a slow mail server: the other worker runs meanwhile
        sent.append(subject)

    async def worker() -> int:
        async with await AsyncConnection.connect(db) as conn:
            return await send_due_reminders(conn, at("2026-03-14"), send)

    async def both() -> list[int]:
        return list(await asyncio.gather(worker(), worker()))

    counts = asyncio.run(both())
    assert sum(counts) == 6 and len(sent) == 6 and len(set(sent)) == 6
    assert min(counts) > 0  # both really worked, each on other POs
    assert len(reminders(db)) == 6
