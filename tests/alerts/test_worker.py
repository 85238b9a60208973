"""End to end with a real Celery worker (PostgreSQL, Redis): a metering sample's signal
reaches the worker, which evaluates the quota and delivers the signed webhook, retrying a
failing receiver after a real backoff."""

from __future__ import annotations

import json
from datetime import date

import pytest

from alerts import services
from alerts.models import QuotaState, WebhookDelivery
from tests.alerts.conftest import add_sample, make_plan_quota
from tests.alerts.receiver import SECRET, Receiver, verify
from tests.services import wait_until


@pytest.mark.celery
def test_a_sample_is_evaluated_by_the_worker_and_the_webhook_retried_until_delivered(tenant_a):
    from billing.models import UsageSample
    from billing.signals import usage_sampled

    quota = make_plan_quota(soft_gib="100", hard_gib="150", action="bill-overage")
    tenant_a.plan = quota.plan
    tenant_a.save()
    with Receiver([503, 200]) as receiver:
        services.tenant_webhook_set(tenant_id=tenant_a.pk, url=receiver.url, secret=SECRET)
        sample = add_sample(tenant_a, day=date.today(), gib=120)  # noqa: DTZ011 - a calendar day
        usage_sampled.send(sender=UsageSample, tenant_id=tenant_a.pk, sample_id=sample.pk)

        assert wait_until(
            lambda: QuotaState.objects.filter(tenant=tenant_a, state="over").exists(), timeout=30
        ), "the worker evaluated the quota"
        assert wait_until(
            lambda: WebhookDelivery.objects.filter(tenant=tenant_a, status="succeeded").exists(), timeout=90
        ), "the worker retried the webhook after the 503"

    delivery = WebhookDelivery.objects.get(tenant=tenant_a)
    assert delivery.attempts == 2
    assert len(receiver.requests) == 2
    assert all(verify(headers, body) for headers, body in receiver.requests)
    assert json.loads(receiver.requests[1][1])["alert"]["kind"] == "quota_over"
