"""Where a webhook may go: public addresses only, unless an admin allowed private ones.

A customer's webhook URL is theirs to type, so without this guard it would let them make our
servers call the cloud metadata service, the database or an admin port on our network (SSRF).
`check_url` runs when a URL is saved (scheme, no credentials, IP literals); `resolve_public`
runs at each send and returns the addresses the sender must connect to: the checked ones,
never a second lookup that DNS could answer differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from ingest_service.notify.channels import PermanentFailure

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_HINT = "an admin can allow private destinations for this customer"
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 ::ffff:0:a.b.c.d

# First match names the refusal; `not is_global` at the end catches what the list misses.
_CLASSES: tuple[tuple[str, str], ...] = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)


class UnsafeDestination(PermanentFailure, ValueError):
    """The webhook URL or the address it resolves to is not allowed for this customer."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries (mapped, translated, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-translated"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo"
    return None


def why_unsafe(ip: IPAddress) -> str | None:
    """Why a webhook may not reach `ip` without an admin's leave ("a private address"), or
    None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_v4(ip)
        if embedded is not None:
            inner, how = embedded
            reason = why_unsafe(inner)
            if reason is not None:
                return f"{reason} ({inner}) in {how} form"
            if how == "Teredo":  # a tunnel endpoint we cannot vouch for, whatever it carries
                return "a Teredo tunnel address"
            return None  # another spelling of a public IPv4 address
        if ip.is_site_local:
            return "a site-local address"
    elif ip in _CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    for attribute, reason in _CLASSES:
        if getattr(ip, attribute):
            return reason
    if not ip.is_global:
        return "not a public address"
    return None


def _refuse(host: str, ip: IPAddress, reason: str) -> UnsafeDestination:
    if _ip_literal(host) == ip:
        return UnsafeDestination(f"refused: {host} is {reason}; {ALLOW_HINT}")
    return UnsafeDestination(f"refused: {host} resolves to {ip}, {reason}; {ALLOW_HINT}")


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, allow_private: bool) -> None:
    """Refuse a webhook URL when it is saved (raises UnsafeDestination, a ValueError): https
    only (http too when private destinations are allowed), no user:password@, a host, and an
    IP literal must be public. Host names are checked when we send (`resolve_public`)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UnsafeDestination(f"webhook URL {url!r} is not a valid URL: {e}") from e
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in schemes:
        raise UnsafeDestination(
            f"webhook URL must start with {' or '.join(f'{s}://' for s in schemes)}"
            f", not {parts.scheme + '://' if parts.scheme else url!r}"
            + ("" if allow_private else "; plain http is only for private destinations")
        )
    if "@" in parts.netloc:
        raise UnsafeDestination(
            "webhook URL must not carry user:password@; the request is signed instead"
        )
    host = parts.hostname
    if not host:
        raise UnsafeDestination(f"webhook URL {url!r} has no host")
    if port == 0:
        raise UnsafeDestination(f"webhook URL {url!r} has port 0")
    ip = _ip_literal(host)
    if ip is None:
        labels = host.rstrip(".").split(".")
        if labels[-1].isdigit() or labels[-1].lower().startswith("0x"):
            # 127.1, 2130706433, 0x7f.0.0.1: resolvers read these as IPv4 addresses.
            raise UnsafeDestination(
                f"webhook host {host!r} looks like an IPv4 address in a short or numeric"
                " form; write it as four decimal numbers (a.b.c.d)"
            )
        if not allow_private and labels[-1].lower() == "localhost":
            raise UnsafeDestination(f"refused: {host} is a loopback name; {ALLOW_HINT}")
        return
    if not allow_private:
        reason = why_unsafe(ip)
        if reason is not None:
            raise _refuse(host, ip, reason)


async def resolve_public(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses of `host` to connect to, in the resolver's order. Raises
    UnsafeDestination if ANY of them is not public (unless `allow_private`), and OSError when
    the name does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as e:
        raise OSError(f"webhook host {host}: name lookup failed: {e.strerror or e}") from e
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])  # an IPv6 zone stays: fe80::1%eth0
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OSError(f"webhook host {host}: name lookup returned no address")
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address)
            reason = why_unsafe(ip)
            if reason is not None:
                raise _refuse(host, ip, reason)
    return addresses
