"""Runs whose Celery task was lost (worker killed, broker restarted) are enqueued again by beat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from portal.settings import CELERY_BEAT_SCHEDULE
from tenants import services
from tenants.models import OnboardingRun, Tenant
from tenants.tasks import onboarding_runs_recover

pytestmark = pytest.mark.django_db


def _lost_run(sim_host: Any, slug: str, *, age_seconds: int) -> OnboardingRun:
    """A run enqueued long ago whose task never arrived (enqueue=False stands in for the loss)."""
    tenant = services.tenant_create(slug=slug, name=slug.title(), datastore=sim_host.datastores.get(name="store1"))
    run, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    OnboardingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=age_seconds))
    return run


def test_a_stale_run_whose_task_was_lost_is_finished_by_the_recovery(
    sim_host: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PORTAL_ONBOARDING_STALE_SECONDS = 60
    lost = _lost_run(sim_host, "lost", age_seconds=120)
    fresh = _lost_run(sim_host, "fresh", age_seconds=0)

    with django_capture_on_commit_callbacks(execute=True):  # Celery is eager here
        assert onboarding_runs_recover.delay().get() == 1

    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == OnboardingRun.Status.SUCCEEDED
    assert Tenant.objects.get(pk=lost.tenant_id).status == Tenant.Status.ACTIVE
    assert fresh.status == OnboardingRun.Status.QUEUED, "a run younger than the stale limit is left alone"


def test_a_run_whose_lease_is_held_is_not_enqueued_again(sim_host: Any, settings: Any) -> None:
    settings.PORTAL_ONBOARDING_STALE_SECONDS = 60
    held = _lost_run(sim_host, "held", age_seconds=120)
    OnboardingRun.objects.filter(pk=held.pk).update(
        status=OnboardingRun.Status.RUNNING, claimed_until=timezone.now() + timedelta(seconds=30)
    )

    assert services.onboarding_runs_recover() == []


def test_a_recovered_run_is_not_enqueued_again_by_the_next_round(sim_host: Any, settings: Any) -> None:
    settings.PORTAL_ONBOARDING_STALE_SECONDS = 60
    lost = _lost_run(sim_host, "twice", age_seconds=120)

    assert services.onboarding_runs_recover() == [lost.pk]  # its task is lost again (no commit here)
    assert services.onboarding_runs_recover() == [], "one minute later: still within the stale limit"

    OnboardingRun.objects.filter(pk=lost.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=61))
    assert services.onboarding_runs_recover() == [lost.pk], "lost again: recovered again"


def test_a_run_waiting_for_its_retry_is_left_to_it(sim_host: Any, settings: Any) -> None:
    settings.PORTAL_ONBOARDING_STALE_SECONDS = 60
    waiting = _lost_run(sim_host, "waiting", age_seconds=120)
    services.onboarding_runs_expect(run_ids=[waiting.pk], in_seconds=240)  # a long back-off

    assert services.onboarding_runs_recover() == []


def test_beat_runs_the_recovery_every_minute() -> None:
    entry = CELERY_BEAT_SCHEDULE["onboarding-runs-recover"]
    assert entry["task"] == onboarding_runs_recover.name
    assert entry["schedule"].minute == set(range(60))
