"""Deliveries: the driver confirms an order delivered, with proof."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.errors import as_http
from ingest_service.geo.delivery import DeliveryIn, DeliveryOut, deliver_order

router = APIRouter(prefix="/orders", tags=["orders"])
DELIVERERS = requires(Role.DRIVER, Role.DISPATCHER)


@router.post("/{number}/deliver", dependencies=[Depends(DELIVERERS)])
async def deliver(
    number: str,
    pool: PoolDep,
    user: CurrentUser,
    proof: Annotated[DeliveryIn | None, Body()] = None,
) -> DeliveryOut:
    """Confirm the order delivered, optionally with where (lat/lon), a photo and a signature
    (references to files stored elsewhere). Only an order on its way (in transit, arriving
    or arrived) can be delivered; anything else is a 409 saying why. A driver confirms only
    the orders of a trip they drive."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await deliver_order(
                conn,
                number,
                proof or DeliveryIn(),
                actor=user.username,
                driver_only=user.role is Role.DRIVER,
            )
