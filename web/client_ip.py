"""The client's address for rate limits: the direct peer, or what a trusted proxy says in X-Forwarded-For.

Anyone can send `X-Forwarded-For`, so it is read only when the direct peer is one of
`TRUSTED_PROXIES`. The list is then walked from the right (the entries our proxies appended)
past every trusted address; the first untrusted one is the client. The left-most entry is the
one a client can write itself, so it is used only when every hop after it is trusted.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_ip(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str | None:
    """The address rate limits count; `forwarded_for` are the X-Forwarded-For header values in order."""
    if not trusted or not _trusted(_address(peer or ""), trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage: stop at the last address a trusted hop vouched for
            return client
        client = str(address)
        if not _trusted(address, trusted):
            return client
    return client
