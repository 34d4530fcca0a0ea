"""EPCIS 2.0: scans and order milestones as GS1 EPCIS events (JSON-LD), docs/epcis.md."""

from __future__ import annotations

import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import AwareDatetime

from epcis import Locations
from ingest_service.auth import PoolDep, Role, SettingsDep, requires
from ingest_service.dispatch.errors import as_http
from ingest_service.epcis import Window, export_page

from . import decode_cursor

router = APIRouter(prefix="/epcis", tags=["epcis"])
READERS = requires(Role.DISPATCHER, Role.VIEWER)
MEDIA_TYPE = "application/ld+json"


@router.get(
    "/events",
    dependencies=[Depends(READERS)],
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "an EPCISDocument"}},
)
async def events(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    start: Annotated[
        AwareDatetime | None, Query(alias="from", description="events at or after, ISO 8601")
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(alias="to", description="events before, ISO 8601")
    ] = None,
    order: Annotated[str | None, Query(max_length=64, description="an order number")] = None,
    asn: Annotated[str | None, Query(max_length=64, description="an ASN number")] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="events per page")] = 1000,
    next_page_token: Annotated[
        str | None, Query(alias="nextPageToken", description="from the previous page's Link")
    ] = None,
) -> Response:
    """Scans, loads, ASN receipts and order milestones as an EPCIS 2.0 EPCISDocument, oldest
    first. When there is more, a `Link: <...>; rel="next"` header gives the next page."""
    if order is not None and asn is not None:
        raise HTTPException(422, "give 'order' or 'asn', not both: an ASN is not our order")
    after = None
    if next_page_token is not None:
        try:
            at, key = decode_cursor(next_page_token, "uuid")
        except ValueError as err:
            raise HTTPException(422, f"nextPageToken: {err}") from None
        after = (at, UUID(str(key)))
    window = Window(start=start, end=end, order=order, asn=asn, after=after, limit=limit)
    where = Locations(
        company_prefixes=(settings.gs1_company_prefix,),
        site_glns=dict(settings.epcis_site_glns),
        party_gln=settings.epcis_party_gln,
    )
    async with pool.connection() as conn:
        with as_http():
            page = await export_page(conn, window, where=where)
    headers = {}
    if page.next_token is not None:
        url = request.url.include_query_params(nextPageToken=page.next_token)
        headers["Link"] = f'<{url}>; rel="next"'
    body = json.dumps(page.document, ensure_ascii=False).encode()
    return Response(body, media_type=MEDIA_TYPE, headers=headers)
