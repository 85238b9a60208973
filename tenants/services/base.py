"""Tenants building blocks: errors, the acting user, PBS error translation."""

from __future__ import annotations

from pbsclient.errors import PbsError
from tenants.hints import hint_for
from tenants.models import (
    PbsHost,
    TenantToken,
)

KEEP_FIELDS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


REGENERATE_SINCE = (3, 3, 7)


class LifecycleError(Exception):
    """A lifecycle action could not be completed on PBS; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class TokenAlreadyRevealed(Exception):
    """The secret was revealed once already (and destroyed)."""

    def __init__(self, token: TenantToken) -> None:
        who = token.revealed_by.get_username() if token.revealed_by else "the command line"
        when = f"{token.revealed_at:%Y-%m-%d %H:%M} UTC" if token.revealed_at else "earlier"
        super().__init__(f"This secret was already revealed by {who} at {when}; rotate the token for a new one.")
        self.token = token



def _lifecycle_error(exc: PbsError, *, host: PbsHost, step: str = "", store: str = "") -> LifecycleError:
    return LifecycleError(str(exc), hint_for(exc, host=host, step=step, store=store))
