"""One exception tree for everything that can go wrong talking to PBS.

PBS (4.2) answers errors on ``/api2/json`` with the bare message as plain text
(even though the Content-Type says JSON), uses 400 for most failures and never
409. ``error_from_response`` maps that onto the tree below; ``is_retryable``
is the single place that decides whether a failed request may be sent again.

    PbsError
    +-- PbsConnectionError          no HTTP answer (refused, reset, DNS, ...)
    |   +-- PbsTimeout
    |   +-- PbsTlsError             handshake failed (bad chain, hostname, ...)
    |       +-- FingerprintMismatch pinned fingerprint differs; nothing was sent
    +-- PbsHttpError                PBS answered with a non-2xx status
        +-- AuthenticationFailed    401
        +-- PermissionDenied        403, and 400 "missing permissions ..."
        +-- NotFound                404, and 400 "no such ..." / "... does not exist."
        +-- AlreadyExists           400 "... already exists."
        +-- InvalidParameter        400 "parameter verification failed ..."
        +-- ServerError             5xx

Every error carries ``status`` (None without an HTTP answer), ``method``,
``path`` (the API path below /api2/json, never a query string) and
``message`` (PBS's text). None of them ever holds a secret: the client scrubs
its token secret and any secret request values from messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "AlreadyExists",
    "AuthenticationFailed",
    "FingerprintMismatch",
    "InvalidParameter",
    "NotFound",
    "PbsConnectionError",
    "PbsError",
    "PbsHttpError",
    "PbsTimeout",
    "PbsTlsError",
    "PermissionDenied",
    "ServerError",
    "error_from_response",
    "is_retryable",
    "is_safe_to_repeat",
    "parse_parameter_errors",
]

# Longest PBS message we keep. PBS messages are one or a few lines; anything
# longer is a proxy's HTML page or similar and only clutters logs.
_MAX_MESSAGE = 2000


class PbsError(Exception):
    """Base class: something went wrong talking to PBS."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        path: str = "",
        host: str = "",
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.host = host
        super().__init__(message)

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.path) if part)
        status = f" -> {self.status}" if self.status is not None else ""
        host = f"[{self.host}] " if self.host else ""
        prefix = f"{host}{where}{status}: " if where or status else host
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"path={self.path!r}, message={self.message!r})"
        )


class PbsConnectionError(PbsError):
    """No HTTP answer: the connection failed, broke, or timed out.

    ``request_sent`` is False when the failure happened before any request
    byte left the process (connect, TLS handshake, waiting for a pooled
    connection): such a request is always safe to send again.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        host: str = "",
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, status=None, method=method, path=path, host=host)
        self.request_sent = request_sent


class PbsTimeout(PbsConnectionError):
    """Connecting, sending or waiting for the answer took longer than the timeout."""


class PbsTlsError(PbsConnectionError):
    """The TLS handshake failed: untrusted chain, wrong host name, protocol error."""

    def __init__(self, message: str, *, method: str = "", path: str = "", host: str = "") -> None:
        super().__init__(message, method=method, path=path, host=host, request_sent=False)


class FingerprintMismatch(PbsTlsError):
    """The server's certificate does not have the pinned SHA-256 fingerprint.

    Raised during the handshake, before any request byte (and so before the
    token) is sent.
    """

    def __init__(
        self,
        *,
        expected: str,
        presented: str | None,
        method: str = "",
        path: str = "",
        host: str = "",
    ) -> None:
        self.expected = expected
        self.presented = presented
        shown = presented or "no certificate"
        message = (
            f"TLS certificate fingerprint mismatch: expected {expected}, "
            f"the server presented {shown}. Nothing was sent to the server. "
            "If its certificate was replaced on purpose, update the pinned fingerprint."
        )
        super().__init__(message, method=method, path=path, host=host)


class PbsHttpError(PbsError):
    """PBS answered with a non-2xx status. Unmapped 4xx answers raise this class itself."""

    status: int

    def __init__(self, message: str, *, status: int, method: str = "", path: str = "", host: str = "") -> None:
        super().__init__(message, status=status, method=method, path=path, host=host)


class AuthenticationFailed(PbsHttpError):
    """401: unknown, disabled or expired token or user, or a wrong secret.

    PBS gives the same answer for all of these; the reason is only in its auth log.
    """


class PermissionDenied(PbsHttpError):
    """403, or 400 ``missing permissions ...`` / ``permission check failed`` (sync jobs)."""


class NotFound(PbsHttpError):
    """The object does not exist (404, or 400 ``no such ...`` / ``... does not exist.``)."""


class AlreadyExists(PbsHttpError):
    """400 ``... already exists.``: creating something that is already there."""


class InvalidParameter(PbsHttpError):
    """400 ``parameter verification failed``. ``errors`` maps parameter name -> reason."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        errors: Mapping[str, str] | None = None,
        method: str = "",
        path: str = "",
        host: str = "",
    ) -> None:
        super().__init__(message, status=status, method=method, path=path, host=host)
        self.errors: dict[str, str] = dict(errors or {})


class ServerError(PbsHttpError):
    """5xx: PBS (or something in front of it) failed."""


# --- mapping an HTTP error answer onto the tree ---------------------------------

