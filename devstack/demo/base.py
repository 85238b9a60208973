"""Demo data for `make run`: the simulated hosts registered, plans, logins, tenants.

Everything is idempotent, so `make run` can start again on the same database:
hosts are re-pinned and get the simulator's fresh bootstrap token, and only what is
missing is created. Logins are printed once, when they are created.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import Role, User
from audit.services import audit_record
from plans.models import Plan
from tenants import services as tenant_services
from tenants.models import Datastore, PbsHost, Tenant
from tenants.pbs import client_for_host

DEMO_PLANS = (
    # name, metric, included GiB, price per GiB-month, base fee, minimum
    ("Standard", Plan.Metric.LOGICAL, "100", "0.0200", "10.00", "0.00"),
    ("Efficient", Plan.Metric.PHYSICAL, "50", "0.0450", "15.00", "20.00"),
    ("Latest only", Plan.Metric.LATEST, "0", "0.0300", "5.00", "0.00"),
)


@dataclass(frozen=True)
class DemoHostInfo:
    name: str
    url: str
    fingerprint: str
    token_id: str
    token_secret: str


@dataclass(frozen=True)
class NewLogin:
    username: str
    password: str
    role: str


def demo_host_register(info: DemoHostInfo) -> PbsHost:
    """Register a simulated host, or re-pin it and give it the simulator's current token."""
    host = PbsHost.objects.filter(name=info.name).first()
    if host is None:
        return tenant_services.pbshost_register(
            name=info.name, url=info.url, fingerprint=info.fingerprint,
            token_id=info.token_id, token_secret=info.token_secret,
        )  # fmt: skip
    tenant_services.pbshost_update(
        host_id=host.pk, fingerprint=info.fingerprint, token_id=info.token_id, token_secret=info.token_secret
    )
    return tenant_services.pbshost_check(host_id=host.pk, enable_new_datastores=True)


def demo_plans_ensure() -> list[Plan]:
    plans = []
    for name, metric, included, price, base, minimum in DEMO_PLANS:
        plan, _ = Plan.objects.get_or_create(
            name=name,
            defaults={
                "metric": metric, "included_gib": Decimal(included), "price_per_gib": Decimal(price),
                "base_fee": Decimal(base), "minimum_charge": Decimal(minimum),
            },
        )  # fmt: skip
        plans.append(plan)
    return plans


def _login_ensure(username: str, role: str, **fields: Any) -> NewLogin | None:
    if User.objects.filter(username=username).exists():
        return None
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        User.objects.create_user(username=username, password=password, role=role, **fields)
        audit_record(action="user.created", target=username, detail={"role": role, "via": "demo"})
    return NewLogin(username, password, role)


def demo_logins_ensure() -> list[NewLogin]:
    created = [
        _login_ensure("admin", Role.ADMIN, email="admin@example.net", is_staff=True, is_superuser=True),
        _login_ensure("accounting", Role.ACCOUNTING, email="accounting@example.net"),
    ]
    return [login for login in created if login]


def demo_client_login_ensure(tenant: Tenant) -> NewLogin | None:
    return _login_ensure(
        f"{tenant.slug}-admin", Role.CLIENT, email=f"it@{tenant.slug}.example", tenant=tenant, is_tenant_admin=True
    )


def _existing_customer_namespaces(host: PbsHost) -> list[tuple[Datastore, str]]:
    """(datastore, slug) for every namespace under the parent that has no tenant yet:
    the customers a host already serves before the portal manages it."""
    parent = settings.PORTAL_NAMESPACE_PARENT
    found = []
    with client_for_host(host) as client:
        for datastore in host.datastores.filter(enabled=True).order_by("name"):
            for namespace in client.namespace_list(datastore.name, parent=parent, max_depth=1):
                slug = namespace.ns.removeprefix(f"{parent}/")
                if namespace.ns.startswith(f"{parent}/") and "/" not in slug:
                    found.append((datastore, slug))
    return found


def demo_tenants_adopt(host: PbsHost, plans: list[Plan]) -> list[Tenant]:
    """Create a tenant for each existing customer namespace on the host and onboard it
    (check-before-create: the namespace is kept, the user, ACLs, token and prune job made)."""
    adopted = []
    for index, (datastore, slug) in enumerate(_existing_customer_namespaces(host)):
        if Tenant.objects.filter(slug=slug).exists():
            continue
        tenant = tenant_services.tenant_create(
            slug=slug, name=f"{slug.title()} Ltd (demo)", contact_name="IT department (demo)",
            contact_email=f"it@{slug}.example", plan=plans[index % len(plans)], datastore=datastore,
        )  # fmt: skip
        tenant_services.tenant_onboard(tenant_id=tenant.pk)
        adopted.append(tenant)
    return adopted
