"""How our stages, milestones and documents map onto the GS1 Core Business Vocabulary (CBV
2.0). Short names ("receiving") are the JSON-LD form of https://ref.gs1.org/cbv/BizStep-...;
the EPCIS context expands them. The tables are the mapping docs/epcis.md describes."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

CONTEXT = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
SCHEMA_VERSION = "2.0"


@dataclass(frozen=True, slots=True)
class Step:
    biz_step: str
    disposition: str | None


# A scan at a read point of this stage (event_contract.Stage) was this business step.
STAGE_STEPS: MappingProxyType[str, Step] = MappingProxyType(
    {
        "receive": Step("receiving", "in_progress"),
        "pick": Step("picking", "in_progress"),
        "pack": Step("packing", "in_progress"),
        "dispatch": Step("loading", "in_progress"),
    }
)
UNKNOWN_STAGE = Step("other", None)  # a read point without a stage: seen, nothing more

# An order reaching this state (from trips and geofences, not scans) was this business step.
# Delivered is "accepting" (the customer takes possession) without a disposition: what the
# goods are after that is the customer's to say, and CBV has no "delivered" disposition.
MILESTONE_STEPS: MappingProxyType[str, Step] = MappingProxyType(
    {
        "in_transit": Step("departing", "in_transit"),
        "arrived": Step("arriving", "in_transit"),
        "delivered": Step("accepting", None),
    }
)

# Business transaction types: CBV's where one fits; our own URIs where CBV has none (CBV has
# no sales order: "po" is the buyer's document, and our own purchase orders use it).
PURCHASE_ORDER = "po"
DESPATCH_ADVICE = "desadv"  # an ASN
ORDER_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {
        "sales": "urn:tracklane:btt:so",
        "transfer": "urn:tracklane:btt:transfer",
        "sample": "urn:tracklane:btt:sample",
        "return": "rma",
    }
)
