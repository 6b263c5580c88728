"""IP addresses as Gangway keeps and compares them (pure, stdlib only)."""

from __future__ import annotations

import functools
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address


# Every request parses its peer's address several times (client IP, burst counter, access log);
# addresses are immutable values, so the parse is remembered.
@functools.lru_cache(maxsize=4096)
def parse_ip(text: str) -> IPAddress:
    """`text` as an address, an IPv4-mapped IPv6 one (`::ffff:192.0.2.1`) as its IPv4 address.

    A dual-stack socket reports IPv4 clients in the mapped form, and an SDK may send either:
    one phone must be one address for touches, installs, their comparison and a GeoIP lookup.
    Raises ValueError when `text` is not an address; surrounding whitespace is the caller's.
    """
    address = ip_address(text)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# How much of an address is kept when it is masked: the network, not the host (an IPv4 /24, an
# IPv6 /48, what Google Analytics and most CDNs keep of an anonymised address).
MASK_PREFIX = {4: 24, 6: 48}


# The access log masks the address of every visitor whose data use is limited, and building
# the network is the slow part of it; the answer depends on the text alone.
@functools.lru_cache(maxsize=4096)
def truncate_ip(text: str) -> str:
    """`text` with its host part zeroed (`203.0.113.7` -> `203.0.113.0`); text that is not an
    address is answered unchanged (a masked value is masked already)."""
    try:
        address = parse_ip(text.strip())
    except ValueError:
        return text
    network = ip_network(f"{address}/{MASK_PREFIX[address.version]}", strict=False)
    return str(network.network_address)
