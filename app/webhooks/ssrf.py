"""Where a webhook may point: http(s) to public addresses only, unless the server allows more.

The host is resolved and *every* address checked (a name with one public and one private
address is refused). The check runs when a webhook is registered and again before each
delivery, and the delivery connects to the address that was checked (the URL's host stays in
the Host header and TLS SNI), so a name that re-resolves to 127.0.0.1 after registration
(DNS rebinding) reaches nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(ValueError):
    """The URL may not be used as a webhook target; the message says why."""


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    host: str
    address: str  # the vetted address to connect to

    @property
    def pinned_url(self) -> httpx.URL:
        """The URL with its host replaced by the vetted address."""
        return self.url.copy_with(host=self.address)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address is not a public one, or None when it is."""
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = blocked_reason(inner)
        if reason is not None:
            return reason
    checks = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, off the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(f"the host {host!r} does not resolve ({exc.strerror})") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_target_url(url: str) -> httpx.URL:
    """Syntax rules: http or https, a host, no credentials in the URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with http:// or https://")
    if not parsed.host:
        raise TargetRefused("the URL has no host")
    if parsed.userinfo:
        raise TargetRefused("credentials in the URL are not allowed; verify the signature instead")
    return parsed


async def vet(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> Target:
    """Check a target URL and pick the address to connect to; raise TargetRefused if unsafe."""
    parsed = parse_target_url(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = await (resolver or resolve)(host, port)
    if not addresses:
        raise TargetRefused(f"the host {host!r} has no addresses")
    if not allow_private:
        for address in addresses:
            reason = blocked_reason(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise TargetRefused(
                    f"{host} resolves to {address}, a {reason} address; webhooks may only "
                    "target public addresses on this server"
                )
    return Target(url=parsed, host=host, address=addresses[0])
