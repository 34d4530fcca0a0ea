"""EPCIS identifiers for what we scan and where: EPC pure-identity URIs, class patterns,
read points. Pure, no I/O.

An SSCC or GTIN cannot be split into company prefix and reference from its digits alone
(the prefix length comes from GS1's allocation table), so a key is written as an EPC URI only
when its split is known: from an RFID tag (whose partition says it), or from a company prefix
we were told. Otherwise it is written as a GS1 Digital Link URI, which EPCIS 2.0 accepts for
the same identifiers and which needs no split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from identifiers.epc import DecodedEpc, decode_epc

DIGITAL_LINK = "https://id.gs1.org"
PRIVATE = "urn:tracklane"  # our own identifiers where GS1 has no key (sites, doors, trips)


@dataclass(frozen=True, slots=True)
class Locations:
    """What we know about our GS1 keys: company prefixes (longest match wins) and GLNs."""

    company_prefixes: Sequence[str] = ()
    site_glns: dict[str, str] = field(default_factory=dict)
    """site -> the 13-digit GLN of the site."""
    party_gln: str | None = None
    """Our own GLN: it names the business transactions we issue (sales and purchase orders)."""

    def split(self, digits: str) -> int | None:
        """Length of the known company prefix `digits` starts with, or None."""
        known = [p for p in self.company_prefixes if digits.startswith(p)]
        return max(map(len, known)) if known else None


def sscc_uri(sscc: str, where: Locations, epc_hex: str | None = None) -> str:
    """urn:epc:id:sscc:<prefix>.<extension><serial ref>, or its Digital Link when unsplittable."""
    if epc_hex:
        decoded = decode_epc(epc_hex)
        if isinstance(decoded, DecodedEpc) and decoded.scheme.startswith("sscc"):
            return decoded.epc_uri
    n = where.split(sscc[1:17])
    if n is None:
        return f"{DIGITAL_LINK}/00/{sscc}"
    return f"urn:epc:id:sscc:{sscc[1 : 1 + n]}.{sscc[0]}{sscc[1 + n : 17]}"


def gtin_class_uri(gtin14: str, where: Locations) -> str:
    """The class of a product: urn:epc:idpat:sgtin:<prefix>.<indicator><item ref>.* or its
    Digital Link when the prefix is unknown."""
    n = where.split(gtin14[1:13])
    if n is None:
        return f"{DIGITAL_LINK}/01/{gtin14}"
    return f"urn:epc:idpat:sgtin:{gtin14[1 : 1 + n]}.{gtin14[0]}{gtin14[1 + n : 13]}.*"


def tag_uri(epc_hex: str) -> str | None:
    """The pure identity of a tag read (SGTIN, SSCC, ...), None when it is not a GS1 EPC."""
    decoded = decode_epc(epc_hex)
    return decoded.epc_uri if isinstance(decoded, DecodedEpc) else None


def _sgln(gln: str, extension: str, where: Locations) -> str:
    n = where.split(gln[:12])
    if n is None:
        return f"{DIGITAL_LINK}/414/{gln}" + (
            f"/254/{quote(extension)}" if extension != "0" else ""
        )
    return f"urn:epc:id:sgln:{gln[:n]}.{gln[n:12]}.{quote(extension, safe='-_.')}"


def site_uri(site: str, where: Locations) -> str:
    """The business location: the site's SGLN when its GLN is configured."""
    gln = where.site_glns.get(site)
    return _sgln(gln, "0", where) if gln else f"{PRIVATE}:site:{quote(site)}"


def read_point_uri(site: str, door: str | None, station: str | None, where: Locations) -> str:
    """A door or station of a site: its SGLN with the door as extension, or a private URN."""
    kind, name = ("door", door) if door else ("station", station)
    if name is None:
        return site_uri(site, where)
    gln = where.site_glns.get(site)
    if gln:
        return _sgln(gln, name, where)
    return f"{PRIVATE}:site:{quote(site)}:{kind}:{quote(name)}"


def geo_uri(lat: float, lon: float) -> str:
    """A point as an RFC 5870 geo URI, which EPCIS 2.0 allows as a read point."""
    return f"geo:{lat:.6f},{lon:.6f}"


def trip_uri(trip: str) -> str:
    return f"{PRIVATE}:trip:{quote(trip)}"
