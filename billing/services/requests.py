"""Plans, and the requests of pages and the API that run on a worker."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing import pricing
from billing.models import (
    MeteringRun,
)
from billing.services.base import BillingError
from core.actors import actor_or_none
from plans.models import Plan


def plan_save(*, plan: Plan, actor: Any) -> Plan:
    """Create or update a plan (validated). Issued invoices keep the prices they had."""
    plan.full_clean()
    creating = plan.pk is None
    with transaction.atomic():
        plan.save()
        audit_record(
            action="billing.plan_created" if creating else "billing.plan_updated",
            actor=actor,
            target=plan.name,
            detail={
                "currency": plan.currency,
                "metric": plan.metric,
                "included_gib": str(plan.included_gib),
                "price_per_gib": str(plan.price_per_gib),
                "base_fee": str(plan.base_fee),
                "minimum_charge": str(plan.minimum_charge),
                "is_active": plan.is_active,
            },
        )
    return plan


def billing_period_close_request(*, period: str, actor: Any, today: dt.date | None = None) -> None:
    """Check the month can be closed, audit the request, and close it on a worker."""
    _, end = pricing.month_bounds(period)
    today = today or timezone.localdate()
    if end >= today:
        raise BillingError(f"{period} is not over yet")
    from billing.tasks import billing_close_period  # tasks import the services: resolved at call time

    user = actor_or_none(actor)
    actor_id = user.pk if user is not None else None
    with transaction.atomic():
        audit_record(action="billing.close_requested", actor=actor, target=period)
        transaction.on_commit(lambda: billing_close_period.delay(period, actor_id))


def metering_collect_request(*, actor: Any) -> None:
    """Start a collection for today on the workers (on demand, besides the daily schedule)."""
    from billing.tasks import metering_collect_all  # as above

    with transaction.atomic():
        audit_record(action="billing.metering_requested", actor=actor, target=str(timezone.localdate()))
        transaction.on_commit(lambda: metering_collect_all.delay(None, MeteringRun.Trigger.MANUAL))
