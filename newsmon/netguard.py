"""The address guard: refuse URLs that lead to private, loopback or otherwise internal hosts.

Feed entries are written by strangers, so a link (or a redirect) may point at
`http://169.254.169.254/` or `http://10.0.0.5/admin`. Before each hop is requested the fetcher
calls `check_url_allowed`, which refuses non-http(s) schemes and credentials in the URL, and,
unless private addresses are allowed, resolves the host and refuses it when any of its
addresses is not a public unicast address.

Known limit: the host name is resolved here for the check and resolved again by the HTTP
stack when it connects. A name whose DNS answer changes between the two lookups (DNS
rebinding, with a very short TTL) can slip past the guard. Closing that window needs a
transport that connects to the checked address itself; run newsmon on a network where
internal services require authentication if that matters to you.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

import httpx

__all__ = [
    "BlockedAddressError",
    "Resolver",
    "check_url_allowed",
    "is_public_address",
    "system_resolver",
]

Resolver = Callable[[str], Awaitable[list[str]]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges that are not reachable public unicast hosts. Python's `is_global` covers most of
# these, but its tables changed between patch releases, so the list is spelled out.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, where cloud metadata services live
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/128",
        "::1/128",
        "::/96",  # deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


async def system_resolver(host: str) -> list[str]:
    """Resolve a host name to its IP addresses with the system resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id such as %eth0
        if address not in addresses:
            addresses.append(address)
    return addresses


def is_public_address(ip: str) -> bool:
    """Tell whether an IP address string is a public unicast address."""
    try:
        address: IPAddress = ipaddress.ip_address(ip.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(str(embedded))
        if any(address in net for net in _BLOCKED_V6):
            return False
    elif any(address in net for net in _BLOCKED_V4):
        return False
    return bool(address.is_global) and not address.is_multicast


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # These IPv6 forms reach an IPv4 host, so the IPv4 host is what must be public.
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class BlockedAddressError(Exception):
    """A URL the fetcher refuses to request."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"{url}: refused: {detail}")
        self.url = url
        self.detail = detail

    def __reduce__(self) -> tuple[type[BlockedAddressError], tuple[str, str]]:
        return (BlockedAddressError, (self.url, self.detail))


def _numeric_host(host: str) -> str | None:
    # The C resolver reads "2130706433", "0x7f.1" and "127.1" as 127.0.0.1; so must the guard.
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host and all(ch in "0123456789abcdefx." for ch in host.lower()):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


async def check_url_allowed(url: str, *, allow_private: bool, resolver: Resolver) -> None:
    """Raise BlockedAddressError unless the URL may be fetched."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise BlockedAddressError(url, f"not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedAddressError(url, f"scheme '{parsed.scheme}' is not http or https")
    if parsed.userinfo:
        raise BlockedAddressError(url, "the URL embeds credentials")
    host = parsed.host.rstrip(".").lower()
    if not host:
        raise BlockedAddressError(url, "the URL has no host")
    if allow_private:
        return
    literal = _numeric_host(host)
    if literal is not None:
        if not is_public_address(literal):
            raise BlockedAddressError(url, f"{host} is a private address")
        return
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        raise BlockedAddressError(url, f"{host} resolves to private address 127.0.0.1")
    addresses = await resolver(host)
    if not addresses:
        raise BlockedAddressError(url, f"{host} resolves to no address")
    for address in addresses:
        if not is_public_address(address):
            raise BlockedAddressError(url, f"{host} resolves to private address {address}")