_PARAM_PREFIX = "parameter verification failed"
_SINGLE_PARAM = re.compile(r"^parameter verification failed - '(?P<name>[^']+)': (?P<reason>.*)$", re.S)
_MULTI_LINE = re.compile(r"^- '(?P<name>[^']+)': (?P<reason>.*)$")


def parse_parameter_errors(message: str) -> dict[str, str]:
    """Parse PBS's parameter error text into {parameter: reason}.

    Handles both forms PBS produces (section 9.3 of the API reference)::

        parameter verification failed - 'userid': value does not match the regex pattern
        parameter verification failed:
        - 'a': reason one
        - 'b': reason two
    """
    text = message.strip()
    single = _SINGLE_PARAM.match(text)
    if single:
        return {single["name"]: single["reason"].strip()}
    errors: dict[str, str] = {}
    if text.startswith(_PARAM_PREFIX):
        for line in text.splitlines()[1:]:
            found = _MULTI_LINE.match(line.strip())
            if found:
                errors[found["name"]] = found["reason"].strip()
    return errors


def _looks_not_found(text: str) -> bool:
    lowered = text.lower()
    return (
        lowered.startswith("no such ")
        or " does not exist" in lowered
        or "doesn't already exist" in lowered  # namespace create: parent missing
        or lowered.endswith(" not found.")
        or lowered.endswith(" not found")
    )


def error_from_response(status: int, body: str, *, method: str = "", path: str = "", host: str = "") -> PbsHttpError:
    """Build the right exception for one PBS error answer (status + plain-text body).

    Order matters: "missing permissions" beats everything, a "no such"/"does
    not exist" text is NotFound even inside a parameter error, and a
    parameter error whose reason says "already exists" (prune, sync, remote
    and datastore duplicates) is AlreadyExists.
    """
    message = body.strip()
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + " [...]"
    if not message:
        message = f"HTTP {status} without a message"

    def build(cls: type[PbsHttpError]) -> PbsHttpError:
        return cls(message, status=status, method=method, path=path, host=host)

    if status == 401:
        return build(AuthenticationFailed)
    if status == 403:
        return build(PermissionDenied)
    if status >= 500:
        return build(ServerError)
    if status == 404:
        return build(NotFound)
    if status != 400:
        return build(PbsHttpError)

    lowered = message.lower()
    if lowered.startswith("missing permissions") or lowered.startswith("permission check failed"):
        return build(PermissionDenied)
    errors = parse_parameter_errors(message)
    reasons = " ".join(errors.values()) if errors else message
    if _looks_not_found(reasons):
        return build(NotFound)
    if "already exists" in reasons.lower() and "doesn't already exist" not in reasons.lower():
        return build(AlreadyExists)
    if lowered.startswith(_PARAM_PREFIX):
        return InvalidParameter(message, status=status, errors=errors, method=method, path=path, host=host)
    return build(PbsHttpError)


# --- the one retry decision ------------------------------------------------------

# Writes that give the same result when PBS executes them twice, so a lost
# answer may be retried (reference sections 4.1, 5.2 and the PUT semantics of
# the config endpoints). Deliberately NOT here:
# - any POST that creates (user, token, prune/sync job, remote): a second run
#   fails with "already exists", and for a token the first secret is lost;
# - PUT .../token/{name}: with regenerate=1 each run issues a new secret;
# - DELETE: a second run reports "does not exist" for a delete that worked;
# - POST /admin/sync/{id}/run: each run starts another task.
_IDEMPOTENT_WRITES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Re-adding an ACL entry only overwrites propagate; deleting a missing one succeeds.
    ("PUT", re.compile(r"^/access/acl$")),
    # Namespace create is create_dir_all: an existing namespace answers 200.
    ("POST", re.compile(r"^/admin/datastore/[^/]+/namespace$")),
    # Config updates set fields to the given values (no digest is sent).
    ("PUT", re.compile(r"^/access/users/[^/]+$")),
    ("PUT", re.compile(r"^/config/prune/[^/]+$")),
    ("PUT", re.compile(r"^/config/sync/[^/]+$")),
    ("PUT", re.compile(r"^/config/remote/[^/]+$")),
)


def is_safe_to_repeat(method: str, path: str) -> bool:
    """True if sending this request twice has the same effect as sending it once."""
    method = method.upper()
    if method in {"GET", "HEAD", "OPTIONS"}:
        return True
    return any(m == method and pattern.match(path) for m, pattern in _IDEMPOTENT_WRITES)


def is_retryable(exc: BaseException, method: str | None = None, path: str | None = None) -> bool:
    """Decide whether the request that raised ``exc`` may be sent again.

    - TLS failures (including a fingerprint mismatch) never: they do not heal.
    - Connection errors that happened before the request was sent: always.
    - Other connection errors, timeouts and 5xx answers: only if the request
      is safe to repeat (``is_safe_to_repeat``).
    - Everything else (4xx, programming errors): never.

    ``method`` and ``path`` default to the ones recorded on the error.
    """
    if not isinstance(exc, PbsError) or isinstance(exc, PbsTlsError):
        return False
    method = (method or exc.method).upper()
    path = path if path is not None else exc.path
    if isinstance(exc, PbsConnectionError):
        return not exc.request_sent or is_safe_to_repeat(method, path)
    if isinstance(exc, ServerError):
        return is_safe_to_repeat(method, path)
    return False
