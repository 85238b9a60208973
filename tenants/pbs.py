"""Building pbsclient clients from PbsHost rows.

Everything that talks to a PBS host goes through ``client_for_host`` (sync) or
``async_client_for_host`` (fan-out, e.g. metering). Secrets are decrypted here, at the last
moment, and handed straight to the client; they never leave it.

Tests and benchmarks route a host to an in-process simulator with ``install_transport``
(keyed by the host's URL), so the code under test is exactly the production path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
from django.conf import settings

from core.crypto import decrypt_secret
from pbsclient import AsyncPbsClient, PbsClient
from pbsclient.reader import ReaderSession, open_reader
from tenants.models import PbsHost

Purpose = Literal["automation", "metering"]

# URL (without trailing slash) -> transport. Empty in production.
_TRANSPORTS: dict[str, httpx.BaseTransport] = {}
_ASYNC_TRANSPORTS: dict[str, httpx.AsyncBaseTransport] = {}


def _key(url: str) -> str:
    return url.rstrip("/")


def install_transport(
    url: str,
    transport: httpx.BaseTransport | None = None,
    async_transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Route every client for the host at ``url`` through the given transport(s)."""
    if transport is not None:
        _TRANSPORTS[_key(url)] = transport
    if async_transport is not None:
        _ASYNC_TRANSPORTS[_key(url)] = async_transport


def uninstall_transport(url: str) -> None:
    _TRANSPORTS.pop(_key(url), None)
    _ASYNC_TRANSPORTS.pop(_key(url), None)


@contextmanager
def transport_installed(
    url: str,
    transport: httpx.BaseTransport | None = None,
    async_transport: httpx.AsyncBaseTransport | None = None,
) -> Iterator[None]:
    install_transport(url, transport, async_transport)
    try:
        yield
    finally:
        uninstall_transport(url)


def _credentials(host: PbsHost, purpose: Purpose) -> tuple[str, str]:
    """The token id and secret for ``purpose``. Metering falls back to the automation
    token when no read-only metering token is configured."""
    if purpose == "metering" and host.metering_token_id and host.metering_secret_enc:
        return host.metering_token_id, decrypt_secret(host.metering_secret_enc)
    if purpose not in ("automation", "metering"):
        raise ValueError(f"unknown purpose {purpose!r}")
    return host.token_id, decrypt_secret(host.token_secret_enc)


def _common_kwargs(host: PbsHost, purpose: Purpose) -> dict[str, Any]:
    token_id, token_secret = _credentials(host, purpose)
    return {
        "base_url": host.url,
        "token_id": token_id,
        "token_secret": token_secret,
        "fingerprint": host.fingerprint or None,
        "ca_pem": host.ca_pem or None,
        "timeout": settings.PORTAL_PBS_TIMEOUT_SECONDS,
        "max_connections": host.max_connections,
        "host_label": host.name,
    }


def client_for_host(
    host: PbsHost,
    purpose: Purpose = "automation",
    transport: httpx.BaseTransport | None = None,
) -> PbsClient:
    """A PbsClient for ``host``; use it as a context manager."""
    return PbsClient(
        **_common_kwargs(host, purpose),
        transport=transport or _TRANSPORTS.get(_key(host.url)),
    )


def async_client_for_host(
    host: PbsHost,
    purpose: Purpose = "automation",
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncPbsClient:
    """An AsyncPbsClient for ``host`` (per-host connection limit from the row)."""
    return AsyncPbsClient(
        **_common_kwargs(host, purpose),
        transport=transport or _ASYNC_TRANSPORTS.get(_key(host.url)),
    )


def reader_for_host(
    host: PbsHost,
    *,
    store: str,
    ns: str,
    backup_type: str,
    backup_id: str,
    backup_time: int,
    purpose: Purpose = "metering",
) -> ReaderSession:
    """A reader session on one snapshot of ``host`` (pinned TLS, the credential of ``purpose``)."""
    token_id, token_secret = _credentials(host, purpose)
    return open_reader(
        base_url=host.url,
        token_id=token_id,
        token_secret=token_secret,
        store=store,
        ns=ns,
        backup_type=backup_type,
        backup_id=backup_id,
        backup_time=backup_time,
        fingerprint=host.fingerprint or None,
        ca_pem=host.ca_pem or None,
        timeout=settings.PORTAL_PBS_TIMEOUT_SECONDS,
    )


def client_for_values(
    *,
    url: str,
    token_id: str,
    token_secret: str,
    fingerprint: str = "",
    ca_pem: str = "",
    name: str = "new-host",
) -> PbsClient:
    """A client for a host that is not saved yet (registration checks it first)."""
    return PbsClient(
        base_url=url,
        token_id=token_id,
        token_secret=token_secret,
        fingerprint=fingerprint or None,
        ca_pem=ca_pem or None,
        timeout=settings.PORTAL_PBS_TIMEOUT_SECONDS,
        transport=_TRANSPORTS.get(_key(url)),
        host_label=name,
    )
