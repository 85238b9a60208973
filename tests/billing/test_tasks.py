"""The billing tasks retry what heals by itself (core.transient) and nothing else; a retried
close is safe because the close is one transaction and a closed month closes to nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from celery.exceptions import Retry
from django.db import OperationalError

from billing import tasks
from billing.models import BillingPeriod
from billing.services.base import BillingError
from billing.services.close import billing_period_close

pytestmark = pytest.mark.django_db


def _failing(calls: list[dict], exc: Exception):
    def close(**kwargs):
        calls.append(kwargs)
        raise exc

    return close


@pytest.mark.parametrize("task", ["billing_close_period", "billing_close_previous_month"])
def test_a_close_is_retried_after_a_database_hiccup(monkeypatch, task: str) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(tasks, "billing_period_close", _failing(calls, OperationalError("database is locked")))
    args = ("2025-01", None) if task == "billing_close_period" else ()

    with pytest.raises(Retry) as retry:
        getattr(tasks, task).apply(args=args, throw=True)

    assert isinstance(retry.value.exc, OperationalError)
    assert len(calls) == 1


def test_a_month_that_is_not_over_is_not_retried(monkeypatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(tasks, "billing_period_close", _failing(calls, BillingError("2099-01 is not over yet")))

    with pytest.raises(BillingError):
        tasks.billing_close_period.apply(args=("2099-01", None), throw=True)

    assert len(calls) == 1


def test_a_close_run_again_after_it_committed_changes_nothing() -> None:
    first = billing_period_close(period="2025-01", today=dt.date(2025, 2, 1))
    again = billing_period_close(period="2025-01", today=dt.date(2025, 2, 1))
    assert (first.already_closed, again.already_closed) == (False, True)
    assert BillingPeriod.objects.filter(start=dt.date(2025, 1, 1)).count() == 1
