"""TLS for PBS: normal CA verification, or a pinned SHA-256 leaf fingerprint.

Pinning design
--------------
PBS hosts usually run a self-signed certificate, so the portal pins the
SHA-256 of the leaf certificate's DER encoding (the fingerprint PBS shows).
The pin must be checked *during* the TLS handshake: if the check ran after
httpx had connected, the request (with its Authorization header) could
already be on the wire to an impostor.

Python's ``ssl`` has no verify callback, but an ``SSLContext`` builds its
connections from two overridable classes, ``sslsocket_class`` (blocking
sockets: httpx's sync client, via httpcore ``wrap_socket``) and
``sslobject_class`` (memory BIOs: httpx's async client, via anyio
``wrap_bio``). Both classes are replaced by subclasses whose
``do_handshake()`` compares the peer certificate's fingerprint right after
OpenSSL finishes the handshake and raises ``PinMismatchError`` before
returning. Nothing else can happen on the connection before
``do_handshake()`` returns, so no application byte is ever written to a
server with the wrong certificate. (In the async path even the client's
final handshake message stays in the memory BIO: anyio flushes it only
after ``do_handshake()`` returns.)

The classes are set on the context *instance* rather than by subclassing
``SSLContext``: anyio runs ``wrap_bio`` of any SSLContext subclass in a worker
thread, which would cost a thread hop per connection.

With a pin, chain and host name are not checked (the pin is stronger than
both, and PBS's default certificate is self-signed). Without a pin the
context verifies normally against the given CA PEM or the system store.
"""

from __future__ import annotations

import hashlib
import ssl

from pbsclient.validation import validate_fingerprint

__all__ = [
    "PinMismatchError",
    "build_ssl_context",
    "find_pin_mismatch",
    "find_ssl_error",
    "fingerprint_of_der",
    "pinned_fingerprint",
]

_PIN_ATTRIBUTE = "_pbsclient_pinned_fingerprint"


class PinMismatchError(ssl.SSLCertVerificationError):
    """Raised inside the handshake when the leaf certificate does not match the pin.

    An ``SSLCertVerificationError`` (so an ``OSError``) on purpose: the ssl
    module, httpcore and anyio then treat it like any failed verification and
    close the connection. The client turns it into ``errors.FingerprintMismatch``.
    """

    def __init__(self, expected: str, presented: str | None) -> None:
        self.expected = expected
        self.presented = presented
        super().__init__(f"certificate fingerprint mismatch: expected {expected}, got {presented or 'no certificate'}")


def fingerprint_of_der(der: bytes) -> str:
    """PBS-format fingerprint (lower-case hex pairs joined by ':') of a DER certificate."""
    return ":".join(f"{byte:02x}" for byte in hashlib.sha256(der).digest())


def pinned_fingerprint(context: ssl.SSLContext) -> str | None:
    """The fingerprint a context built by ``build_ssl_context`` is pinned to, if any."""
    value = getattr(context, _PIN_ATTRIBUTE, None)
    return value if isinstance(value, str) else None


def _check_pin(tls: ssl.SSLSocket | ssl.SSLObject) -> None:
    expected = pinned_fingerprint(tls.context)
    if expected is None:  # pragma: no cover - only reachable if someone reuses the classes
        return
    der = tls.getpeercert(binary_form=True)
    presented = fingerprint_of_der(der) if der else None
    if presented != expected:
        raise PinMismatchError(expected, presented)


class _PinnedSSLSocket(ssl.SSLSocket):
    """Blocking TLS socket that refuses to finish a handshake with an unpinned certificate."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        try:
            _check_pin(self)
        except PinMismatchError:
            # Close before anyone can write to it; SSLSocket._create closes too,
            # but a caller using do_handshake_on_connect=False would not.
            self.close()
            raise


class _PinnedSSLObject(ssl.SSLObject):
    """Memory-BIO TLS object (asyncio/anyio) with the same pin check."""

    def do_handshake(self) -> None:
        super().do_handshake()
        _check_pin(self)


def build_ssl_context(*, fingerprint: str | None = None, ca_pem: str | None = None) -> ssl.SSLContext:
    """Build the client SSLContext.

    - ``fingerprint``: pin the leaf certificate (PBS format; upper case is
      accepted). A malformed value raises ``PbsValidationError`` here, before
      any connection is made.
    - ``ca_pem``: trust exactly these PEM CA certificates (normal chain and
      host name verification).
    - neither: the system trust store.
    """
    if fingerprint is not None and fingerprint.strip() != "":
        expected = validate_fingerprint(fingerprint)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # The pin replaces chain and host name checks; see the module docstring.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        setattr(context, _PIN_ATTRIBUTE, expected)
        # Instance attributes on purpose (see module docstring); typeshed
        # declares them as plain attributes, so this type-checks.
        context.sslsocket_class = _PinnedSSLSocket
        context.sslobject_class = _PinnedSSLObject
        return context
    # cadata=None loads nothing extra; load_default_certs() is skipped when cadata is given
    context = ssl.create_default_context(cadata=ca_pem or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def find_pin_mismatch(exc: BaseException) -> PinMismatchError | None:
    """Find a PinMismatchError in an exception's cause/context chain (httpx wraps it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, PinMismatchError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def find_ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """Find an ssl.SSLError in an exception's cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
