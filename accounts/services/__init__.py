"""Writes for accounts: sign-in (throttle, lockout, second factor), TOTP, invitations,
removing users. Every function here writes its audit row itself, with the acting user.

Nothing in this module logs or audits a secret: passwords, TOTP seeds and codes, and
invitation tokens only ever pass through as arguments."""

from __future__ import annotations

from accounts.services.api_keys import NewApiKey, api_key_authenticate, api_key_create, api_key_revoke
from accounts.services.base import (
    TOTP_ISSUER,
    TOTP_VALID_WINDOW,
)
from accounts.services.invitations import (
    InvitationError,
    invitation_accept,
    invitation_create,
    invitation_link,
    invitation_revoke,
    invitation_token_hash,
    tenant_user_remove,
)
from accounts.services.signin import (
    LoginOutcome,
    LoginResult,
    login_attempt,
    login_completed,
    login_totp_attempt,
)
from accounts.services.throttle import (
    login_attempt_reserve,
    login_lock_remaining,
    login_success_record,
    login_throttles_prune,
)
from accounts.services.totp import (
    TotpError,
    totp_disable,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_pending_secret,
    totp_provisioning_uri,
    totp_required_for,
    totp_reset,
    totp_verify,
)

__all__ = [
    "TOTP_ISSUER",
    "TOTP_VALID_WINDOW",
    "InvitationError",
    "LoginOutcome",
    "LoginResult",
    "NewApiKey",
    "TotpError",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "invitation_accept",
    "invitation_create",
    "invitation_link",
    "invitation_revoke",
    "invitation_token_hash",
    "login_attempt",
    "login_attempt_reserve",
    "login_completed",
    "login_lock_remaining",
    "login_success_record",
    "login_throttles_prune",
    "login_totp_attempt",
    "tenant_user_remove",
    "totp_disable",
    "totp_enrolment_confirm",
    "totp_enrolment_start",
    "totp_pending_secret",
    "totp_provisioning_uri",
    "totp_required_for",
    "totp_reset",
    "totp_verify",
]
