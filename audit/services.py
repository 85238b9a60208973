"""Writing the audit trail. Callers pass facts; this refuses anything secret-looking."""

from __future__ import annotations

from typing import Any

from audit.models import AuditEvent
from core.actors import acting_api_key, actor_or_none

# Keys whose values are secrets: refusing them here makes a leak a loud bug, not a silent one.
_FORBIDDEN_KEYS = frozenset({"secret", "password", "value", "token_secret", "totp", "ticket"})


class SecretInAuditDetail(ValueError):
    """Audit detail carried a secret-looking key."""


def _check_detail(detail: dict[str, Any]) -> None:
    for key, value in detail.items():
        if key.lower() in _FORBIDDEN_KEYS:
            raise SecretInAuditDetail(f"audit detail must not carry {key!r}")
        if isinstance(value, dict):
            _check_detail(value)


def audit_record(
    *,
    action: str,
    actor: Any = None,
    tenant: Any = None,
    target: str = "",
    result: str = AuditEvent.Result.OK,
    detail: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one audit row. ``actor`` is a user or None for the system (Celery, CLI)."""
    detail = detail or {}
    key = acting_api_key.get()
    if key and "api_key" not in detail:
        detail = {**detail, "api_key": key}  # which of the actor's API keys made this change
    _check_detail(detail)
    actor = actor_or_none(actor)
    label = actor.get_username() if actor is not None else "system"
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=label,
        action=action,
        tenant=tenant,
        target=target[:255],
        result=result,
        detail=detail,
        ip_address=ip_address,
    )
