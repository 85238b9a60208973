"""Fixtures for the alerts tests: role fixtures, settings, quota and sample factories.

Celery runs eagerly here (tests/conftest.py) except in tests marked ``celery``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)


@pytest.fixture
def alert_settings(settings: Any) -> Any:
    settings.PORTAL_ALERT_EMAILS = ["noc@msp.example"]
    settings.PORTAL_WEBHOOK_URL = ""
    settings.PORTAL_WEBHOOK_SECRET = ""
    settings.PORTAL_BASE_URL = "https://portal.msp.example"
    return settings


def make_plan(**fields: Any) -> Any:
    from plans.models import Plan

    defaults: dict[str, Any] = {"name": f"plan-{Plan.objects.count() + 1}", "metric": "logical"}
    defaults.update(fields)
    return Plan.objects.create(**defaults)


def make_plan_quota(
    *,
    plan: Any = None,
    soft_gib: str | None = "100",
    hard_gib: str | None = "150",
    warning_percent: int | None = 80,
    grace_days: int | None = 7,
    action: str = "stop-writes",
) -> Any:
    from alerts.models import PlanQuota

    return PlanQuota.objects.create(
        plan=plan or make_plan(),
        soft_limit_gib=Decimal(soft_gib) if soft_gib else None,
        hard_limit_gib=Decimal(hard_gib) if hard_gib else None,
        warning_percent=warning_percent,
        grace_days=grace_days,
        action=action,
    )


def add_sample(tenant: Any, *, day: Any, gib: float, taken_at: Any = None, newest_backup_at: Any = None) -> Any:
    """A billing.UsageSample as metering stores it (same figure on every metric)."""
    from datetime import UTC, datetime, time

    from billing.models import UsageSample

    size = int(gib * 2**30)
    taken_at = taken_at or datetime.combine(day, time(2, 0), tzinfo=UTC)
    sample, _ = UsageSample.objects.update_or_create(
        tenant=tenant, day=day,
        defaults={
            "taken_at": taken_at, "host_name": "pbs1", "datastore": "store1",
            "namespace": tenant.namespace, "logical_bytes": size, "latest_bytes": size,
            "physical_estimate_bytes": size // 2, "snapshot_count": 3, "group_count": 1,
            "namespace_count": 1, "newest_backup_at": newest_backup_at,
        },
    )
    return sample
