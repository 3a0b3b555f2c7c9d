"""The address guard: an https URL from outside (a provider's result link, a user's reference
image) must name a host whose every address is globally routable, and dropcut connects to the
address it checked, never to a second lookup's answer (DNS rebinding).

Private, loopback, link-local (cloud metadata), shared, reserved and multicast ranges are
refused, as the standard library's `ipaddress` classifies them (`is_global`), including IPv4
addresses carried inside IPv6 (mapped, 6to4, Teredo, NAT64 64:ff9b::/96) and the shorthand IPv4
forms a URL parser accepts (`127.1`, `2130706433`, `0x7f000001`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: `resolve(host, port)`: the addresses a name resolves to (raises OSError when it does not).
Resolver = Callable[[str, int], list[str]]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UrlRefused(ValueError):
    """The URL is not one dropcut fetches or passes on; the message completes "the URL ...".."""


def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (getaddrinfo)."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(answer[4][0]) for answer in answers})


def literal_address(host: str) -> IPAddress | None:
    """The IP address a URL host spells, in any form a URL parser accepts; None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:  # inet_aton takes the shorthand forms (127.1, 2130706433, 0x7f000001): no lookup
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why `address` may not be contacted, or None when it is globally routable."""
    carried: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            carried.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            carried.append(address.sixtofour)
        if address.teredo is not None:
            carried.extend(address.teredo)
        if address in _NAT64:
            carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    for candidate in carried:
        if not candidate.is_global or candidate.is_multicast:
            return f"points at {candidate}, which is not a public address"
    return None


@dataclass(frozen=True)
class CheckedUrl:
    """A URL whose host was resolved and checked, with the address to connect to."""

    url: str
    host: str
    address: str

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (for the connection only: send
        `Host: host` and TLS SNI `host`, so the certificate is still checked against the name)."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]" if ip.version == 6 else str(ip)
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_public_https(url: str, resolve: Resolver = system_resolver) -> CheckedUrl:
    """Check `url` (https, a host, no credentials) and resolve its host: every address must be
    public. Returns the URL with the address to connect to; raises UrlRefused saying why."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise UrlRefused(f"is malformed ({exc})") from None
    if parts.scheme != "https":
        raise UrlRefused("must be an https URL")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UrlRefused("must name a host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("must not carry a user name or password")
    literal = literal_address(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise UrlRefused(f"names a host ({host}) that does not resolve") from None
        if not addresses:
            raise UrlRefused(f"names a host ({host}) that does not resolve")
    for address in addresses:
        problem = address_problem(ipaddress.ip_address(address.split("%", 1)[0]))
        if problem:
            raise UrlRefused(problem)
    return CheckedUrl(url=url, host=host, address=addresses[0])
