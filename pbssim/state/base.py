"""Simulator state basics: the API error, auth ids, password hashing."""

from __future__ import annotations

import hashlib
import hmac
import os


class ApiError(Exception):
    """An error reply: PBS's status code and plain-text message.

    ``bail!`` in PBS is a 400; ``http_bail!`` keeps its explicit code.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


ROOT_USERID = "root@pam"


BACKUP_TYPES = ("ct", "host", "vm")


def split_authid(auth_id: str) -> tuple[str, str | None]:
    """(userid, token name or None). The token name starts at the first ``!`` after the
    realm's ``@``; the user name itself may contain ``@`` and ``!``."""
    at = auth_id.rfind("@")
    bang = auth_id.find("!", at + 1) if at >= 0 else -1
    if bang < 0:
        return auth_id, None
    return auth_id[:bang], auth_id[bang + 1 :]


def is_token(auth_id: str) -> bool:
    return split_authid(auth_id)[1] is not None


def _hash_secret(secret: str, salt: bytes) -> bytes:
    # Token secrets are random UUIDs (122 bits): one salted SHA-256 is enough and
    # keeps authentication cheap for benchmarks with thousands of requests.
    return hashlib.sha256(salt + secret.encode()).digest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 20_000)
    return f"pbkdf2_sha256$20000${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    _, rounds, salt_hex, digest_hex = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt_hex), int(rounds))
    return hmac.compare_digest(digest.hex(), digest_hex)


def _active(enable: bool | None, expire: int | None, now: float) -> bool:
    if enable is False:
        return False
    return not (expire is not None and expire > 0 and now >= expire)
