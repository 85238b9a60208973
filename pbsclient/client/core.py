"""What both clients share: configuration, TLS pinning, request building, error mapping, retries, statistics."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from pbsclient import endpoints as ep
from pbsclient.auth import PbsTokenAuth
from pbsclient.errors import (
    FingerprintMismatch,
    PbsConnectionError,
    PbsError,
    PbsHttpError,
    PbsTimeout,
    PbsTlsError,
    error_from_response,
    is_retryable,
)
from pbsclient.retry import RetryPolicy
from pbsclient.tls import build_ssl_context, find_pin_mismatch, find_ssl_error
from pbsclient.validation import PbsValidationError, validate_fingerprint

logger = logging.getLogger("pbsclient")


T = TypeVar("T")


API_PREFIX = "/api2/json"


USER_AGENT = "pbs-portal-pbsclient/1"


@dataclass
class ClientStats:
    """Counters per client: ``calls`` (method calls), ``requests`` (HTTP attempts),
    ``retries`` (attempts after the first) and ``errors`` (calls that raised)."""

    calls: int = 0
    requests: int = 0
    retries: int = 0
    errors: int = 0

    def reset(self) -> None:
        self.calls = self.requests = self.retries = self.errors = 0


class _Core:
    """Configuration and the sync/async-independent halves of a call."""

    def __init__(
        self,
        *,
        base_url: str,
        token_id: str,
        token_secret: str,
        fingerprint: str | None,
        ca_pem: str | None,
        timeout: float,
        retry: RetryPolicy | None,
        max_connections: int,
        host_label: str | None,
        build_tls: bool,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise PbsValidationError(
                f"PBS base URL '{base_url}' must be https://host[:port] (PBS only speaks HTTPS, "
                "and the token must never travel in clear text)"
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise PbsValidationError("PBS base URL must not contain credentials, a query or a fragment")
        path = parts.path.rstrip("/")
        if path not in ("", API_PREFIX):
            raise PbsValidationError(f"PBS base URL path must be empty or {API_PREFIX}, not '{parts.path}'")
        if max_connections < 1:
            raise PbsValidationError(f"max_connections must be at least 1, not {max_connections}")
        if timeout <= 0:
            raise PbsValidationError(f"timeout must be positive, not {timeout}")

        self.origin = f"https://{parts.netloc}"
        self.base_url = self.origin + API_PREFIX
        self.host_label = host_label or parts.netloc
        self.auth = PbsTokenAuth(token_id, token_secret)
        self.token_id = token_id
        # Validate a pin now, even with an injected transport, so that a bad
        # value fails at construction and never at the first call.
        self.fingerprint = validate_fingerprint(fingerprint) if fingerprint else None
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        self.timeout = httpx.Timeout(timeout)
        self.limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.verify = build_ssl_context(fingerprint=self.fingerprint, ca_pem=ca_pem or None) if build_tls else None
        self.stats = ClientStats()
        self._lock = threading.Lock()

    def client_kwargs(self, limits: httpx.Limits | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "auth": self.auth,
            "timeout": self.timeout,
            "limits": limits or self.limits,
            # No proxies/CA bundles from the environment: the TLS policy is ours.
            "trust_env": False,
            "follow_redirects": False,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"},
        }
        if self.verify is not None:
            kwargs["verify"] = self.verify
        return kwargs

    def count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    def request_kwargs(self, call: ep.Call[Any]) -> dict[str, Any]:
        """GET/DELETE parameters go in the query string (booleans as 1/0, arrays as
        repeated keys); POST/PUT parameters as a JSON body."""
        url = call.url.lstrip("/")
        if call.method in ("GET", "DELETE"):
            query: list[tuple[str, str]] = []
            for key, value in call.params.items():
                values = value if isinstance(value, list | tuple) else [value]
                for item in values:
                    query.append((key, ("1" if item else "0") if isinstance(item, bool) else str(item)))
            return {"method": call.method, "url": url, "params": query}
        if call.params:
            return {"method": call.method, "url": url, "json": dict(call.params)}
        return {"method": call.method, "url": url}

    def scrub(self, call: ep.Call[Any], text: str) -> str:
        text = self.auth.scrub(text)
        for secret in call.secrets:
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text

    def finish(self, call: ep.Call[T], response: httpx.Response) -> T:
        """Unwrap a PBS answer or raise the mapped error."""
        where = {"method": call.method, "path": call.path, "host": self.host_label}
        if not response.is_success:
            # PBS error bodies are plain text, even with a JSON content type.
            body = self.scrub(call, response.text)
            raise error_from_response(response.status_code, body, **where)
        try:
            payload = response.json()
        except ValueError:
            raise PbsHttpError(
                f"answer is not JSON: {self.scrub(call, response.text[:200])!r}",
                status=response.status_code,
                **where,
            ) from None
        if not isinstance(payload, dict) or "data" not in payload:
            raise PbsHttpError("answer has no 'data' member", status=response.status_code, **where)
        try:
            return call.parse(payload["data"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PbsHttpError(
                f"unexpected answer shape ({type(exc).__name__}: {exc})", status=response.status_code, **where
            ) from None

    def transport_error(self, call: ep.Call[Any], exc: httpx.TransportError) -> PbsConnectionError:
        """Map an httpx transport failure onto the error tree."""
        method, path, host = call.method, call.path, self.host_label
        pin = find_pin_mismatch(exc)
        if pin is not None:
            return FingerprintMismatch(
                expected=pin.expected, presented=pin.presented, method=method, path=path, host=host
            )
        detail = self.scrub(call, str(exc) or type(exc).__name__)
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return PbsTimeout(
                f"timed out connecting to {self.origin}: {detail}",
                request_sent=False, method=method, path=path, host=host,
            )  # fmt: skip
        if isinstance(exc, httpx.TimeoutException):
            return PbsTimeout(f"timed out waiting for {self.origin}: {detail}", method=method, path=path, host=host)
        if isinstance(exc, httpx.ConnectError):
            ssl_error = find_ssl_error(exc)
            if ssl_error is not None:
                hint = ""
                if "CERTIFICATE_VERIFY_FAILED" in str(ssl_error):
                    hint = " (pin the server's fingerprint, or give the CA that signed its certificate)"
                return PbsTlsError(
                    f"TLS handshake with {self.origin} failed: {ssl_error}{hint}",
                    method=method, path=path, host=host,
                )  # fmt: skip
            return PbsConnectionError(
                f"cannot connect to {self.origin}: {detail}",
                request_sent=False, method=method, path=path, host=host,
            )  # fmt: skip
        return PbsConnectionError(f"connection to {self.origin} failed: {detail}", method=method, path=path, host=host)

    def log_attempt(self, call: ep.Call[Any], status: int | None, started: float, error: PbsError | None) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        if error is None:
            level = logging.DEBUG if call.method == "GET" else logging.INFO
        elif isinstance(error, PbsConnectionError) or (status or 0) >= 500:
            level = logging.WARNING
        else:
            level = logging.INFO
        if not logger.isEnabledFor(level):
            return
        outcome = str(status) if status is not None else type(error).__name__
        logger.log(
            level,
            "%s %s %s -> %s in %.1f ms",
            self.host_label,
            call.method,
            call.path,
            outcome,
            elapsed_ms,
            extra={
                "pbs_host": self.host_label,
                "pbs_method": call.method,
                "pbs_path": call.path,
                "pbs_status": status,
                "pbs_duration_ms": round(elapsed_ms, 1),
            },
        )

    def next_delay(self, call: ep.Call[Any], error: PbsError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise."""
        if attempt >= self.retry.max_attempts or not is_retryable(error, call.method, call.path):
            return None
        delay = self.retry.backoff(attempt)
        logger.info(
            "%s %s %s: retry %d/%d in %.2f s after %s",
            self.host_label,
            call.method,
            call.path,
            attempt,
            self.retry.max_attempts - 1,
            delay,
            type(error).__name__,
            extra={"pbs_host": self.host_label, "pbs_method": call.method, "pbs_path": call.path},
        )
        return delay

    def describe(self, kind: str) -> str:
        pin = "pinned" if self.fingerprint else "CA-verified"
        return (
            f"{kind}(host_label={self.host_label!r}, base_url={self.base_url!r}, token_id={self.token_id!r}, tls={pin})"
        )


class _Api:
    """Shared constructor signature and attribute surface of both clients."""

    _core: _Core

    @property
    def stats(self) -> ClientStats:
        return self._core.stats

    @property
    def host_label(self) -> str:
        return self._core.host_label

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def token_id(self) -> str:
        return self._core.token_id

    @property
    def max_connections(self) -> int:
        """Most requests this client has in flight to its host at once."""
        return self._core.max_connections

    @property
    def fingerprint(self) -> str | None:
        """The pinned fingerprint (normalised to lower case), if any."""
        return self._core.fingerprint

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)
