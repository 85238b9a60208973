"""Alerts building blocks: constants, errors, small helpers."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from alerts import quota
from alerts.models import (
    Alert,
)
from core.transient import TransientError

# Privileges the enforcement is verified by (the tenant PBS design, tenants/): write rights
# come and go, Datastore.Read always stays so restores keep working.
PRIV_BACKUP = "Datastore.Backup"


PRIV_READ = "Datastore.Read"


QUOTA_ALERT_KINDS = {
    quota.WARNING: Alert.Kind.QUOTA_WARNING,
    quota.OVER: Alert.Kind.QUOTA_OVER,
    quota.ENFORCED: Alert.Kind.QUOTA_ENFORCED,
}


QUOTA_KIND_LEVEL = {kind: quota.STATE_ORDER[state] for state, kind in QUOTA_ALERT_KINDS.items()}


VERIFY_CHECK_INTERVAL = timedelta(hours=6)


class QuotaError(ValueError):
    """A staff quota action that cannot be applied (message is shown to the user)."""


class QuotaEnforcementError(TransientError):
    """PBS did not end up with the expected privileges after a change (retried: the next
    attempt re-reads and re-applies)."""


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _gib(value: Decimal | int | None) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value) / quota.GIB:.2f} GiB"


