"""PBS API token authentication as an ``httpx.Auth``.

Header: ``Authorization: PBSAPIToken=<user@realm!name>:<secret>`` (a colon
between id and secret; PVE uses '=' there, PBS does not). The secret lives
only in this object and in the header of outgoing requests; ``repr()`` shows
the token id alone, and httpx masks the Authorization header in its reprs.
"""

from __future__ import annotations

from collections.abc import Generator
from urllib.parse import quote

import httpx

from pbsclient.validation import PbsValidationError, validate_tokenid

__all__ = ["PbsTokenAuth"]


class PbsTokenAuth(httpx.Auth):
    """Adds the PBSAPIToken header to every request."""

    def __init__(self, token_id: str, token_secret: str) -> None:
        validate_tokenid(token_id)
        if not isinstance(token_secret, str) or not token_secret:
            raise PbsValidationError(f"the secret of token '{token_id}' is empty")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in token_secret):
            # Never echo the value: it is a secret.
            raise PbsValidationError(f"the secret of token '{token_id}' contains control characters")
        self.token_id = token_id
        # PBS percent-decodes the secret, so encode anything outside the
        # unreserved set (a no-op for PBS's own UUID secrets).
        self._header = f"PBSAPIToken={token_id}:{quote(token_secret, safe='')}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"PbsTokenAuth(token_id={self.token_id!r})"

    def scrub(self, text: str) -> str:
        """Replace this token's secret in ``text`` (an error message, say) with '***'."""
        secret = self._header.split(":", 1)[1] if ":" in self._header else ""
        if secret and secret in text:
            text = text.replace(secret, "***")
        return text

    def __reduce__(self) -> str | tuple[object, ...]:
        # Refuse pickling: a pickled client would carry the secret into Celery
        # results, caches or files.
        raise TypeError("PbsTokenAuth cannot be pickled (it holds a secret)")
