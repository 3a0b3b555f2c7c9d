"""The address guard: every form of a private address is refused, names are resolved and every
answer checked, and the connection goes to the checked address."""

from __future__ import annotations

import pytest

from dropcut.providers.base import is_public_https
from dropcut.public_urls import UrlRefused, check_public_https

PUBLIC = "93.184.215.14"


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x.png",
        "https://2130706433/x.png",  # decimal
        "https://127.1/x.png",  # short form
        "https://0x7f000001/x.png",  # hex
        "https://0177.0.0.1/x.png",  # octal
        "https://10.0.0.8/x.png",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[::1]/x.png",
        "https://[::ffff:127.0.0.1]/x.png",  # IPv4-mapped
        "https://[64:ff9b::a9fe:a9fe]/x.png",  # NAT64 of 169.254.169.254
        "https://[2002:7f00:1::]/x.png",  # 6to4 of 127.0.0.1
        "https://100.64.0.1/x.png",  # shared address space
        "https://224.0.0.1/x.png",  # multicast
    ],
)
def test_every_spelling_of_a_private_address_is_refused(url):
    with pytest.raises(UrlRefused, match="not a public address"):
        check_public_https(url, resolver({}))
    assert is_public_https(url, allow_insecure=False) is not None


@pytest.mark.parametrize(
    ("url", "table", "why"),
    [
        ("https://localhost./x.png", {"localhost": ["127.0.0.1"]}, "not a public"),
        ("https://rebind.example/x.png", {"rebind.example": [PUBLIC, "10.1.2.3"]}, "10.1.2.3"),
        ("https://wild.nip.example/x.png", {"wild.nip.example": ["192.168.1.1"]}, "192.168"),
        ("https://metadata.google.internal/x", {}, "does not resolve"),
        ("http://cdn.example/x.png", {"cdn.example": [PUBLIC]}, "https"),
        ("https://user:pw@cdn.example/x.png", {"cdn.example": [PUBLIC]}, "user name"),
        ("https:///x.png", {}, "host"),
    ],
)
def test_names_are_resolved_and_every_address_checked(url, table, why):
    with pytest.raises(UrlRefused, match=why):
        check_public_https(url, resolver(table))


def test_a_public_name_is_pinned_to_the_address_that_was_checked():
    checked = check_public_https(
        "https://cdn.example:8443/v/out.mp4?sig=abc", resolver({"cdn.example": [PUBLIC]})
    )
    assert (checked.host, checked.address) == ("cdn.example", PUBLIC)
    assert checked.pinned_url() == f"https://{PUBLIC}:8443/v/out.mp4?sig=abc"
    six = check_public_https(
        "https://cdn6.example/a", resolver({"cdn6.example": ["2606:2800:220:1::1"]})
    )
    assert six.pinned_url() == "https://[2606:2800:220:1::1]/a"
