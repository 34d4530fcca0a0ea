"""Package labels: a scanner reads the GS1-128 SSCC from the PNG and the PDF, and the ZPL asks
the printer for exactly the same symbol."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pypdfium2
import pytest
import zxingcpp
from barcode.charsets.code128 import CODES, START_CODES, STOP
from fastapi.testclient import TestClient
from PIL import Image

from ingest_service.labels.render import Label, modules
from tests.test_api_orders import make_client, order


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    yield c
    c.__exit__(None, None, None)


@pytest.fixture
def sscc(client: TestClient) -> str:
    """The second of three packages of order SO-7."""
    body = order("SO-7", packages=3, qty=1)
    body["customer"]["name"] = "Müller & Söhne"
    body["destination"]["address"] = "Hafenstraße 12, 20457 Hamburg, Germany"
    r = client.post("/api/v1/orders", json=body)
    assert r.status_code == 201, r.text
    return r.json()["packages"][1]


def _read(image: Image.Image) -> zxingcpp.Barcode:
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1, found
    return found[0]


def _assert_scans_as_sscc(barcode: zxingcpp.Barcode, sscc: str) -> None:
    assert barcode.format == zxingcpp.BarcodeFormat.Code128
    assert barcode.symbology_identifier == "]C1"  # FNC1 first: GS1-128, not plain Code 128
    assert barcode.content_type == zxingcpp.ContentType.GS1
    assert barcode.bytes == f"00{sscc}".encode()
    assert barcode.text == f"(00){sscc}"


def test_the_png_label_scans_as_the_packages_sscc(client: TestClient, sscc: str) -> None:
    r = client.get(f"/api/v1/packages/{sscc}/label", params={"format": "png"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == f'attachment; filename="label-{sscc}.png"'
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (812, 1218)  # 4 x 6 inches at 203 dpi
    _assert_scans_as_sscc(_read(image), sscc)


def test_the_pdf_label_scans_and_says_order_position_customer_and_address(
    client: TestClient, sscc: str
) -> None:
    r = client.get(f"/api/v1/packages/{sscc}/label?format=pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="label-{sscc}.pdf"'
    page = pypdfium2.PdfDocument(r.content)[0]
    assert (round(page.get_width()), round(page.get_height())) == (288, 432)
    _assert_scans_as_sscc(_read(page.render(scale=300 / 72).to_pil()), sscc)
    text = page.get_textpage().get_text_range()
    for expected in ("Order SO-7", "Package 2 of 3", "Müller & Söhne", "Hafenstraße 12"):
        assert expected in text, text
    assert f"(00) {sscc}" in text


def _code128_modules(zpl_data: str) -> str:
    """What a Zebra prints for `^BC` field data of the form >; (start C), >8 (FNC1), digits."""
    match = re.fullmatch(r">;>8((?:\d\d)+)", zpl_data)
    assert match, zpl_data
    digits = match.group(1)
    values = [START_CODES["C"], 102] + [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    check = (values[0] + sum(i * v for i, v in enumerate(values[1:], start=1))) % 103
    return "".join(CODES[v] for v in [*values, check]) + STOP + "11"


def test_the_zpl_prints_the_same_gs1_128_symbol(client: TestClient, sscc: str) -> None:
    r = client.get(f"/api/v1/packages/{sscc}/label?format=zpl")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="label-{sscc}.zpl"'
    zpl = r.text
    assert zpl.startswith("^XA") and zpl.rstrip().endswith("^XZ")
    barcode = re.search(r"\^BY4\^BCN,260,N,N,N\^FD([^^]*)\^FS", zpl)
    assert barcode, zpl
    assert barcode.group(1) == f">;>800{sscc}"
    # The bars the printer makes from that field are the bars of the PNG that zxing reads.
    label = Label(sscc=sscc, order_number="SO-7", customer="", destination="")
    assert _code128_modules(barcode.group(1)) == modules(label)
    assert "^FDOrder SO-7^FS" in zpl and "^FDPackage 2 of 3^FS" in zpl
    assert "^FH_^FDM_C3_BCller & S_C3_B6hne^FS" in zpl  # UTF-8 hex under ^CI28
    assert f"^FD(00) {sscc}^FS" in zpl


def test_an_unknown_package_or_format_says_what_to_do(client: TestClient, sscc: str) -> None:
    unknown = client.get("/api/v1/packages/000000000000000000/label")
    assert unknown.status_code == 404
    assert "no package with SSCC 000000000000000000" in unknown.json()["detail"]
    gif = client.get(f"/api/v1/packages/{sscc}/label?format=gif")
    assert gif.status_code == 422 and "format" in gif.json()["detail"]
