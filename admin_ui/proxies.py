"""Believe X-Forwarded-For and X-Forwarded-Proto only when they come from a trusted proxy.

werkzeug's ProxyFix is not used: it believes the headers from whatever peer sends them and
counts hops (x_for=N) instead of asking who the hops are. Here the peer must be in
`[web] trusted_proxies`, and X-Forwarded-For is walked from the right (each proxy appends
the address it saw), skipping the trusted proxies: the first address that is not one of
them is the client. Anything further left was written by that client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOPS = 32  # hops of X-Forwarded-For looked at, from the right
# Forwarding headers as WSGI names them; none of them reaches the app unprocessed.
FORWARDING = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_FORWARDED",
)
PEER_KEY = "postroom.proxy_peer"  # the environ key that keeps the direct peer's address


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR networks as networks; raises ValueError naming a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or network (like 10.0.0.0/8): {value!r}") from None
    return tuple(networks)


def parse_address(text: str | None) -> IPAddress | None:
    """One address as a proxy writes it (1.2.3.4, 1.2.3.4:5678, [::1]:80, ::1); None if not."""
    text = (text or "").strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR and the URL scheme as the trusted proxies saw them."""

    def __init__(self, app, trusted: Iterable[str]):
        self.app = app
        self.networks = parse_networks(trusted)

    def is_trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: str) -> str:
        """The client's address: the right-most hop that is not a trusted proxy."""
        client = parse_address(peer)
        if not self.is_trusted(client):
            return peer
        for hop in reversed(forwarded_for.rsplit(",", MAX_HOPS)[-MAX_HOPS:]):
            address = parse_address(hop)
            if address is None:
                break  # a proxy wrote something else ("unknown"): stop at the last one known
            client = address
            if not self.is_trusted(address):
                break
        return str(client)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR", "")
        environ[PEER_KEY] = peer
        if self.networks and self.is_trusted(parse_address(peer)):
            environ["REMOTE_ADDR"] = self.client(peer, environ.get("HTTP_X_FORWARDED_FOR", ""))
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").rsplit(",", 1)[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        for name in FORWARDING:
            environ.pop(name, None)
        return self.app(environ, start_response)
