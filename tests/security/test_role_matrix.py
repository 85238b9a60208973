"""The role matrix over every URL of the project, and the cross-tenant walk.

The URL list is read from Django's resolver, so URLs added later are covered without
touching this file; each must have a rule in url_table.RULES (who may open it) and, if it
takes parameters, a resolver in url_table.PARAMS giving tenant A's object.

For every URL and role:
- a role that may not open it is refused on GET and on POST: anonymous users are sent to
  sign in (or get 401/403 from the API), signed-in users get 403 or 404;
- a role that may open it gets neither 403/404 nor a sign-in redirect on GET;
- every POST without a CSRF token is refused (403).
Then the cross-tenant walk: tenant B's clients use every URL with tenant A's objects and
must be refused everywhere; pages they may open never show tenant A.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts import services as account_services
from accounts.models import Role, User
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
    world.invoice_a = Invoice.objects.get(tenant=world.tenant_a)
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


@pytest.fixture
def world(db: None) -> Iterator[World]:
    host = make_host(name="matrix-pbs", url="https://matrix-pbs.invalid:8007")
    store = make_datastore(host=host, name="store1")
    tenant_a = make_tenant(slug="tenant-a", name="Tenant A", datastore=store)
    tenant_b = make_tenant(slug="tenant-b", name="Tenant B", datastore=store)
    users = {
        table.ADMIN: make_user(role=Role.ADMIN, username="m-admin"),
        table.OPERATOR: make_user(role=Role.OPERATOR, username="m-operator"),
        table.ACCOUNTING: make_user(role=Role.ACCOUNTING, username="m-accounting"),
        table.CLIENT: make_user(role=Role.CLIENT, tenant=tenant_a, username="m-client-a"),
        table.CLIENT_ADMIN: make_user(
            role=Role.CLIENT, tenant=tenant_a, username="m-client-a-admin", is_tenant_admin=True
        ),
    }
    clients_b = {
        table.CLIENT: make_user(role=Role.CLIENT, tenant=tenant_b, username="m-client-b"),
        table.CLIENT_ADMIN: make_user(
            role=Role.CLIENT, tenant=tenant_b, username="m-client-b-admin", is_tenant_admin=True
        ),
    }
    w = World(
        host=host,
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        users=users,
        client_a=make_user(role=Role.CLIENT, tenant=tenant_a, username="m-client-a-2"),
        clients_b=clients_b,
        token_a=make_token(tenant=tenant_a, name="restore-laptop"),
        invitation_a=account_services.invitation_create(
            tenant=tenant_a, email="invitee@example.test", actor=users[table.ADMIN]
        ),
    )
    from alerts.models import QuotaState

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


@pytest.fixture(autouse=True)
def _fast_pbs_failures(settings) -> None:
    settings.PORTAL_PBS_TIMEOUT_SECONDS = 1.0


def _kwargs(route: Route, world: World) -> dict[str, Any]:
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


def _client_for(role: str, world: World, *, tenant_b: bool = False, csrf: bool = False) -> Client:
    # Server errors come back as 500 responses (reported with the rest), not exceptions.
    client = Client(enforce_csrf_checks=csrf, raise_request_exception=False)
    if role != table.ANON:
        client.force_login(world.clients_b[role] if tenant_b else world.users[role])
    return client


# --- outcome classification ---------------------------------------------------------------


def _sent_to_login(response: Any) -> bool:
    return response.status_code == 302 and response["Location"].startswith(LOGIN_PATH + "?next=")


def _refused(response: Any, *, anonymous: bool) -> bool:
    if anonymous and (_sent_to_login(response) or response.status_code in (401, 403)):
        return True
    if not anonymous and response.status_code in (403, 404):
        return True
    # A method the URL does not serve is answered 405 before anything happens: nothing leaks.
    return response.status_code == 405


# Methods a refused role tries: reads, and every kind of write an API may serve.
REFUSED_METHODS = ("get", "post", "put", "patch", "delete")


def _call(client: Client, method: str, url: str) -> Any:
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, {} if method == "post" else "{}", **(
        {} if method == "post" else {"content_type": "application/json"}
    ))


def _allowed(response: Any) -> bool:
    return response.status_code not in (401, 403, 404, 500) and not _sent_to_login(response)


# --- the tests ------------------------------------------------------------------------------


def test_every_url_has_an_access_rule() -> None:
    missing = sorted(
        f"{r.name or '(unnamed)'}  ->  /{r.route}"
        for r in all_routes()
        if not r.name or table.rule_for(r.name) is None
    )
    assert not missing, (
        "URLs without a rule in tests/security/url_table.py RULES (decide who may open "
        "them, and name every URL):\n" + "\n".join(missing)
    )


def test_the_matrix_sees_the_urls_of_every_app() -> None:
    names = {r.name for r in all_routes()}
    for expected in ("accounts:login", "selfservice:token_revoke", "selfservice-api:backups",
                     "tenants:list", "billing:invoice", "home"):
        assert expected in names


@pytest.mark.django_db
def test_each_role_is_refused_or_let_in_exactly_as_the_table_says(world: World) -> None:
    failures: list[str] = []
    for route in all_routes():
        allowed_roles = table.rule_for(route.name)
        if allowed_roles is None:
            continue  # reported by test_every_url_has_an_access_rule
        url = reverse(route.name, kwargs=_kwargs(route, world))
        public = allowed_roles == table.PUBLIC
        for role in table.ROLES:
            if role in allowed_roles:
                response = _client_for(role, world).get(url)
                if public and response.status_code < 500:
                    continue  # anything but a server error goes for everyone
                if not _allowed(response):
                    failures.append(f"{role} should open GET {url} ({route.name}) but got "
                                    f"{response.status_code} {response.get('Location', '')}")
                continue
            client = _client_for(role, world)
            for method in REFUSED_METHODS:
                response = _call(client, method, url)
                if not _refused(response, anonymous=role == table.ANON):
                    failures.append(f"{role} must be refused {method.upper()} {url} ({route.name})"
                                    f" but got {response.status_code} {response.get('Location', '')}")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_every_post_without_a_csrf_token_is_refused(world: World) -> None:
    failures: list[str] = []
    for route in all_routes():
        allowed_roles = table.rule_for(route.name) or frozenset()
        signed_in = sorted(allowed_roles - {table.ANON})
        role = signed_in[0] if signed_in else table.ANON
        url = reverse(route.name, kwargs=_kwargs(route, world))
        response = _client_for(role, world, csrf=True).post(url, {})
        if response.status_code not in (403, 405):
            failures.append(f"{role} POST {url} ({route.name}) without CSRF token got "
                            f"{response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_tenant_b_is_refused_every_url_that_names_tenant_a(world: World) -> None:
    """The cross-tenant walk: B's clients try every URL with A's objects."""
    failures: list[str] = []
    walked = 0
    for route in all_routes():
        tenant_params = [p for p in route.params if p not in table.TENANT_NEUTRAL_PARAMS]
        if not tenant_params:
            continue
        url = reverse(route.name, kwargs=_kwargs(route, world))
        walked += 1
        for role in (table.CLIENT, table.CLIENT_ADMIN):
            client = _client_for(role, world, tenant_b=True)
            for method in REFUSED_METHODS:
                response = _call(client, method, url)
                if not _refused(response, anonymous=False):
                    failures.append(f"tenant B {role} {method.upper()} {url} ({route.name}) got "
                                    f"{response.status_code}")
    assert walked >= 10, "the walk found suspiciously few URLs with tenant parameters"
    assert not failures, "\n".join(failures)
    # Nothing of A's changed on the way.
    world.token_a.refresh_from_db()
    assert world.token_a.revoked_at is None
    assert User.objects.filter(pk=world.client_a.pk).exists()
    world.invitation_a.refresh_from_db()
    assert world.invitation_a.revoked_at is None


@pytest.mark.django_db
def test_the_same_urls_open_for_tenant_a_itself(world: World) -> None:
    """Positive control for the walk: A's own client admin may GET A's client URLs."""
    opened = 0
    for route in all_routes():
        allowed_roles = table.rule_for(route.name) or frozenset()
        if table.CLIENT_ADMIN not in allowed_roles or allowed_roles == table.PUBLIC:
            continue
        if not [p for p in route.params if p not in table.TENANT_NEUTRAL_PARAMS]:
            continue
        url = reverse(route.name, kwargs=_kwargs(route, world))
        response = _client_for(table.CLIENT_ADMIN, world).get(url)
        assert _allowed(response), f"{url}: {response.status_code}"
        opened += 1
    assert opened >= 3


@pytest.mark.django_db
def test_pages_tenant_b_may_open_never_show_tenant_a(world: World) -> None:
    checked = 0
    for route in all_routes():
        allowed_roles = table.rule_for(route.name) or frozenset()
        if route.params or table.CLIENT_ADMIN not in allowed_roles:
            continue
        for role in (table.CLIENT, table.CLIENT_ADMIN):
            response = _client_for(role, world, tenant_b=True).get(reverse(route.name))
            if response.status_code != 200 or response.streaming:
                continue
            body = response.content.decode(errors="replace")
            for marker in ("tenant-a", "Tenant A", "m-client-a", "invitee@example.test"):
                assert marker not in body, f"{route.name} shows {marker!r} to tenant B"
            checked += 1
    assert checked >= 5


@pytest.mark.django_db
def test_the_django_admin_is_closed_to_every_portal_role(world: World) -> None:
    for role in table.ROLES:
        response = _client_for(role, world).get(reverse("admin:index"))
        assert response.status_code == 302
        assert "/django-admin/login/" in response["Location"]
