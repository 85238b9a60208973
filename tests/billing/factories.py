"""Billing factories: plans, samples and tenants active over given days."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from billing.models import UsageSample
from plans.models import Plan
from tenants.models import Tenant
from tests.factories import make_tenant

GIB = 2**30
_seq = itertools.count(1)


def make_plan(
    *,
    name: str | None = None,
    metric: str = Plan.Metric.LOGICAL,
    included_gib: str = "0",
    price_per_gib: str = "0",
    base_fee: str = "0",
    minimum_charge: str = "0",
    currency: str = "EUR",
) -> Plan:
    return Plan.objects.create(
        name=name or f"plan-{next(_seq)}",
        metric=metric,
        included_gib=Decimal(included_gib),
        price_per_gib=Decimal(price_per_gib),
        base_fee=Decimal(base_fee),
        minimum_charge=Decimal(minimum_charge),
        currency=currency,
    )


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def make_billed_tenant(
    *,
    plan: Plan | None,
    activated: dt.date = dt.date(2024, 1, 1),
    offboarded: dt.date | None = None,
    **fields: Any,
) -> Tenant:
    return make_tenant(
        plan=plan,
        activated_at=at(activated),
        offboarded_at=at(offboarded) if offboarded else None,
        status=Tenant.Status.OFFBOARDED if offboarded else Tenant.Status.ACTIVE,
        **fields,
    )


def make_sample(
    *,
    tenant: Tenant,
    day: dt.date,
    logical: int,
    latest: int | None = None,
    physical: int | None = None,
    snapshots: int = 1,
    groups: int = 1,
) -> UsageSample:
    return UsageSample.objects.create(
        tenant=tenant,
        day=day,
        taken_at=at(day, 2),
        host_name=tenant.host.name if tenant.host_id else "",
        datastore=tenant.datastore.name if tenant.datastore_id else "",
        namespace=tenant.namespace,
        logical_bytes=logical,
        latest_bytes=logical if latest is None else latest,
        physical_estimate_bytes=physical,
        snapshot_count=snapshots,
        group_count=groups,
        namespace_count=1,
    )


def days_of(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
