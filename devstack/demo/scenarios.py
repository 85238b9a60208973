"""Demo situations that need a person, each made through the service that owns it:

- one tenant near its quota (a warning) and one over it with the grace period running
  (``alerts`` quota services: a per-tenant override, then an evaluation on the newest sample);
- one stale offsite copy (``offsite`` services: a per-tenant policy from one simulated host
  to the other whose sync job never ran, then the staleness check, which raises the alert);
- one failed onboarding run with its hint (``tenants`` onboarding: a customer whose PBS user
  already exists on the host, made by someone else, so the run stops with what to do).

Each is made once: a second start finds it and leaves it as it is.
"""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal

from django.conf import settings

from alerts.models import QuotaAction, TenantQuota
from alerts.selectors import tenant_metric, usage_latest_for_tenant
from alerts.services.quota import quota_evaluate_tenant
from alerts.services.quota_policy import tenant_quota_set
from offsite.models import OffsitePolicy, TenantOffsite
from offsite.services.memberships import tenant_offsite_enable
from offsite.services.policies import policy_create
from offsite.services.status import membership_staleness_refresh
from pbsclient.errors import AlreadyExists
from plans.models import Plan
from tenants import services as tenant_services
from tenants.models import Datastore, Tenant
from tenants.pbs import client_for_host

GIB = 2**30
NEAR_QUOTA_SLUG = "globex"  # ~88 % of its soft limit: a warning
OVER_QUOTA_SLUG = "hooli"  # over its soft limit, grace running
OFFSITE_SLUG = "acme"  # copied to the other host, but the copy never ran
FAILED_SLUG = "wayne"  # its PBS user was made by someone else
OFFSITE_COMMENT = "demo: acme's offsite copy (never synced, so stale)"
FAILED_USER_COMMENT = "made by hand for a backup script, not by the portal (demo)"


def _usage_gib(tenant: Tenant) -> Decimal | None:
    """Evaluate the tenant's quota on its newest sample; its billed usage in GiB."""
    figure = usage_latest_for_tenant(tenant_id=tenant.pk, metric=tenant_metric(tenant))
    if figure is None or not figure.usage_bytes:
        return None
    quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=figure.sample_id, trigger="demo")
    return Decimal(figure.usage_bytes) / GIB


def demo_quotas_ensure() -> list[str]:
    """One tenant near its quota, one in grace. Returns what it set, for printing."""
    done = []
    wanted = ((NEAR_QUOTA_SLUG, 0.88), (OVER_QUOTA_SLUG, 1.15))
    for slug, fill in wanted:
        tenant = Tenant.objects.select_related("plan").filter(slug=slug, status=Tenant.Status.ACTIVE).first()
        if tenant is None or TenantQuota.objects.filter(tenant=tenant).exists():
            continue
        usage = _usage_gib(tenant)
        if usage is None:
            continue
        soft = Decimal(math.ceil(usage / Decimal(fill)))
        state = tenant_quota_set(
            tenant_id=tenant.pk, soft_limit_gib=soft, hard_limit_gib=soft * 2, warning_percent=80, grace_days=10,
            action=QuotaAction.BILL_OVERAGE, actor=None,
        )  # fmt: skip
        done.append(f"{slug}: soft limit {soft} GiB, {state.state}")
    return done


def demo_offsite_ensure() -> str:
    """A per-tenant offsite copy of one tenant onto another host that has not synced yet."""
    tenant = Tenant.objects.select_related("datastore__host").filter(
        slug=OFFSITE_SLUG, status=Tenant.Status.ACTIVE
    ).first()
    if tenant is None or tenant.datastore is None:
        return ""
    if TenantOffsite.objects.filter(tenant=tenant).exists():
        return ""
    target = (
        Datastore.objects.filter(enabled=True, host__enabled=True, name=tenant.datastore.name)
        .exclude(host_id=tenant.datastore.host_id)
        .select_related("host")
        .order_by("host__name")
        .first()
    )
    if target is None:
        return ""
    policy = OffsitePolicy.objects.filter(comment=OFFSITE_COMMENT).first() or policy_create(
        target_datastore=target, source_datastore=tenant.datastore, scope=OffsitePolicy.Scope.TENANTS,
        target_ns="offsite", stale_after_hours=24, comment=OFFSITE_COMMENT, actor=None,
    )  # fmt: skip
    membership = tenant_offsite_enable(tenant=tenant, policy=policy, actor=None)
    membership = membership_staleness_refresh(
        membership=TenantOffsite.objects.select_related(
            "tenant", "policy__source_datastore__host", "policy__target_datastore__host"
        ).get(pk=membership.pk)
    )
    return f"{tenant.slug} -> {target}: {'stale' if membership.stale else 'up to date'}"


def demo_failed_run_ensure(*, datastore: Datastore, plan: Plan | None) -> Tenant | None:
    """A customer whose PBS user exists already, made by hand: its onboarding fails with the
    hint that says what to do (pick another slug, or mark the user as the portal's)."""
    if Tenant.objects.filter(slug=FAILED_SLUG).exists():
        return None
    userid = f"{FAILED_SLUG}@{settings.PORTAL_PBS_REALM}"
    # AlreadyExists: made on an earlier start.
    with client_for_host(datastore.host) as client, contextlib.suppress(AlreadyExists):
        client.user_create(userid=userid, comment=FAILED_USER_COMMENT, enable=True)
    tenant = tenant_services.tenant_create(
        slug=FAILED_SLUG, name="Wayne Enterprises (demo)", contact_name="IT department (demo)",
        contact_email=f"it@{FAILED_SLUG}.example", plan=plan, datastore=datastore,
    )  # fmt: skip
    tenant_services.tenant_onboard(tenant_id=tenant.pk)
    return tenant
