"""The address a request comes from, for throttling: the TCP peer, or with proxies in front
the X-Forwarded-For entry `trusted_proxy_hops` from the right, as Envoy's
`xff_num_trusted_hops` picks it (entries further left are the client's to write, and lie).

IPv6 addresses count per /64: one subscriber usually holds a whole /64, so per-address
counting would give an attacker 2^64 fresh addresses.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request


def _normal(text: str) -> str:
    text = text.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text[:64] or "unknown"  # not an address (a test client, a Unix socket): as given
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def source_address(request: Request, trusted_hops: int) -> str:
    peer = request.client.host if request.client else ""
    if trusted_hops > 0:
        # every X-Forwarded-For line, in order, is one list (RFC 9110 §5.3)
        entries = [e for line in request.headers.getlist("x-forwarded-for") for e in line.split(",")]
        if len(entries) >= trusted_hops:
            return _normal(entries[-trusted_hops])
        # fewer entries than proxies: it did not come through them all (Envoy falls back likewise)
    return _normal(peer)
