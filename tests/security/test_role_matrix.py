"""The role matrix over every URL of the project, and the cross-tenant walk.

The URL list is read from Django's resolver, so URLs added later are covered without
touching this file; each must have a rule in url_table.RULES (who may open it) and, if it
takes parameters, a resolver in url_table.PARAMS giving tenant A's object.

For every URL and role:
- a role that may not open it is refused on GET, POST, PUT, PATCH and DELETE (rules may
  differ for reading and writing): anonymous users are sent to sign in (or get 401/403 from
  the API), signed-in users get 403 or 404, and 405 (method not served) is fine;
- a role that may open it gets neither 403/404/500 nor a sign-in redirect on GET;
- every POST without a CSRF token is refused (403).
Then the cross-tenant walk: tenant B's clients use every URL with tenant A's objects and
must be refused everywhere; pages they may open never show tenant A.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from tests.security import url_table as table
from tests.security.walk import LOGIN_PATH, World, all_routes, client_for, url_kwargs

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
        rule = table.rule_for(route.name)
        if rule is None:
            continue  # reported by test_every_url_has_an_access_rule
        url = reverse(route.name, kwargs=url_kwargs(route, world))
        readers, writers = table.read_roles(rule), table.write_roles(rule)
        for role in table.ROLES:
            client = client_for(role, world)
            if role in readers:
                response = client.get(url)
                public = readers == table.PUBLIC
                if (public and response.status_code >= 500) or (not public and not _allowed(response)):
                    failures.append(f"{role} should open GET {url} ({route.name}) but got "
                                    f"{response.status_code} {response.get('Location', '')}")
            for method in REFUSED_METHODS:
                if role in (readers if method == "get" else writers):
                    continue  # allowed: writes are not tried (they would change things)
                response = _call(client, method, url)
                if not _refused(response, anonymous=role == table.ANON):
                    failures.append(f"{role} must be refused {method.upper()} {url} ({route.name})"
                                    f" but got {response.status_code} {response.get('Location', '')}")
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_every_post_without_a_csrf_token_is_refused(world: World) -> None:
    failures: list[str] = []
    for route in all_routes():
        rule = table.rule_for(route.name) or frozenset()
        signed_in = sorted(table.write_roles(rule) - {table.ANON}) or sorted(
            table.read_roles(rule) - {table.ANON}
        )
        role = signed_in[0] if signed_in else table.ANON
        url = reverse(route.name, kwargs=url_kwargs(route, world))
        response = client_for(role, world, csrf=True).post(url, {})
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
        url = reverse(route.name, kwargs=url_kwargs(route, world))
        walked += 1
        for role in (table.CLIENT, table.CLIENT_ADMIN):
            client = client_for(role, world, tenant_b=True)
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
        allowed_roles = table.read_roles(table.rule_for(route.name) or frozenset())
        if table.CLIENT_ADMIN not in allowed_roles or allowed_roles == table.PUBLIC:
            continue
        if not [p for p in route.params if p not in table.TENANT_NEUTRAL_PARAMS]:
            continue
        url = reverse(route.name, kwargs=url_kwargs(route, world))
        response = client_for(table.CLIENT_ADMIN, world).get(url)
        assert _allowed(response), f"{url}: {response.status_code}"
        opened += 1
    assert opened >= 3


@pytest.mark.django_db
def test_pages_tenant_b_may_open_never_show_tenant_a(world: World) -> None:
    checked = 0
    for route in all_routes():
        allowed_roles = table.read_roles(table.rule_for(route.name) or frozenset())
        if route.params or table.CLIENT_ADMIN not in allowed_roles:
            continue
        for role in (table.CLIENT, table.CLIENT_ADMIN):
            response = client_for(role, world, tenant_b=True).get(reverse(route.name))
            if response.status_code != 200 or response.streaming:
                continue
            body = response.content.decode(errors="replace")
            for marker in ("tenant-a", "Tenant A", "m-client-a", "invitee@example.test"):
                assert marker not in body, f"{route.name} shows {marker!r} to tenant B"
            checked += 1
    assert checked >= 5


@pytest.mark.django_db
def test_the_django_admin_is_not_mounted_in_production(world: World) -> None:
    """Its own login form would bypass the portal's throttling, second factor and audit."""
    for role in table.ROLES:
        for path in ("/django-admin/", "/django-admin/login/"):
            assert client_for(role, world).get(path).status_code == 404
