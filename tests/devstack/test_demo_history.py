"""`manage.py demo_seed --history`: what `make run` shows a newcomer at once, written once."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from alerts.models import Alert, QuotaState
from billing.models import BillingPeriod, CreditNote, Invoice, MeteringGap, UsageSample
from devstack.demo.history import DEMO_SLUGS, closed_months, history_start
from offsite.models import TenantOffsite
from pbssim import Simulator
from pbssim.demo import seed_demo
from tenants.models import OnboardingRun, Tenant

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.fixture
def demo_stack(monkeypatch, django_capture_on_commit_callbacks, pbs_https_factory):
    """Both simulated hosts adopted and measured today, as `make run` has them before the history."""
    hosts = []
    for index in (0, 1):
        sim = Simulator()
        seed_demo(sim, host_index=index)
        token_id, secret = sim.bootstrap_admin_token()
        server = pbs_https_factory(sim)
        hosts.append({"name": f"pbs{index + 1}", "url": server.url, "fingerprint": server.fingerprint,
                      "token_id": token_id, "token_secret": secret})  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(hosts)))
    with django_capture_on_commit_callbacks(execute=True):  # the onboarding runs, on commit
        call_command("demo_seed", stdout=io.StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("billing", "collect", stdout=io.StringIO())

    def history() -> str:
        out, err = io.StringIO(), io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("demo_seed", "--history", stdout=out, stderr=err)
        assert err.getvalue() == ""
        return out.getvalue()

    return history


def _counts() -> dict[str, int]:
    return {
        "samples": UsageSample.objects.count(),
        "gaps": MeteringGap.objects.count(),
        "invoices": Invoice.objects.count(),
        "credit_notes": CreditNote.objects.count(),
        "tenants": Tenant.objects.count(),
        "runs": OnboardingRun.objects.count(),
        "alerts": Alert.objects.count(),
        "memberships": TenantOffsite.objects.count(),
    }


def test_the_demo_history_shows_everything_and_a_second_start_adds_nothing(demo_stack) -> None:
    today = timezone.localdate()
    output = demo_stack()

    assert Tenant.objects.filter(slug__in=DEMO_SLUGS, status=Tenant.Status.ACTIVE).count() == 6
    assert all("(demo)" in name for name in Tenant.objects.values_list("name", flat=True))
    # Daily usage from the first history day to today: one row per day, sample or gap.
    days = (today - history_start(today)).days + 1
    assert days >= 90
    per_tenant = dict(
        UsageSample.objects.filter(tenant__slug__in=DEMO_SLUGS).values_list("tenant__slug").annotate(n=Count("id"))
    )
    gaps = dict(MeteringGap.objects.values_list("tenant__slug").annotate(n=Count("id")))
    for slug in DEMO_SLUGS:
        assert 1 <= gaps[slug] <= 5, gaps
        assert per_tenant[slug] + gaps[slug] == days, (slug, per_tenant[slug], gaps[slug])
    # Growth, consistent with what PBS measured today: the history ends at today's figures.
    fast = UsageSample.objects.filter(tenant__slug="umbrella").order_by("day")
    first, last = fast.first(), fast.last()
    assert last.day == today
    assert last.logical_bytes > 3 * first.logical_bytes
    assert all(s.latest_bytes <= s.logical_bytes for s in UsageSample.objects.all())
    # The datastore's disk usage grows with its tenants (the overview forecasts from it).
    assert first.gc_disk_bytes < last.gc_disk_bytes
    assert first.gc_index_data_bytes < last.gc_index_data_bytes

    # The last two months closed through the monthly close, one invoice per demo tenant each.
    for period in closed_months(today):
        row = BillingPeriod.objects.get(start=dt.date.fromisoformat(f"{period}-01"))
        assert row.status == BillingPeriod.Status.CLOSED
        assert row.invoices.filter(replaces__isnull=True).count() == 6
    assert f"closed {closed_months(today)[0]}" in output
    credit = CreditNote.objects.get()
    assert credit.invoice.status == Invoice.Status.CREDITED
    assert Invoice.objects.get(replaces=credit.invoice).plan_name != credit.invoice.plan_name
    assert credit.reason.startswith("Demo data")
    assert f"corrected with credit note {credit.number}" in output

    # One tenant near its quota, one over it with the grace running; each with its alert.
    near = QuotaState.objects.get(tenant__slug="globex")
    over = QuotaState.objects.get(tenant__slug="hooli")
    assert near.state == "warning"
    assert over.state == "over"
    assert over.grace_ends_at > timezone.now()
    open_kinds = set(Alert.objects.filter(status=Alert.Status.OPEN).values_list("tenant__slug", "kind"))
    assert {slug for slug, _ in open_kinds} >= {"globex", "hooli", "acme"}

    # One stale offsite copy, and one failed onboarding run that says what to do.
    stale = TenantOffsite.objects.get()
    assert stale.tenant.slug == "acme"
    assert stale.stale, stale.stale_reason
    assert any(kind.startswith("offsite") for slug, kind in open_kinds if slug == "acme"), open_kinds
    failed = OnboardingRun.objects.get(tenant__slug="wayne")
    assert failed.status == OnboardingRun.Status.FAILED
    assert "not made by the portal" in failed.error
    assert "Pick another slug" in failed.error_hint

    before = _counts()
    second = demo_stack()
    assert _counts() == before
    assert "0 daily samples, 0 gaps written" in second
    assert "closed 20" not in second
    assert "credit note" not in second
