"""TLS pinning against a real TLS server: a wrong pin fails the handshake before a single
request byte (so the token never leaves the process), for the sync and the async client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from pbsclient import AsyncPbsClient, PbsClient, RetryPolicy
from pbsclient.errors import FingerprintMismatch, PbsTlsError
from pbsclient.models import VersionInfo
from pbsclient.validation import PbsValidationError
from tests.pbsclient.support import SECRET, TOKEN_ID
from tests.pbsclient.tlsserver import Certs, RecordingTlsServer, make_certs

OTHER_PIN = ":".join(["5a"] * 32)


@pytest.fixture(scope="module")
def certs() -> Certs:
    return make_certs()


@pytest.fixture
def server(certs: Certs) -> Iterator[RecordingTlsServer]:
    with RecordingTlsServer(certs) as srv:
        yield srv


def _version(kind: str, url: str, **kwargs: object) -> VersionInfo:
    options = {"base_url": url, "token_id": TOKEN_ID, "token_secret": SECRET, "timeout": 5.0,
               "retry": RetryPolicy(max_attempts=1), **kwargs}  # fmt: skip
    if kind == "sync":
        with PbsClient(**options) as client:  # type: ignore[arg-type]
            return client.version()

    async def run() -> VersionInfo:
        async with AsyncPbsClient(**options) as client:  # type: ignore[arg-type]
            return await client.version()

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wrong_pin_fails_in_the_handshake_and_sends_zero_bytes(
    kind: str, server: RecordingTlsServer, certs: Certs
) -> None:
    with pytest.raises(FingerprintMismatch) as info:
        _version(kind, server.url, fingerprint=OTHER_PIN)
    server.settle()

    exc = info.value
    assert exc.expected == OTHER_PIN
    assert exc.presented == certs.fingerprint
    assert OTHER_PIN in str(exc)
    assert certs.fingerprint in str(exc)
    assert exc.status is None
    assert exc.path == "/version"
    # The server really was contacted, and got nothing after (or instead of) the handshake.
    assert server.connections == 1
    assert bytes(server.received) == b""
    assert server.requests == []
    assert SECRET not in str(exc)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_pin_mismatch_is_not_retried(kind: str, server: RecordingTlsServer) -> None:
    with pytest.raises(FingerprintMismatch):
        _version(kind, server.url, fingerprint=OTHER_PIN, retry=RetryPolicy(max_attempts=4, base_delay=0))
    server.settle()
    assert server.connections == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_matching_pin_works_and_upper_case_is_accepted(kind: str, server: RecordingTlsServer, certs: Certs) -> None:
    version = _version(kind, server.url, fingerprint=certs.fingerprint.upper())
    assert version == VersionInfo("4.2", "3", "tls-test")
    server.settle()
    assert len(server.requests) == 1
    assert f"Authorization: PBSAPIToken={TOKEN_ID}:{SECRET}".encode() in server.requests[0]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_malformed_pin_is_refused_before_any_connection(kind: str, server: RecordingTlsServer) -> None:
    with pytest.raises(PbsValidationError, match="32 hex pairs separated by ':'"):
        _version(kind, server.url, fingerprint="AA:BB:CC")
    assert server.connections == 0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_ca_that_signed_the_certificate_is_trusted_via_ca_pem(
    kind: str, server: RecordingTlsServer, certs: Certs
) -> None:
    assert _version(kind, server.url, ca_pem=certs.ca_pem).repoid == "tls-test"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_unknown_ca_fails_the_handshake_without_sending_anything(kind: str, server: RecordingTlsServer) -> None:
    other_ca = make_certs("someone-else").ca_pem
    with pytest.raises(PbsTlsError) as info:
        _version(kind, server.url, ca_pem=other_ca)
    server.settle()
    assert not isinstance(info.value, FingerprintMismatch)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert "pin the server's fingerprint" in str(info.value)
    assert bytes(server.received) == b""


def test_without_pin_or_ca_the_system_store_is_used_and_refuses_a_private_ca(server: RecordingTlsServer) -> None:
    with pytest.raises(PbsTlsError):
        _version("sync", server.url)
    server.settle()
    assert bytes(server.received) == b""


def test_pinned_client_reports_its_normalised_pin(certs: Certs) -> None:
    client = PbsClient(base_url="https://127.0.0.1:1", token_id=TOKEN_ID, token_secret=SECRET,
                       fingerprint=certs.fingerprint.upper())  # fmt: skip
    assert client.fingerprint == certs.fingerprint
    assert "tls=pinned" in repr(client)
    client.close()


def test_control_without_the_pin_check_the_recorder_does_see_the_token(server: RecordingTlsServer) -> None:
    """Guards the zero-bytes assertions above: the recorder captures what an unpinned
    client sends, so "nothing received" really means nothing was sent."""
    import ssl

    import httpx

    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    with httpx.Client(verify=unchecked) as raw:
        raw.get(server.url + "/api2/json/version", headers={"Authorization": f"PBSAPIToken={TOKEN_ID}:{SECRET}"})
    server.settle()
    assert SECRET.encode() in bytes(server.received)
