"""Outgoing requests to addresses people typed in (webhooks): only to the public internet.

A webhook URL is checked when it is saved and again when it is used. At send time the name
is resolved once, every address it resolves to must be globally routable, and the request
goes to the address that was checked (the name travels in the Host header and as the TLS
server name, so the certificate is still verified for it): a DNS answer that changes between
the check and the connect (rebinding) cannot point the portal at an internal service.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

REFUSED = "the webhook address is not allowed (it must be a public internet address)"


class AddressRefused(Exception):
    """The URL points at an address the portal must not call (loopback, private, link-local,
    metadata services...) or cannot be resolved."""


class AddressUnresolved(AddressRefused):
    """The name did not resolve (now): worth another try later."""


@dataclass(frozen=True)
class PinnedTarget:
    """Where to send: the URL with the checked address in place of the name, and the name."""

    url: str
    host: str
    sni_hostname: str | None


def _allow_private() -> bool:
    # Only for a development stack or tests that run their receiver on loopback.
    return bool(settings.PORTAL_WEBHOOK_ALLOW_PRIVATE_ADDRESSES)


def _address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global or _allow_private()


def webhook_url_problem(url: str) -> str:
    """Why ``url`` cannot be a webhook URL ("" when it can), without any network look-up:
    https (http only in development), a host name, no credentials, no literal internal IP."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "the webhook URL is not a valid URL"
    plain_http_ok = settings.DEBUG or _allow_private()  # a local receiver has no TLS
    if parts.scheme not in (("https", "http") if plain_http_ok else ("https",)):
        return "the webhook URL must be http(s)" if plain_http_ok else "the webhook URL must use https"
    if not parts.hostname:
        return "the webhook URL needs a host name"
    if parts.username is not None or parts.password is not None:
        return "leave credentials out of the webhook URL (the request is signed instead)"
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "" if _allow_private() else REFUSED
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ""
    return "" if _address_allowed(host) else REFUSED


def pinned_target(url: str) -> PinnedTarget:
    """Resolve the URL's host once and check every address; raise AddressRefused or return
    the URL to connect to (the checked address) with the name for Host and TLS."""
    problem = webhook_url_problem(url)
    if problem:
        raise AddressRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise AddressUnresolved("the webhook host name could not be resolved") from exc
    addresses = sorted({info[4][0] for info in infos})
    if not addresses or not all(_address_allowed(a) for a in addresses):
        raise AddressRefused(REFUSED)
    address = addresses[0]
    netloc_host = f"[{address}]" if ":" in address else address
    netloc = f"{netloc_host}:{parts.port}" if parts.port else netloc_host
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = f"{host}:{parts.port}" if parts.port else host
    return PinnedTarget(url=pinned, host=host_header, sni_hostname=host if parts.scheme == "https" else None)
