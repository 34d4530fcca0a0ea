"""Order CSV import: good orders out, every bad row reported with its line and reason."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orders.csv_import import orders_csv_header, parse_orders_csv, rows_of
from orders.models import CustomerIn, DestinationIn, LineIn, OrderIn

HEADER = "order_number,customer_ref,customer_name,customer_email,sku,quantity,address,window_start"
GOOD = (
    f"{HEADER}\n"
    "SO-1,C-1,Acme,ops@acme.example,SKU-A,2,1 Dock Road,2026-11-23T08:00:00+00:00\n"
    "SO-1,C-1,Acme,ops@acme.example,SKU-B,1,1 Dock Road,\n"
    "SO-2,C-2,Bolt,bolt@bolt.example,SKU-A,5,9 High St,\n"
)


def test_rows_of_one_order_become_one_order_with_its_lines():
    result = parse_orders_csv(GOOD)
    assert result.errors == []
    assert [o.number for o in result.orders] == ["SO-1", "SO-2"]
    first = result.orders[0]
    assert [(line.sku, line.quantity) for line in first.lines] == [("SKU-A", 2), ("SKU-B", 1)]
    assert first.customer.email == "ops@acme.example"
    assert first.window_start is not None


def test_each_bad_row_is_reported_with_its_line_and_reason():
    text = (
        f"{HEADER}\n"
        "SO-1,C-1,Acme,ops@acme.example,SKU-A,2,1 Dock Road,\n"  # line 2: good
        "SO-1,C-1,Acme,ops@acme.example,SKU-B,lots,1 Dock Road,\n"  # line 3: bad quantity
        "SO-2,C-2,Bolt,not-an-email,SKU-A,1,9 High St,\n"  # line 4: bad email
        ",C-3,Cato,c@c.example,SKU-A,1,x,\n"  # line 5: no number
        "SO-3,C-3,Cato,c@c.example,SKU-A,1,x,\n"  # line 6: good
        "SO-3,C-9,Other,c@c.example,SKU-B,1,x,\n"  # line 7: contradicts line 6
        "SO-4,C-4,Dora,d@d.example,SKU-A,1,x,yesterday\n"  # line 8: bad time
    )
    result = parse_orders_csv(text)
    by_line = {e.line: e for e in result.errors}
    assert sorted(by_line) == [3, 4, 5, 7, 8]
    assert "quantity" in by_line[3].reason and by_line[3].order_number == "SO-1"
    assert "email" in by_line[4].reason
    assert "order_number is empty" in by_line[5].reason
    assert "customer_ref, customer_name differ" in by_line[7].reason
    assert "window_start" in by_line[8].reason
    assert result.orders == []  # every order above has a bad row, so none is good


def test_a_header_with_missing_or_unknown_columns_is_one_clear_error():
    result = parse_orders_csv("order_number,sku,qty\nSO-1,A,1\n")
    assert len(result.errors) == 1 and result.errors[0].line == 1
    assert "missing column 'quantity'" in result.errors[0].reason
    assert "unknown column 'qty'" in result.errors[0].reason


@given(st.text(max_size=300))
def test_any_text_gives_orders_or_reasons_never_an_exception(text):
    result = parse_orders_csv(text)
    assert all(e.reason for e in result.errors)


names = st.from_regex(r"[A-Z][A-Z0-9\-]{0,10}", fullmatch=True)
orders = st.builds(
    OrderIn,
    number=names,
    customer=st.builds(CustomerIn, ref=names, name=names, email=st.just("a@b.example")),
    lines=st.lists(
        st.builds(LineIn, sku=names, quantity=st.integers(1, 99)),
        min_size=1,
        max_size=3,
        unique_by=lambda line: line.sku,
    ),
    destination=st.builds(DestinationIn, address=names),
    packages=st.integers(1, 5),
)


@given(st.lists(orders, max_size=4, unique_by=lambda o: o.number))
def test_orders_written_as_rows_import_back_the_same(originals):
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(orders_csv_header())
    writer.writerows(rows_of(originals))
    result = parse_orders_csv(out.getvalue())
    assert result.errors == []
    assert result.orders == originals
