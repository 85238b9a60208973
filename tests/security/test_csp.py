"""Content Security Policy on every HTML page of the project, and no inline code anywhere."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.security import url_table as table
from tests.security.walk import World, all_routes, client_for, url_kwargs

# Who opens a page for the check: the first of these roles that may.
PREFERRED = (table.ADMIN, table.CLIENT_ADMIN, table.ACCOUNTING, table.OPERATOR, table.CLIENT, table.ANON)

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)

JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.I)


def _page_problems(response) -> list[str]:
    problems = _check_csp(response.get("Content-Security-Policy", ""))
    if not response.get("Content-Security-Policy"):
        problems.append("no Content-Security-Policy header")
    html = response.content.decode(errors="replace")
    for pattern, what in ((INLINE_SCRIPT, "inline <script>"), (STYLE_ATTRIBUTE, "style= attribute"),
                          (EVENT_HANDLER, "on*= event handler"), (JS_URL, "javascript: URL")):
        match = pattern.search(html)
        if match:
            problems.append(f"{what}: {match.group(0)[:80]!r}")
    if "<style" in html.lower():
        problems.append("<style> element")
    return problems


def _check_csp(header: str) -> list[str]:
    problems = []
    directives: dict[str, str] = {}
    for part in (p.strip() for p in header.split(";")):
        if part:
            name, _, value = part.partition(" ")
            directives[name] = value.strip()
    for unsafe in ("'unsafe-inline'", "'unsafe-eval'"):
        if unsafe in header:
            problems.append(f"CSP allows {unsafe}")
    script = directives.get("script-src", directives.get("default-src", ""))
    if "'self'" not in script or "*" in script.split():
        problems.append(f"script-src is not restricted to self/nonce: {script!r}")
    for name, value in (("object-src", "'none'"), ("frame-ancestors", "'none'")):
        if directives.get(name) != value:
            problems.append(f"{name} should be {value}")
    return problems


@pytest.mark.django_db
def test_every_html_page_has_a_strict_csp_and_no_inline_code(world: World) -> None:
    failures: list[str] = []
    checked = 0
    for route in all_routes():
        readers = table.read_roles(table.rule_for(route.name) or frozenset())
        role = next((r for r in PREFERRED if r in readers), None)
        if role is None:
            continue
        url = reverse(route.name, kwargs=url_kwargs(route, world))
        response = client_for(role, world).get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        if response.streaming:
            continue
        checked += 1
        failures.extend(f"{url} ({route.name}, as {role}): {p}" for p in _page_problems(response))
    assert checked >= 15, f"only {checked} HTML pages were checked"
    assert not failures, "\n".join(failures)


@pytest.mark.django_db
def test_security_headers_on_the_sign_in_page() -> None:
    response = Client().get("/accounts/login/")
    assert _check_csp(response["Content-Security-Policy"]) == []
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_the_api_docs_page_is_csp_clean_and_lists_every_endpoint(staff_user) -> None:
    client = Client()
    client.force_login(staff_user)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    assert _page_problems(response) == []
    html = response.content.decode()
    assert "cdn." not in html
    for path in ("/api/v1/tenants/", "/api/v1/billing/", "/api/v1/offsite/", "/api/v1/alerts/"):
        assert path in html
