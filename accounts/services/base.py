"""Accounts building blocks: errors and small helpers."""

from __future__ import annotations

from typing import Any

from accounts.models import User

TOTP_ISSUER = "PBS Portal"


# Accept the previous and next 30-second code too (clock drift between phone and server).
TOTP_VALID_WINDOW = 1


def _tenant_of(user: User | None) -> Any:
    return user.tenant if user is not None and user.tenant_id else None
