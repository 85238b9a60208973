"""Quota evaluation in the database: samples in, states, history, alerts and audit out.

Enforcement on PBS (stop-writes) is covered in test_quota_enforcement_pbs.py; these tests
use bill-overage so nothing touches PBS."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from alerts import selectors, services
from alerts.models import Alert, QuotaState, QuotaTransition
from audit.models import AuditEvent
from tests.alerts.conftest import add_sample, make_plan, make_plan_quota

DAY0 = date(2026, 3, 1)


def at(day: int, hour: int = 2) -> datetime:
    return datetime.combine(DAY0 + timedelta(days=day), time(hour), tzinfo=UTC)


@pytest.fixture
def tenant(tenant_a, alert_settings):
    quota = make_plan_quota(soft_gib="100", hard_gib="150", grace_days=7, action="bill-overage")
    tenant_a.plan = quota.plan
    tenant_a.contact_email = "it@tenant-a.example"
    tenant_a.save()
    return tenant_a


def sample_day(tenant, day: int, gib: float) -> QuotaState:
    sample = add_sample(tenant, day=DAY0 + timedelta(days=day), gib=gib, newest_backup_at=at(day, 1))
    return services.tenant_usage_sampled(tenant_id=tenant.pk, sample_id=sample.pk, now=at(day))


def open_kinds(tenant) -> set[str]:
    return set(selectors.open_alerts_for_tenant(tenant.pk).values_list("kind", flat=True))


@pytest.mark.django_db
def test_a_simulated_month_records_each_transition_and_alert(tenant, django_capture_on_commit_callbacks):
    usage = [50, 60, 70, 85, 90, 95, 105, 110, 112, 115, 118, 120, 121, 122, 123, 124, 125, 90, 80, 60]
    seen = []
    with django_capture_on_commit_callbacks(execute=True):
        for day, gib in enumerate(usage):
            state = sample_day(tenant, day, gib)
            seen.append((state.state, frozenset(open_kinds(tenant))))

    assert seen[0] == ("ok", frozenset())
    assert seen[3] == ("warning", {"quota_warning"})
    assert seen[6] == ("over", {"quota_over"}), "the warning is superseded, not left open"
    assert seen[13] == ("enforced", {"quota_enforced"})
    assert seen[17] == ("warning", {"quota_warning"})
    assert seen[19] == ("ok", frozenset())

    transitions = list(QuotaTransition.objects.filter(tenant=tenant).order_by("created_at"))
    assert [(t.from_state, t.to_state) for t in transitions] == [
        ("ok", "warning"), ("warning", "over"), ("over", "enforced"), ("enforced", "warning"), ("warning", "ok"),
    ]
    assert transitions[2].created_at == at(13), "grace of 7 days from day 6"
    assert AuditEvent.objects.filter(tenant=tenant, action="quota.transition").count() == 5

    state = QuotaState.objects.get(tenant=tenant)
    assert state.writes_blocked is False, "bill-overage never touches PBS"
    assert state.usage_bytes == 60 * 2**30

    warning_mail = [m for m in mail.outbox if "of the quota" in m.subject and "Resolved" not in m.subject]
    assert warning_mail, "the warning was mailed"
    enforced_recovery = [m for m in mail.outbox if m.subject.endswith("Resolved: Backup quota enforced")]
    assert len(enforced_recovery) == 2, "recovery from enforcement announced once (tenant + staff)"


@pytest.mark.django_db
def test_staying_over_the_quota_reminds_once_a_day_not_per_sample(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sample_day(tenant, 0, 110)
        for hour in (3, 4, 5):
            resampled = add_sample(tenant, day=DAY0, gib=110 + hour, taken_at=at(0, hour))
            services.quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=resampled.pk, now=at(0, hour))
        sample_day(tenant, 1, 120)
    over = Alert.objects.get(tenant=tenant, kind=Alert.Kind.QUOTA_OVER)
    assert over.notify_count == 2, "day 0 and the reminder on day 1"


@pytest.mark.django_db
def test_the_newest_sample_wins_over_a_late_older_one(tenant):
    newer = add_sample(tenant, day=DAY0 + timedelta(days=5), gib=120)
    older = add_sample(tenant, day=DAY0 + timedelta(days=4), gib=10)
    services.quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=newer.pk, now=at(5))
    state = services.quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=older.pk, now=at(5, 3))
    assert state.state == "over"
    assert state.usage_bytes == 120 * 2**30
    assert state.last_sample_id == newer.pk


@pytest.mark.django_db
def test_the_plans_metric_picks_the_figure(tenant):
    tenant.plan.metric = "physical"
    tenant.plan.save()
    sample = add_sample(tenant, day=DAY0, gib=180)  # physical estimate is half: 90 GiB
    state = services.quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=sample.pk, now=at(0))
    assert state.metric == "physical"
    assert state.usage_bytes == 90 * 2**30
    assert state.state == "warning"


@pytest.mark.django_db
def test_a_chunk_plan_measures_what_it_bills_the_share_or_else_the_estimate(tenant):
    from billing.models import UsageSample

    tenant.plan.metric = "chunk"
    tenant.plan.save()
    sample = add_sample(tenant, day=DAY0, gib=180)  # no chunk figure that day: the estimate, 90 GiB
    state = services.quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=sample.pk, now=at(0))
    assert (state.metric, state.usage_bytes, state.state) == ("chunk", 90 * 2**30, "warning")
    later = add_sample(tenant, day=DAY0 + timedelta(days=1), gib=180)
    UsageSample.objects.filter(pk=later.pk).update(physical_share_bytes=40 * 2**30)
    state = services.quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=later.pk, now=at(1))
    assert (state.usage_bytes, state.state) == (40 * 2**30, "ok")


@pytest.mark.django_db
def test_staff_extend_a_grace_with_a_reason_and_it_is_audited(tenant, staff_user):
    for day in range(8):
        state = sample_day(tenant, day, 110)
    assert state.state == "enforced"

    with pytest.raises(services.QuotaError, match="reason"):
        services.quota_grace_extend(tenant_id=tenant.pk, until=at(20), reason="  ", actor=staff_user, now=at(8))
    state = services.quota_grace_extend(
        tenant_id=tenant.pk, until=at(20), reason="customer is migrating", actor=staff_user, now=at(8)
    )
    assert state.state == "over"
    assert state.grace_ends_at == at(20)
    event = AuditEvent.objects.get(action="quota.grace_extended")
    assert event.actor == staff_user
    assert event.detail["reason"] == "customer is migrating"
    assert sample_day(tenant, 19, 110).state == "over"
    assert sample_day(tenant, 20, 110).state == "enforced"


@pytest.mark.django_db
def test_a_grace_cannot_cover_usage_past_the_hard_limit(tenant, staff_user):
    sample_day(tenant, 0, 160)
    with pytest.raises(services.QuotaError, match="hard limit"):
        services.quota_grace_extend(tenant_id=tenant.pk, until=at(20), reason="r", actor=staff_user, now=at(1))


@pytest.mark.django_db
def test_an_exempt_tenant_stays_over_and_ending_the_exemption_enforces(tenant, staff_user):
    for day in range(10):
        sample_day(tenant, day, 110)
    state = services.quota_exempt_set(
        tenant_id=tenant.pk, exempt=True, reason="contract renegotiation", actor=staff_user, now=at(10)
    )
    assert state.state == "over"
    assert state.exempt
    assert sample_day(tenant, 11, 140).state == "over"
    state = services.quota_exempt_set(tenant_id=tenant.pk, exempt=False, reason="done", actor=staff_user, now=at(12))
    assert state.state == "enforced"
    assert list(
        AuditEvent.objects.filter(tenant=tenant, action__startswith="quota.exempt").values_list("action", flat=True)
    ) == ["quota.exemption_ended", "quota.exempted"]


@pytest.mark.django_db
def test_raising_the_tenants_limit_returns_it_to_ok_at_once(tenant, staff_user):
    for day in range(8):
        sample_day(tenant, day, 110)
    state = services.tenant_quota_set(
        tenant_id=tenant.pk, soft_limit_gib=Decimal("500"), hard_limit_gib=None, actor=staff_user, now=at(8)
    )
    assert state.state == "ok"
    assert state.soft_limit_bytes == 500 * 2**30
    assert state.hard_limit_bytes == 150 * 2**30, "a field left empty keeps the plan's value"
    assert AuditEvent.objects.filter(action="quota.tenant_set", actor=staff_user).exists()
    state = services.tenant_quota_clear(tenant_id=tenant.pk, actor=staff_user, now=at(9))
    assert state.state == "over", "back on the plan's quota, a new grace starts"


@pytest.mark.django_db
def test_a_hard_limit_below_the_soft_limit_is_refused(tenant):
    with pytest.raises(services.QuotaError, match="hard limit"):
        services.tenant_quota_set(tenant_id=tenant.pk, soft_limit_gib=Decimal("100"), hard_limit_gib=Decimal("50"))


@pytest.mark.django_db
def test_the_metering_signal_evaluates_the_quota(tenant, django_capture_on_commit_callbacks):
    from billing.models import UsageSample
    from billing.signals import usage_sampled

    sample = add_sample(tenant, day=DAY0, gib=120)
    with django_capture_on_commit_callbacks(execute=True):
        usage_sampled.send(sender=UsageSample, tenant_id=tenant.pk, sample_id=sample.pk)
    state = QuotaState.objects.get(tenant=tenant)
    assert state.state == "over"
    assert state.last_sample_id == sample.pk


@pytest.mark.django_db
def test_a_stale_newest_backup_in_the_sample_raises_the_backup_alert(tenant, django_capture_on_commit_callbacks):
    sample = add_sample(tenant, day=DAY0, gib=1, newest_backup_at=at(0) - timedelta(hours=40))
    with django_capture_on_commit_callbacks(execute=True):
        services.tenant_usage_sampled(tenant_id=tenant.pk, sample_id=sample.pk, now=at(0))
    assert open_kinds(tenant) == {"backup_stale"}
    fresh = add_sample(tenant, day=DAY0 + timedelta(days=1), gib=1, newest_backup_at=at(1, 1))
    services.tenant_usage_sampled(tenant_id=tenant.pk, sample_id=fresh.pk, now=at(1))
    assert open_kinds(tenant) == set()


@pytest.mark.django_db
def test_a_plan_change_reevaluates_its_tenants(tenant, django_capture_on_commit_callbacks):
    sample_day(tenant, 0, 120)
    with django_capture_on_commit_callbacks(execute=True):
        services.plan_quota_set(plan_id=tenant.plan_id, soft_limit_gib=Decimal("1000"), hard_limit_gib=None)
    assert QuotaState.objects.get(tenant=tenant).state == "ok"


@pytest.mark.django_db
def test_a_tenant_on_a_plan_without_quota_is_never_over(tenant_b):
    tenant_b.plan = make_plan()
    tenant_b.save()
    sample = add_sample(tenant_b, day=DAY0, gib=10_000)
    state = services.quota_evaluate_tenant(tenant_id=tenant_b.pk, sample_id=sample.pk, now=at(0))
    assert state.state == "ok"
    assert state.soft_limit_bytes is None
