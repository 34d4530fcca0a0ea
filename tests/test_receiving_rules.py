"""Receiving against an ASN, the pure rules: what each scan at an inbound door counts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from event_contract import VerdictKind
from inbound.receiving import (
    Asn,
    AsnLine,
    DeclaredPackage,
    Outcome,
    ScanSeen,
    Tally,
    fully_received,
    line_status,
    reconcile,
    short_lines,
)

GTIN_A, GTIN_B, GTIN_Z = "04012345000016", "04012345000023", "04012345000092"
P1, P2, P3 = "006141410000000011", "006141410000000028", "006141410000000035"
EPC_P3 = "3074257BF400000000000023"

ASN = Asn(
    "ASN-1",
    lines=(
        AsnLine(1, "SKU-A", GTIN_A, ordered=24, shipped=20),
        AsnLine(2, "SKU-B", GTIN_B, ordered=5, shipped=3),
    ),
    packages=(
        DeclaredPackage(P1, None, 1, 10),
        DeclaredPackage(P2, None, 1, 10),
        DeclaredPackage(P3, EPC_P3, 2, 2),
    ),
)


def run(*scans: ScanSeen, asn: Asn = ASN) -> tuple[list, Tally]:
    tally, results = Tally(), []
    for s in scans:
        r = reconcile(asn, tally, s)
        tally = tally.after(r)
        results.append(r)
    return results, tally


def sscc(code: str) -> ScanSeen:
    return ScanSeen(code=f"00{code}", sscc=code)


def unit(gtin: str, sku: str | None = None, epc: str | None = None) -> ScanSeen:
    return ScanSeen(code=epc or f"01{gtin}", gtin=gtin, sku=sku, epc=epc)


def test_pallets_count_their_quantity_once_and_units_count_one() -> None:
    results, tally = run(sscc(P1), sscc(P1), unit(GTIN_B), sscc(P2))
    assert [r.outcome for r in results] == [
        Outcome.EXPECTED, Outcome.REPEAT, Outcome.EXPECTED, Outcome.EXPECTED
    ]  # fmt: skip
    assert [r.quantity for r in results] == [10, 0, 1, 10]
    assert results[1].verdict is VerdictKind.DUPLICATE and "already received" in results[1].message
    assert results[0].verdict is VerdictKind.ACCEPTED
    assert "received 10 of 20" in results[0].message
    assert (tally.received(1), tally.received(2)) == (20, 1)
    assert not fully_received(ASN, tally)
    assert [(s.po_line_no, s.shipped, s.received, s.short) for s in short_lines(ASN, tally)] == [
        (2, 3, 1, 2)
    ]


def test_a_declared_package_is_found_by_its_own_epc_too() -> None:
    (r,), tally = run(ScanSeen(code=EPC_P3, epc=EPC_P3))
    assert (r.outcome, r.po_line_no, r.quantity, r.sscc) == (Outcome.EXPECTED, 2, 2, P3)
    # The same pallet's printed SSCC label afterwards is the same goods.
    again = reconcile(ASN, tally, sscc(P3))
    assert again.outcome is Outcome.REPEAT


def test_one_unit_beyond_what_the_line_shipped_is_over_and_opens_over_receipt() -> None:
    results, tally = run(unit(GTIN_B), unit(GTIN_B), unit(GTIN_B), unit(GTIN_B))
    over = results[-1]
    assert [r.outcome for r in results[:3]] == [Outcome.EXPECTED] * 3
    assert over.outcome is Outcome.OVER and over.exception == "over_receipt"
    assert over.verdict is VerdictKind.WRONG_ORDER
    assert over.message.startswith("over: line 2 SKU-B shipped 3, received 4")
    [b] = [s for s in line_status(ASN, tally) if s.po_line_no == 2]
    assert (b.received, b.over, b.short) == (4, 1, 0)


def test_a_pallet_that_overfills_its_line_splits_into_expected_and_over() -> None:
    (*_, r), tally = run(*[unit(GTIN_A)] * 15, sscc(P1))
    assert (r.outcome, r.expected, r.over, r.quantity) == (Outcome.OVER, 5, 5, 10)
    assert "shipped 20, received 25" in r.message
    assert tally.received(1) == 25


def test_codes_on_no_line_are_unexpected_and_a_repeated_stray_pallet_once() -> None:
    stray = "006141410000000042"
    results, tally = run(unit(GTIN_Z, sku="SKU-Z"), sscc(stray), sscc(stray),
                         ScanSeen(code="HELLO"))  # fmt: skip
    assert [r.outcome for r in results] == [
        Outcome.UNEXPECTED, Outcome.UNEXPECTED, Outcome.REPEAT, Outcome.UNEXPECTED
    ]  # fmt: skip
    assert results[0].exception == "unexpected_item" and results[0].sku == "SKU-Z"
    assert "GTIN 04012345000092 (SKU-Z) is on no line of ASN ASN-1" in results[0].message
    assert results[0].verdict is VerdictKind.WRONG_ORDER
    assert tally.scanned == {}  # no line counted them


def test_a_tagged_unit_counts_once_however_often_the_reader_sees_it() -> None:
    epc = "3034257BF7194E4000001A85"
    results, tally = run(unit(GTIN_A, epc=epc), unit(GTIN_A, epc=epc), unit(GTIN_A))
    assert [r.outcome for r in results] == [Outcome.EXPECTED, Outcome.REPEAT, Outcome.EXPECTED]
    assert tally.received(1) == 2


def test_two_lines_of_one_product_fill_in_line_order() -> None:
    asn = Asn("ASN-2", (AsnLine(1, "SKU-A", GTIN_A, 2, 1), AsnLine(2, "SKU-A", GTIN_A, 2, 1)))
    results, tally = run(*[unit(GTIN_A)] * 3, asn=asn)
    assert [(r.po_line_no, r.outcome) for r in results] == [
        (1, Outcome.EXPECTED), (2, Outcome.EXPECTED), (2, Outcome.OVER)
    ]  # fmt: skip
    assert fully_received(asn, tally)


def test_everything_shipped_is_fully_received_and_over_does_not_undo_it() -> None:
    _, tally = run(sscc(P1), sscc(P2), sscc(P3), unit(GTIN_B))
    assert fully_received(ASN, tally) and short_lines(ASN, tally) == []
    _, more = run(sscc(P1), sscc(P2), sscc(P3), unit(GTIN_B), unit(GTIN_B))
    assert fully_received(ASN, more)


SCANS = st.one_of(
    st.sampled_from([P1, P2, P3, "006141410000000042"]).map(sscc),
    st.sampled_from([GTIN_A, GTIN_B, GTIN_Z]).map(unit),
    st.just(ScanSeen(code=EPC_P3, epc=EPC_P3)),
)


@given(st.lists(SCANS, max_size=60))
def test_random_scans_never_count_more_expected_than_shipped_and_totals_add_up(
    scans: list[ScanSeen],
) -> None:
    results, tally = run(*scans)
    expected = {1: 0, 2: 0}
    over = {1: 0, 2: 0}
    for r in results:
        if r.po_line_no is not None and r.outcome is not Outcome.REPEAT:
            assert r.expected + r.over == r.quantity
            expected[r.po_line_no] += r.expected
            over[r.po_line_no] += r.over
    # What the scans name, worked out independently: each pallet once, each unit one.
    pallets = {p.sscc: p for p in ASN.packages}
    counted: set[str] = set()
    scanned = {1: 0, 2: 0}
    for s in scans:
        key = s.sscc or (P3 if s.epc == EPC_P3 else None)
        if key in pallets and key not in counted:
            counted.add(key)
            scanned[pallets[key].po_line_no] += pallets[key].quantity
        elif s.gtin in (GTIN_A, GTIN_B):
            scanned[1 if s.gtin == GTIN_A else 2] += 1
    for line in ASN.lines:
        n = line.po_line_no
        assert expected[n] <= line.shipped
        assert expected[n] + over[n] == scanned[n] == tally.received(n)
        assert expected[n] == min(scanned[n], line.shipped)
    assert fully_received(ASN, tally) == all(scanned[x.po_line_no] >= x.shipped for x in ASN.lines)
