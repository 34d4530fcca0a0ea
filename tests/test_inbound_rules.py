"""The inbound rules without a database: PO and ASN status moves, the quantity rule across
several ASNs (a Hypothesis state machine), packages, attachments, reminder timing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from inbound.asn import (
    ASN_TABLE,
    COUNTED,
    MAX_ATTACHMENT_BYTES,
    AsnAction,
    AsnStatus,
    Package,
    asn_move,
    attachment_error,
    default_quantities,
    line_books,
    package_errors,
    quantity_errors,
)
from inbound.purchase_orders import LineKind, PoLine, PoStatus, Side, asn_allowed, po_move
from inbound.reminders import PoWaiting, due_on, reminder_due, reminder_mail

LINES = [
    PoLine(1, "SKU-A", LineKind.MATERIAL, 10),
    PoLine(2, "SKU-B", LineKind.MATERIAL, 4),
    PoLine(3, "INSTALL", LineKind.SERVICE, 1),
]


def test_po_moves_follow_the_table_and_say_who_may() -> None:
    assert po_move("PO-1", PoStatus.SENT, PoStatus.ACKNOWLEDGED, Side.SUPPLIER) is None
    assert po_move("PO-1", PoStatus.ACKNOWLEDGED, PoStatus.CANCELLED, Side.BUYER) is None
    assert po_move("PO-1", PoStatus.SENT, PoStatus.ACKNOWLEDGED, Side.BUYER) == (
        "purchase order PO-1: only the supplier may make it acknowledged"
    )
    assert po_move("PO-1", PoStatus.SENT, PoStatus.CANCELLED, Side.SUPPLIER) == (
        "purchase order PO-1: only the buyer may make it cancelled"
    )
    twice = po_move("PO-1", PoStatus.ACKNOWLEDGED, PoStatus.ACKNOWLEDGED, Side.SUPPLIER)
    assert twice == "purchase order PO-1 is already acknowledged"
    final = po_move("PO-1", PoStatus.CANCELLED, PoStatus.ACKNOWLEDGED, Side.SUPPLIER)
    assert final == "purchase order PO-1 is cancelled; nothing more can happen to it"
    assert asn_allowed("PO-1", PoStatus.ACKNOWLEDGED) is None
    assert "acknowledge it first" in (asn_allowed("PO-1", PoStatus.SENT) or "")
    assert "no ASN can be made" in (asn_allowed("PO-1", PoStatus.CLOSED) or "")


@pytest.mark.parametrize(
    ("status", "action", "outcome"),
    [
        (AsnStatus.DRAFT, AsnAction.SUBMIT, AsnStatus.SUBMITTED),
        (AsnStatus.DRAFT, AsnAction.DELETE, AsnStatus.DELETED),
        (AsnStatus.DRAFT, AsnAction.CANCEL, AsnStatus.CANCELLED),
        (AsnStatus.SUBMITTED, AsnAction.CANCEL, AsnStatus.CANCELLED),
        (AsnStatus.SUBMITTED, AsnAction.RECEIVE, AsnStatus.RECEIVED),
        (AsnStatus.SUBMITTED, AsnAction.DELETE, "cancel a submitted ASN instead"),
        (AsnStatus.SUBMITTED, AsnAction.EDIT, "only a draft can be changed"),
        (AsnStatus.RECEIVED, AsnAction.CANCEL, "only a draft or a submitted ASN"),
        (AsnStatus.CANCELLED, AsnAction.SUBMIT, "only a draft can be submitted"),
        (AsnStatus.DRAFT, AsnAction.RECEIVE, "only a submitted ASN can be received"),
    ],
)
def test_asn_moves(status: AsnStatus, action: AsnAction, outcome: AsnStatus | str) -> None:
    why = asn_move("ASN-1", status, action)
    if isinstance(outcome, AsnStatus):
        assert why is None and ASN_TABLE[action][1] is outcome
    else:
        assert why is not None and why.startswith(f"ASN ASN-1 is {status}: ")
        assert outcome in why


def test_a_refusal_names_the_line_ordered_shipped_and_remaining() -> None:
    books = line_books(LINES, [(AsnStatus.SUBMITTED, {1: 6}), (AsnStatus.DRAFT, {1: 4})])
    assert books[1].shipped == 6 and books[1].in_drafts == 4 and books[1].remaining == 4
    assert quantity_errors("A2", "PO-1", books, {1: 4, 2: 4}) == []
    assert quantity_errors("A2", "PO-1", books, {1: 5}) == [
        "ASN A2: PO PO-1 line 1 (SKU-A): 5 to ship, but 10 ordered, 6 already shipped on"
        " submitted ASNs, 4 remaining"
    ]
    assert quantity_errors("A2", "PO-1", books, {3: 1}) == [
        "ASN A2: PO PO-1 line 3 (INSTALL) is a service line; only material lines go on an ASN"
    ]
    assert quantity_errors("A2", "PO-1", books, {9: 1}) == [
        "ASN A2: purchase order PO-1 has no line 9"
    ]
    assert "has no lines" in quantity_errors("A2", "PO-1", books, {})[0]
    # Cancelled ASNs free their quantities; received ones keep them.
    freed = line_books(LINES, [(AsnStatus.CANCELLED, {1: 10}), (AsnStatus.RECEIVED, {2: 1})])
    assert default_quantities(freed) == {1: 10, 2: 3}  # the service line is never defaulted


def test_packages_need_valid_ssccs_on_the_asn_lines() -> None:
    good = "106141411234567897"
    assert package_errors("A1", [Package(good, 1, 5)], {1: 5}) == []
    errors = package_errors(
        "A1",
        [
            Package("106141411234567898", 1, 1),
            Package("12345", 1, 1),
            Package(good, 2, 1),
            Package(good, 1, 9),
        ],
        {1: 5},
    )
    assert errors == [
        "ASN A1: SSCC 106141411234567898: check digit 8 should be 7",
        "ASN A1: SSCC '12345': 18 digits needed",
        "ASN A1: package 106141411234567897 is for line 2, which is not on the ASN",
        "ASN A1: SSCC 106141411234567897 is declared twice",
        "ASN A1: packages of line 1 hold 11, but the line ships 5",
    ]


def test_attachments_are_capped_and_must_be_what_they_claim() -> None:
    assert attachment_error("a.pdf", "application/pdf", b"%PDF-1.7 ...") is None
    assert attachment_error("a.csv", "text/csv", "sku;qty\nä;1\n".encode()) is None
    assert "not accepted" in (attachment_error("a.html", "text/html", b"<html>") or "")
    assert "is not image/png" in (attachment_error("a.png", "image/png", b"%PDF-") or "")
    assert "UTF-8" in (attachment_error("a.txt", "text/plain", b"\xff\xfe") or "")
    big = b"%PDF-" + bytes(MAX_ATTACHMENT_BYTES)
    assert "over the limit of 5,242,880" in (
        attachment_error("b.pdf", "application/pdf", big) or ""
    )


class ShippingAgainstOnePo(RuleBasedStateMachine):
    """Any sequence of create, edit, submit, cancel, delete and receive on one PO's ASNs."""

    def __init__(self) -> None:
        super().__init__()
        self.asns: dict[int, tuple[AsnStatus, dict[int, int]]] = {}
        self.next_id = 0

    def _books(self, leave_out: int | None = None):  # type: ignore[no-untyped-def]
        return line_books(LINES, [v for k, v in self.asns.items() if k != leave_out])

    def _of(self, status: AsnStatus) -> list[int]:
        return sorted(k for k, (s, _) in self.asns.items() if s is status)

    quantities = st.dictionaries(st.sampled_from([1, 2, 3]), st.integers(1, 12), max_size=3)

    @rule(quantities=quantities)
    def create(self, quantities: dict[int, int]) -> None:
        if not quantity_errors("new", "PO", self._books(), quantities):
            self.asns[self.next_id] = (AsnStatus.DRAFT, quantities)
        self.next_id += 1

    @precondition(lambda self: self._of(AsnStatus.DRAFT))
    @rule(data=st.data(), quantities=quantities)
    def edit(self, data: st.DataObject, quantities: dict[int, int]) -> None:
        asn = data.draw(st.sampled_from(self._of(AsnStatus.DRAFT)))
        if not quantity_errors("A", "PO", self._books(asn), quantities):
            self.asns[asn] = (AsnStatus.DRAFT, quantities)

    @precondition(lambda self: self.asns)
    @rule(data=st.data(), action=st.sampled_from(list(AsnAction)))
    def move(self, data: st.DataObject, action: AsnAction) -> None:
        asn = data.draw(st.sampled_from(sorted(self.asns)))
        status, quantities = self.asns[asn]
        target = ASN_TABLE[action][1]
        if asn_move("A", status, action) or target is AsnStatus.DRAFT:
            return
        if target is AsnStatus.SUBMITTED:
            errors = quantity_errors("A", "PO", self._books(asn), quantities)
            if errors:
                assert all("remaining" in e for e in errors)
                return
        if target is AsnStatus.DELETED:
            del self.asns[asn]
        else:
            self.asns[asn] = (target, quantities)

    @invariant()
    def never_more_shipped_than_ordered(self) -> None:
        for line in LINES:
            shipped = sum(q.get(line.line_no, 0) for s, q in self.asns.values() if s in COUNTED)
            assert shipped <= line.quantity
            if line.kind is LineKind.SERVICE:
                assert all(line.line_no not in q for _, q in self.asns.values())

    @invariant()
    def every_draft_could_be_submitted_alone(self) -> None:
        for asn in self._of(AsnStatus.DRAFT):
            books = line_books(LINES, [])
            assert not quantity_errors("A", "PO", books, self.asns[asn][1])


