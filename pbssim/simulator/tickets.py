"""Simulator constants and PBS authentication tickets (PBSAuthCookie)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os

log = logging.getLogger(__name__)


JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


EXPIRED_AUTH_COOKIE = (
    "__Host-PBSAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Lax; HttpOnly; Path=/;"
)


MAX_URI_LENGTH = 3072


MAX_BODY_BYTES = 512 * 1024


TICKET_LIFETIME = 7200


TICKET_SKEW = 300


BOOTSTRAP_TOKEN = "root@pam!portal"  # noqa: S105 - the token id, not its secret


Reply = tuple[int, dict[str, str], bytes]


class Tickets:
    """PBS-style tickets (``PBS:<userid>:<hex time>::<signature>``) and CSRF tokens."""

    def __init__(self) -> None:
        self._key = os.urandom(32)

    def _sign(self, data: str) -> str:
        mac = hmac.new(self._key, data.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode().rstrip("=")

    def make_ticket(self, userid: str, now: float) -> str:
        data = f"PBS:{userid}:{int(now):08X}"
        return f"{data}::{self._sign(data)}"

    def verify_ticket(self, ticket: str, now: float) -> str | None:
        """The ticket's userid if it is genuine and neither too old nor from the future."""
        data, sep, signature = ticket.rpartition("::")
        if not sep or not data.startswith("PBS:") or not hmac.compare_digest(self._sign(data), signature):
            return None
        userid, _, stamp = data[4:].rpartition(":")
        try:
            age = now - int(stamp, 16)
        except ValueError:
            return None
        return userid if -TICKET_SKEW <= age <= TICKET_LIFETIME else None

    def make_csrf(self, userid: str, now: float) -> str:
        stamp = f"{int(now):08X}"
        return f"{stamp}:{self._sign(f'{stamp}:{userid}')}"

    def verify_csrf(self, token: str, userid: str, now: float) -> bool:
        stamp, _, signature = token.partition(":")
        try:
            age = now - int(stamp, 16)
        except ValueError:
            return False
        valid = hmac.compare_digest(self._sign(f"{stamp}:{userid}"), signature)
        return valid and -TICKET_SKEW <= age <= TICKET_LIFETIME
