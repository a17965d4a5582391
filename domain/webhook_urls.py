"""Where a webhook may send: http(s) URLs whose host is (or resolves to) a public
address. The URL's shape is checked here; integrations/webhook_http.py resolves the
host and checks every address with `is_public_address` when it connects."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2_000

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(address: IpAddress) -> bool:
    """A globally routable unicast address: not private, loopback, link-local (cloud
    metadata at 169.254.169.254), multicast, reserved, unspecified, shared (100.64/10),
    documentation; IPv6 forms that embed an IPv4 address are judged by that address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address.is_private
    )


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    scheme: str
    host: str  # lower case; an IPv6 literal without brackets
    port: int


def check_url(url: str, *, allow_private: bool) -> tuple[WebhookTarget | None, str | None]:
    """(target, None) for a URL a webhook may have, else (None, why not). A host name
    is only checked for shape here; its addresses are checked when resolved."""
    if len(url) > MAX_URL_LENGTH:
        return None, f"url: at most {MAX_URL_LENGTH} characters"
    if not url.isprintable() or any(c.isspace() for c in url):
        return None, "url: no spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, "url: not a valid URL"
    if parts.scheme not in ("http", "https"):
        return None, "url: only http:// and https:// URLs"
    host = (parts.hostname or "").lower()
    if not host:
        return None, "url: a host is needed"
    if parts.username is not None or parts.password is not None:
        return None, "url: no user or password in the URL (the signature authenticates us)"
    if parts.fragment:
        return None, "url: no #fragment"
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        if not _HOST_CHARS.issuperset(host) or len(host) > 253:
            return None, "url: not a valid host name"
    if literal is not None and not allow_private and not is_public_address(literal):
        return None, f"url: {host} is not a public address"
    default_port = 443 if parts.scheme == "https" else 80
    return WebhookTarget(parts.scheme, host, port or default_port), None


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
