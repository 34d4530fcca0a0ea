"""Package labels: the GS1-128 SSCC label of one package as ZPL, PNG or PDF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from ingest_service.auth import PoolDep, Role, requires
from ingest_service.labels import render
from ingest_service.labels.lookup import package_label

router = APIRouter(prefix="/packages", tags=["labels"])
PRINTERS = requires(Role.DISPATCHER, Role.DOCK)

LabelFormat = Literal["zpl", "png", "pdf"]
# format -> (renderer, media type). ZPL is plain text a Zebra printer takes as-is (port 9100).
FORMATS: dict[str, tuple[Callable[[render.Label], bytes], str]] = {
    "zpl": (lambda label: render.zpl(label).encode("ascii"), "text/plain; charset=utf-8"),
    "png": (render.png, "image/png"),
    "pdf": (render.pdf, "application/pdf"),
}


@router.get("/{sscc}/label", dependencies=[Depends(PRINTERS)])
async def package_label_file(
    sscc: Annotated[str, Path(description="the package's 18-digit SSCC")],
    pool: PoolDep,
    format: Annotated[
        LabelFormat, Query(description="zpl for a Zebra printer (203 dpi), png or pdf (4x6 in)")
    ] = "zpl",
) -> Response:
    """The package's 4 x 6 inch shipping label: a GS1-128 barcode of (00) and its SSCC, with
    its order number, position in the order (n of m), customer and delivery address."""
    async with pool.connection() as conn:
        label = await package_label(conn, sscc)
    if label is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no package with SSCC {sscc}: check the 18 digits, or find the order's packages"
            " with GET /api/v1/orders/{number}",
        )
    draw, media_type = FORMATS[format]
    body = await run_in_threadpool(draw, label)
    disposition = f'attachment; filename="label-{label.sscc}.{format}"'
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})
