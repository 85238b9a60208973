"""Encryption at rest for secrets the portal must keep for a while.

MultiFernet: the first key in PORTAL_ENCRYPTION_KEYS encrypts, every key
decrypts, so keys rotate by prepending a new key and running
``manage.py rotate_encryption_keys`` (re-encrypts with the first key).
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored ciphertext cannot be decrypted with any configured key."""


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(settings.PORTAL_ENCRYPTION_KEYS))


def encrypt_secret(plaintext: str) -> str:
    """Encrypt a secret; the empty string stays empty (no secret kept)."""
    if not plaintext:
        return ""
    return _current().encrypt(plaintext.encode()).decode()


def decrypt_secret(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _current().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("secret cannot be decrypted with the configured keys") from exc


def rotate_secret(ciphertext: str) -> str:
    """Re-encrypt a ciphertext with the newest key."""
    if not ciphertext:
        return ""
    return _current().rotate(ciphertext.encode()).decode()