TestShippingAgainstOnePo = ShippingAgainstOnePo.TestCase
TestShippingAgainstOnePo.settings = settings(max_examples=150, stateful_step_count=30)


@given(
    delivery=st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    days=st.sampled_from([5, 7, 10]),
    runs=st.lists(st.integers(-15, 5), min_size=1, max_size=30, unique=True),
    submitted=st.one_of(st.none(), st.integers(-15, 5)),
    every_day=st.booleans(),
)
def test_one_reminder_on_or_after_its_day_and_never_after_an_asn(
    delivery: date, days: int, runs: list[int], submitted: int | None, every_day: bool
) -> None:
    """Runs of the reminder worker on some days (offsets from delivery); an ASN may be
    submitted on one of them (before that day's run)."""
    run_days = range(-15, 6) if every_day else sorted(runs)
    sent: list[int] = []
    for offset in run_days:
        po = PoWaiting(
            "PO-1", delivery, days, True, submitted is not None and offset >= submitted, bool(sent)
        )
        if reminder_due(po, delivery + timedelta(days=offset)):
            sent.append(offset)
    assert len(sent) <= 1
    for offset in sent:
        assert -days <= offset <= 0
        assert submitted is None or offset < submitted
    if every_day and (submitted is None or submitted > -days):
        assert sent == [-days]  # on the very day it becomes due


def test_no_reminder_for_a_closed_po_and_the_mail_says_what_to_do() -> None:
    delivery = date(2026, 3, 20)
    assert due_on(delivery, 7) == date(2026, 3, 13)
    closed = PoWaiting("PO-1", delivery, 7, False, False, False)
    assert not reminder_due(closed, date(2026, 3, 15))
    with pytest.raises(ValueError, match="must be one of"):
        due_on(delivery, 6)
    mail = reminder_mail(
        po_number="PO-1", supplier_name="Acme", delivery_date=delivery, site="wh1",
        today=date(2026, 3, 13), acknowledged=False,
    )  # fmt: skip
    assert mail.subject == "ASN needed: purchase order PO-1, delivery in 7 days"
    assert "Dear Acme" in mail.text and "20 Mar 2026" in mail.text
    assert "acknowledge the order" in mail.text
