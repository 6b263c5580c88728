"""The one IP normaliser (app/addresses.py) every module keeps and compares addresses with."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from app.addresses import parse_ip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", IPv4Address("192.0.2.1")),
        ("::ffff:192.0.2.1", IPv4Address("192.0.2.1")),
        ("::FFFF:C000:0201", IPv4Address("192.0.2.1")),
        ("2001:db8::1", IPv6Address("2001:db8::1")),
        ("2001:DB8:0:0::1", IPv6Address("2001:db8::1")),
        # Not mapped: an IPv4-compatible (::a.b.c.d) or NAT64 address stays IPv6.
        ("::192.0.2.1", IPv6Address("::c000:201")),
        ("64:ff9b::192.0.2.1", IPv6Address("64:ff9b::c000:201")),
    ],
)
def test_an_ipv4_mapped_address_is_its_ipv4_address(
    text: str, expected: IPv4Address | IPv6Address
) -> None:
    assert parse_ip(text) == expected
    assert type(parse_ip(text)) is type(expected)


@pytest.mark.parametrize("text", ["", "localhost", "192.0.2.256", " 192.0.2.1", "[::1]", "1.2.3"])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ip(text)
