"""What counts as one client for a per-client limit: an IPv4 address or an IPv6 /64.

One subscriber usually holds a whole IPv6 /64, so counting single IPv6 addresses would let one
client pass any limit; an IPv4 address written in IPv6 form (::ffff:a.b.c.d) is that address.
Used by the login throttle and the listener's per-address connection limit alike.
"""

from __future__ import annotations

import hashlib
import ipaddress


def client_network(address: str | None) -> str:
    """The client an address stands for: itself (IPv4), its /64 (IPv6), or a digest of the
    text when it is no address."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return hashlib.sha256((address or "").encode()).hexdigest()[:32]
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
