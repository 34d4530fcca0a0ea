"""The webhook SSRF guard's pure part (ingest_service/notify/netguard.py): which addresses a
webhook may reach without an admin's leave, in every IPv6 spelling of an IPv4 address, and
what a webhook URL must look like when it is saved. Refusals at send time, against a real
receiver, are in test_webhooks.py."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_service.notify.netguard import UnsafeDestination, check_url, why_unsafe


@pytest.mark.parametrize(
    ("url", "allow_private", "message"),
    [
        ("http://hooks.example.com/x", False, "must start with https://"),
        ("ftp://hooks.example.com/x", True, "must start with https:// or http://"),
        ("https://user:pw@hooks.example.com/x", False, "must not carry user:password@"),
        ("https:///x", False, "has no host"),
        ("https://127.1/x", False, "short or numeric form"),
        ("https://2130706433/x", True, "short or numeric form"),
        ("https://hooks.example.com:99999/x", False, "not a valid URL"),
        ("https://[::ffff:10.1.2.3]/x", False, "private address"),
    ],
)
def test_urls_are_checked_when_saved(url: str, allow_private: bool, message: str) -> None:
    with pytest.raises(UnsafeDestination, match=message):
        check_url(url, allow_private)
    with pytest.raises(ValueError):  # what the admin API catches
        check_url(url, allow_private)


def test_good_urls_pass_when_saved() -> None:
    check_url("https://hooks.example.com/tracklane?token=abc", False)
    check_url("https://8.8.8.8:8443/x", False)
    check_url("http://10.0.0.5:8080/x", True)
    check_url("https://[2606:4700::1111]/x", False)


PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "100.64.0.0/10",
              "169.254.0.0/16", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"]  # fmt: skip
v4 = st.ip_addresses(v=4)


@given(ip=st.one_of(*(st.ip_addresses(network=n) for n in PRIVATE_V4)))
def test_every_private_ipv4_address_is_refused_in_every_spelling(ip) -> None:
    assert why_unsafe(ip) is not None
    for spelling in _ipv6_spellings(ip):
        assert why_unsafe(spelling) is not None, spelling


@given(ip=v4)
def test_ipv6_spellings_of_an_ipv4_address_get_its_verdict(ip) -> None:
    safe = why_unsafe(ip) is None
    for spelling in _ipv6_spellings(ip):
        assert (why_unsafe(spelling) is None) == safe, spelling


def _ipv6_spellings(ip: ipaddress.IPv4Address) -> list[ipaddress.IPv6Address]:
    n = int(ip)
    return [
        ipaddress.IPv6Address(f"::ffff:{ip}"),  # mapped
        ipaddress.IPv6Address(0xFFFF << 32 | n),  # mapped, from the integer
        ipaddress.IPv6Address(f"::ffff:0:{ip}"),  # translated
        ipaddress.IPv6Address(f"64:ff9b::{ip}"),  # NAT64
        ipaddress.IPv6Address((0x2002 << 112) | (n << 80)),  # 6to4
    ]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("10.0.0.5", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a carrier-grade NAT address (100.64.0.0/10)"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("fe80::1%eth0", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("::127.0.0.1", "a reserved address"),  # IPv4-compatible, deprecated
        ("::ffff:0:10.0.0.1", "a private address (10.0.0.1) in IPv4-translated form"),
        ("64:ff9b::10.0.0.1", "a private address (10.0.0.1) in NAT64 form"),
        ("2002:7f00:1::", "a loopback address (127.0.0.1) in 6to4 form"),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "a Teredo tunnel address"),  # carrying 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:3f57:fdf2", "a private address (192.168.2.13) in Teredo form"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("2002:808:808::", None),
    ],
)
def test_why_an_address_is_refused(address: str, reason: str | None) -> None:
    assert why_unsafe(ipaddress.ip_address(address)) == reason
