"""Walking every URL of the project with tenant A's objects: the URL list, the world of
objects its parameters point at, and clients for each role. Used by the security tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts import services as account_services
from accounts.models import Role, User
from alerts.models import QuotaState
from tenants.models import OnboardingRun, PbsHost, Tenant, TenantToken
from tenants.pbs import install_transport, uninstall_transport
from tests.factories import make_datastore, make_host, make_tenant, make_token, make_user
from tests.security import url_table as table

LOGIN_PATH = "/accounts/login/"


# --- the URL list -------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    route: str
    params: tuple[str, ...]


def _walk(patterns: list[Any], prefix: str = "", namespace: str | None = None) -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = pattern.name or ""
            full = f"{namespace}:{name}" if namespace and name else name
            params = tuple(pattern.pattern.regex.groupindex)
            yield Route(full, prefix + str(pattern.pattern), params)


def all_routes() -> list[Route]:
    """Every URL pattern of the project except Django's admin site (see url_table)."""
    return [
        r for r in _walk(get_resolver().url_patterns)
        if not r.name.startswith(table.DJANGO_ADMIN_NAMESPACE + ":")
        and not r.route.startswith("django-admin/")
    ]


# --- tenant A's world -------------------------------------------------------------------------


@dataclass
class World:
    host: PbsHost
    tenant_a: Tenant
    tenant_b: Tenant
    users: dict[str, User]  # role key -> user of tenant A (clients) or staff
    client_a: User  # a second plain client of A: the target of "remove user" URLs
    clients_b: dict[str, User]  # CLIENT / CLIENT_ADMIN of tenant B
    token_a: TenantToken
    invitation_a: Any
    plan: Any = None
    invoice_a: Any = None
    credit_note_a: Any = None
    period_label: str = ""
    metering_run: Any = None
    offsite_policy: Any = None
    offsite_job_a: Any = None
    onboarding_run_a: Any = None


def _pbs_down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("PBS is down in the role matrix", request=request)


def _billing(world: World) -> None:
    from billing import services as billing_services
    from billing.models import Invoice, MeteringRun
    from tests.billing.factories import at, make_plan

    world.plan = make_plan(price_per_gib="0.02")
    Tenant.objects.filter(pk__in=[world.tenant_a.pk, world.tenant_b.pk]).update(
        plan=world.plan, activated_at=at(date(2025, 1, 1))
    )
    billing_services.billing_period_close(period="2025-01")
    world.invoice_a = Invoice.objects.get(tenant=world.tenant_a, period__start=date(2025, 1, 1))
    # Tenant A's January invoice stays issued; its February one, credited, gives the
    # credit-note URLs an object of tenant A.
    billing_services.billing_period_close(period="2025-02")
    february = Invoice.objects.get(tenant=world.tenant_a, period__start=date(2025, 2, 1))
    world.credit_note_a = billing_services.invoice_correct(
        invoice=february, reason="role matrix", actor=None, reissue=False
    ).credit_note
    world.period_label = "2025-01"
    world.metering_run = MeteringRun.objects.create(day=date(2025, 1, 31))


def _offsite(world: World) -> None:
    from offsite.models import OffsitePolicy, Remote, SyncJobRecord, TenantOffsite

    target = make_datastore(host=make_host(name="offsite-target"), name="copies")
    remote = Remote.objects.create(
        pulling_host=target.host, name="primary", source_host=world.host,
        host="pbs-primary.example.test", auth_id="offsite@pbs!pull",
    )
    world.offsite_policy = OffsitePolicy.objects.create(
        source_datastore=world.tenant_a.datastore, source_store="store1",
        target_datastore=target, remote=remote, scope="tenants",
    )
    membership = TenantOffsite.objects.create(tenant=world.tenant_a, policy=world.offsite_policy)
    world.offsite_job_a = SyncJobRecord.objects.create(
        policy=world.offsite_policy, membership=membership, host=target.host,
        job_id="o-tenant-a", store="copies", remote_name="primary", remote_store="store1",
    )


def build_world() -> Iterator[World]:
    """Tenant A and B with one object of every kind; PBS unreachable while it lives."""
    host = make_host(name="matrix-pbs", url="https://matrix-pbs.invalid:8007")
    store = make_datastore(host=host, name="store1")
    tenant_a = make_tenant(slug="tenant-a", name="Tenant A", datastore=store)
    tenant_b = make_tenant(slug="tenant-b", name="Tenant B", datastore=store)
    def user(username: str, role: str, tenant: Tenant | None = None, admin: bool = False) -> User:
        # No password: the walk signs in with force_login, and argon2 is slow.
        return make_user(
            password=None, role=role, tenant=tenant, username=username, is_tenant_admin=admin
        )

    users = {
        table.ADMIN: user("m-admin", Role.ADMIN),
        table.OPERATOR: user("m-operator", Role.OPERATOR),
        table.ACCOUNTING: user("m-accounting", Role.ACCOUNTING),
        table.CLIENT: user("m-client-a", Role.CLIENT, tenant_a),
        table.CLIENT_ADMIN: user("m-client-a-admin", Role.CLIENT, tenant_a, admin=True),
    }
    clients_b = {
        table.CLIENT: user("m-client-b", Role.CLIENT, tenant_b),
        table.CLIENT_ADMIN: user("m-client-b-admin", Role.CLIENT, tenant_b, admin=True),
    }
    w = World(
        host=host,
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        users=users,
        client_a=user("m-client-a-2", Role.CLIENT, tenant_a),
        clients_b=clients_b,
        token_a=make_token(tenant=tenant_a, name="restore-laptop"),
        invitation_a=account_services.invitation_create(
            tenant=tenant_a, email="invitee@example.test", actor=users[table.ADMIN]
        ),
    )

    for tenant in (tenant_a, tenant_b):
        QuotaState.objects.create(tenant=tenant)
    w.onboarding_run_a = OnboardingRun.objects.create(
        tenant=tenant_a, status=OnboardingRun.Status.SUCCEEDED
    )
    _billing(w)
    _offsite(w)
    # PBS is unreachable for the whole matrix: pages must cope, and nothing reaches it.
    install_transport(host.url, httpx.MockTransport(_pbs_down))
    try:
        yield w
    finally:
        uninstall_transport(host.url)


def url_kwargs(route: Route, world: World) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for param in route.params:
        resolver = table.PARAMS_BY_URL.get(route.name, {}).get(param) or table.PARAMS.get(param)
        if resolver is None:
            pytest.fail(
                f"URL {route.name!r} ({route.route}) has a parameter {param!r} the role matrix "
                "cannot fill: add a resolver to PARAMS or PARAMS_BY_URL in "
                "tests/security/url_table.py"
            )
        kwargs[param] = resolver(world)
    return kwargs


def client_for(role: str, world: World, *, tenant_b: bool = False, csrf: bool = False) -> Client:
    # Server errors come back as 500 responses (reported with the rest), not exceptions.
    client = Client(enforce_csrf_checks=csrf, raise_request_exception=False)
    if role != table.ANON:
        client.force_login(world.clients_b[role] if tenant_b else world.users[role])
    return client


