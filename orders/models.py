"""An order as a user or an import gives it: validated before anything is stored. Pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Ref = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
OrderType = Literal["sales", "transfer", "return", "sample"]
Channel = Literal["email", "sms", "webhook"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CustomerIn(_Input):
    ref: Ref
    name: ShortText
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = (
        None
    )
    phone: Annotated[str, Field(max_length=32, pattern=r"^\+?[0-9 ()\-]{5,32}$")] | None = None
    notify: frozenset[Channel] = frozenset({"email"})
    webhook_url: Annotated[str, Field(max_length=500, pattern=r"^https://")] | None = None

    @model_validator(mode="after")
    def _reachable(self) -> CustomerIn:
        if "email" in self.notify and not self.email:
            raise ValueError("notify by email needs an email address")
        if "sms" in self.notify and not self.phone:
            raise ValueError("notify by sms needs a phone number")
        if "webhook" in self.notify and not self.webhook_url:
            raise ValueError("notify by webhook needs a webhook_url (https)")
        return self


class LineIn(_Input):
    sku: Ref
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)


class DestinationIn(_Input):
    address: Annotated[str, Field(min_length=1, max_length=500)]
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    radius_m: float | None = Field(default=None, gt=0, le=50_000, allow_inf_nan=False)

    @model_validator(mode="after")
    def _both_or_neither(self) -> DestinationIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


class OrderIn(_Input):
    number: Ref
    type: OrderType = "sales"
    customer: CustomerIn
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    destination: DestinationIn
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    priority: int = Field(default=0, ge=0, le=9)
    notes: Annotated[str, Field(max_length=2000)] | None = None
    packages: int = Field(default=1, ge=1, le=999, description="handling units to label")
    tagged: bool = Field(default=False, description="give each package an SSCC-96 EPC")
    trip: Ref | None = None

    @model_validator(mode="after")
    def _window(self) -> OrderIn:
        if self.window_start and self.window_end and self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        skus = [line.sku for line in self.lines]
        if len(skus) != len(set(skus)):
            raise ValueError("a product appears on two lines; put its quantity on one")
        return self


class OrderPatch(_Input):
    """A change to an order; fields left out stay as they are. `version` is the one the
    editor saw: a change made meanwhile by someone else is refused, not overwritten."""

    version: int = Field(ge=1)
    type: OrderType | None = None
    lines: list[LineIn] | None = Field(default=None, min_length=1, max_length=1000)
    destination: DestinationIn | None = None
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    priority: int | None = Field(default=None, ge=0, le=9)
    notes: Annotated[str, Field(max_length=2000)] | None = None
    trip: Ref | None = None
