"""What staff can do about a PBS error that does not heal by itself.

Whether an error heals is ``core.transient.is_transient`` (the one rule every task uses);
``hint_for`` turns a permanent error into a concrete instruction, naming the token, the path
and the command, so the fix does not need a PBS expert.
"""

from __future__ import annotations

from pbsclient.errors import (
    AlreadyExists,
    AuthenticationFailed,
    FingerprintMismatch,
    InvalidParameter,
    NotFound,
    PbsConnectionError,
    PbsError,
    PbsTlsError,
    PermissionDenied,
    ServerError,
)
from tenants.models import PbsHost


def _grant(host: PbsHost, path: str, role: str) -> str:
    return f"proxmox-backup-manager acl update {path} {role} --auth-id {host.token_id}"


def _owner(host: PbsHost) -> str:
    return host.token_id.split("!", 1)[0]


def hint_for(exc: BaseException, *, host: PbsHost, step: str = "", store: str = "") -> str:
    """A one-paragraph instruction for staff; empty when there is nothing specific to say."""
    token = host.token_id
    owner = _owner(host)
    both = (
        f"A token's rights are its own ACL AND its user's, so {owner} needs the same grant "
        f"(or grant it to the user and the token)."
    )
    if isinstance(exc, FingerprintMismatch):
        return (
            f"The TLS certificate of {host.name} no longer matches the pinned fingerprint. "
            "If the certificate was replaced on purpose (renewal, ACME), read the new one with "
            "'proxmox-backup-manager cert info' on the PBS host and update the host's "
            "fingerprint in the portal; otherwise treat it as an attack and do not proceed."
        )
    if isinstance(exc, PbsTlsError):
        return (
            f"The TLS handshake with {host.name} failed: pin its certificate fingerprint "
            "(pbshost add --fingerprint) or give the CA that signed it."
        )
    if isinstance(exc, AuthenticationFailed):
        return (
            f"PBS rejected the automation token {token}: check that the token and its user "
            "exist, are enabled and not expired, and that the portal has the right secret "
            f"(re-register the host with the current secret). {host.name}'s auth log says which."
        )
    if isinstance(exc, PermissionDenied):
        text = exc.message
        if step in {"user", "backup_token"} or "/access/users" in text:
            return (
                f"The automation token {token} lacks Permissions.Modify on /access/users. "
                f"Grant Admin on /access: {_grant(host, '/access', 'Admin')}. {both}"
            )
        if step in {"user_acl", "token_acl"} or "/access/acl" in text:
            return (
                f"The automation token {token} lacks Permissions.Modify on /access/acl. "
                f"Grant Admin on /access: {_grant(host, '/access', 'Admin')}. {both}"
            )
        if step == "verify" or "Sys.Audit" in text:
            return (
                f"The automation token {token} may not read other users' permissions "
                f"(needs Sys.Audit on /access). Grant Admin on /access: "
                f"{_grant(host, '/access', 'Admin')}. {both}"
            )
        path = f"/datastore/{store}" if store else "/datastore/<store>"
        return (
            f"The automation token {token} lacks Datastore.Modify on {path} (namespaces and "
            f"prune jobs need it). Grant DatastoreAdmin there: "
            f"{_grant(host, path, 'DatastoreAdmin')}. {both}"
        )
    if isinstance(exc, InvalidParameter):
        fields = ", ".join(f"{name}: {reason}" for name, reason in exc.errors.items()) or exc.message
        if step == "prune_job":
            return (
                f"PBS refused the prune job settings ({fields}). Fix the tenant's retention "
                "(keep values >= 1, a valid calendar event such as 'daily' or "
                "'mon..fri 02:00'), then retry."
            )
        return f"PBS refused a value the portal sent ({fields}). Fix it, then retry."
    if isinstance(exc, NotFound):
        if step == "namespace" or "datastore" in exc.message.lower():
            return (
                f"The datastore '{store}' was not found on {host.name}. Run a health check of "
                "the host to refresh its datastores, or place the tenant on another datastore."
            )
        return f"PBS reported something missing: {exc.message}. Re-run; if it persists, check PBS."
    if isinstance(exc, AlreadyExists):
        return (
            "PBS already has this object although the portal checked first; another process "
            "may be creating it right now. Retry in a minute."
        )
    if isinstance(exc, PbsConnectionError | ServerError):
        return (
            f"{host.name} did not answer reliably ({exc}). Check that the host is up and "
            "reachable from the portal and its workers, then retry."
        )
    if isinstance(exc, PbsError):
        return f"PBS answered: {exc.message}"
    return ""


class OwnershipConflict(Exception):
    """A PBS object the portal would create exists but was not made by the portal."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class VerificationFailed(Exception):
    """The effective privileges on PBS differ from what the tenant design requires."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
