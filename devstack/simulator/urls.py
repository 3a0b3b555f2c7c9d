"""Which URLs the simulated APIs accept: inputs, reference images and callback hosts.

The simulator's allowances (see the package docstring) live here: ``http://`` inputs on a
loopback host, and the private-host check on callback URLs.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Any


def is_loopback_host(host: str) -> bool:
    """localhost, ``*.localhost`` or a loopback IP literal (host names are not resolved)."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_private_host(host: str) -> bool:
    """A loopback host, or a private, link-local, reserved, unspecified or multicast IP literal."""
    host = host.lower().strip("[]")
    if is_loopback_host(host):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
    )


def valid_input_url(value: Any, *, allow_data: bool) -> bool:
    """https URL, data URI (aimlapi), or the simulator allowance: http on a loopback host."""
    if not isinstance(value, str) or not value:
        return False
    if allow_data and value.startswith("data:"):
        return "," in value
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


def is_uri(value: Any) -> bool:
    """A data URI, or an http(s) URL with a host."""
    if not isinstance(value, str) or not value:
        return False
    if value.startswith("data:"):
        return True
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
