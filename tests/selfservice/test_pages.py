"""The self-service pages: live backups (cached, tenant-only), connection details, usage and
invoices, the team page, CSP."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import Invitation, Role, User
from selfservice.selectors import backups_cache_key, connection_details
from tenants.models import TenantToken
from tenants.pbs import install_transport
from tests.factories import make_user

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


def _seed(sim_tenants) -> None:
    now = int(time.time())
    a, b = sim_tenants.tenant_a.namespace, sim_tenants.tenant_b.namespace
    seed = sim_tenants.sim.seed_snapshot
    seed(store="store1", ns=a, backup_type="vm", backup_id="100", backup_time=now - 86400,
         size=5 * 2**30, verification="ok")
    seed(store="store1", ns=a, backup_type="vm", backup_id="100", backup_time=now - 3600,
         size=6 * 2**30)
    seed(store="store1", ns=f"{a}/branch", backup_type="ct", backup_id="web01",
         backup_time=now - 7200, size=2**30, verification="failed")
    seed(store="store1", ns=b, backup_type="vm", backup_id="999", backup_time=now, size=1)


@pytest.mark.django_db
def test_backups_list_the_tenants_groups_including_sub_namespaces_only(sim_tenants) -> None:
    _seed(sim_tenants)
    client = sim_tenants.login(sim_tenants.client_a)
    response = client.get("/my/backups/", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # the fragment only
    rows = re.findall(r"<tr>\s*<td class=\"mono\">([^<]+)</td>\s*<td>(\w+)</td>\s*"
                      r"<td class=\"mono\">([^<]+)</td>", html)
    assert rows == [("clients/tenant-a", "vm", "100"), ("clients/tenant-a/branch", "ct", "web01")]
    assert "999" not in html
    assert "tenant-b" not in html
    # vm/100: two snapshots, the newest not verified yet, the older one verified ok.
    assert re.search(r">100<.*?<td class=\"num\">2</td>", html, re.S)
    assert "newest not verified yet" in html
    assert "failed" in html


@pytest.mark.django_db
def test_the_full_backups_page_works_without_htmx(sim_tenants) -> None:
    _seed(sim_tenants)
    response = sim_tenants.login(sim_tenants.client_a).get("/my/backups/")
    assert b"<html" in response.content
    assert b"clients/tenant-a/branch" in response.content


@pytest.mark.django_db
def test_backups_are_read_from_pbs_at_most_once_a_minute_per_tenant(sim_tenants) -> None:
    _seed(sim_tenants)
    client_a = sim_tenants.login(sim_tenants.client_a)
    log = sim_tenants.sim.request_log
    client_a.get("/my/backups/", **HTMX)
    after_first = len(log)
    assert after_first > 0
    client_a.get("/my/backups/", **HTMX)
    client_a.get("/api/v1/my/backups/")
    assert len(log) == after_first  # served from the cache
    # Tenant B has its own cache entry: it reads PBS, and sees only its own.
    response = sim_tenants.login(sim_tenants.client_b).get("/api/v1/my/backups/")
    assert len(log) > after_first
    assert [g["backup_id"] for g in response.json()["groups"]] == ["999"]
    cache.delete(backups_cache_key(sim_tenants.tenant_a.pk))
    client_a.get("/my/backups/", **HTMX)
    assert len(log) > after_first


@pytest.mark.django_db
def test_backups_read_with_the_metering_token_when_there_is_one(sim_tenants) -> None:
    from core.crypto import encrypt_secret

    host = sim_tenants.host
    host.metering_token_id = "metering@pbs!read"
    host.metering_secret_enc = encrypt_secret("wrong-on-purpose")
    host.save()
    # The metering token does not exist on the simulator: reading fails, so it was used.
    response = sim_tenants.login(sim_tenants.client_a).get("/my/backups/", **HTMX)
    assert b"cannot be reached" in response.content


@pytest.mark.django_db
def test_an_unreachable_pbs_gives_a_clear_message_not_an_error(sim_tenants) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    install_transport(sim_tenants.host.url, httpx.MockTransport(down))
    client = sim_tenants.login(sim_tenants.client_a)
    response = client.get("/my/backups/", **HTMX)
    assert response.status_code == 200
    assert b"backup server cannot be reached right now" in response.content
    api = client.get("/api/v1/my/backups/")
    assert api.status_code == 503
    assert "cannot be reached" in api.json()["detail"]
    # The home page does not depend on PBS at all.
    assert client.get("/my/").status_code == 200


@pytest.mark.django_db
def test_connection_details_are_what_a_pbs_client_asks_for(sim_tenants) -> None:
    tenant = sim_tenants.tenant_a
    TenantToken.objects.create(tenant=tenant, purpose="backup", name="backup",
                               tokenid="tenant-a@pbs!backup")
    details = connection_details(tenant=tenant)
    assert details is not None
    assert details.server == "pbs1.sim.invalid"
    assert details.port == 8007
    assert details.datastore == "store1"
    assert details.namespace == "clients/tenant-a"
    assert details.auth_id == "tenant-a@pbs!backup"
    assert details.fingerprint == sim_tenants.host.fingerprint
    assert details.repository == "tenant-a@pbs!backup@pbs1.sim.invalid:8007:store1"
    assert "export PBS_REPOSITORY='tenant-a@pbs!backup@pbs1.sim.invalid:8007:store1'" in details.client_commands
    assert "export PBS_PASSWORD='<token secret>'" in details.client_commands
    assert "--ns clients/tenant-a" in details.client_commands
    assert details.pvesm_command.startswith("pvesm add pbs pbs-tenant-a --server pbs1.sim.invalid")
    for part in ("--datastore store1", "--namespace clients/tenant-a",
                 "--username 'tenant-a@pbs!backup'", "--password '<token secret>'",
                 f"--fingerprint {details.fingerprint}"):
        assert part in details.pvesm_command

    page = sim_tenants.login(sim_tenants.client_a).get("/my/").content.decode()
    for element in ("conn-server", "conn-fingerprint", "conn-datastore", "conn-namespace",
                    "conn-authid", "conn-client", "conn-pvesm"):
        assert f'id="{element}"' in page
        assert f'data-copy-target="{element}"' in page


def test_an_ipv6_server_is_bracketed_in_the_repository() -> None:
    from selfservice.selectors import _server_and_port

    assert _server_and_port("https://[2001:db8::5]:8008") == ("2001:db8::5", 8008)


@pytest.mark.django_db
def test_home_shows_usage_chart_and_own_invoices(sim_tenants) -> None:
    import datetime as dt

    from billing import services as billing_services
    from billing.models import Invoice
    from tests.billing.factories import at, make_plan, make_sample

    plan = make_plan(price_per_gib="0.05")
    for tenant in (sim_tenants.tenant_a, sim_tenants.tenant_b):
        tenant.plan = plan
        tenant.activated_at = at(dt.date(2025, 1, 1))
        tenant.save()
    make_sample(tenant=sim_tenants.tenant_a, day=dt.date(2025, 1, 10), logical=10 * 2**30)
    billing_services.billing_period_close(period="2025-01")
    mine = Invoice.objects.get(tenant=sim_tenants.tenant_a)
    theirs = Invoice.objects.get(tenant=sim_tenants.tenant_b)
    page = sim_tenants.login(sim_tenants.client_a).get("/my/").content.decode()
    assert "usage-chart" in page
    assert mine.number in page
    assert theirs.number not in page


@pytest.mark.django_db
def test_only_the_client_admin_sees_and_uses_the_team_page(sim_tenants, django_capture_on_commit_callbacks) -> None:
    plain = sim_tenants.login(sim_tenants.client_a)
    assert plain.get("/my/team/").status_code == 403
    assert plain.post("/my/team/invite/", {"email": "x@example.test"}).status_code == 403
    boss = make_user(role=Role.CLIENT, tenant=sim_tenants.tenant_a, is_tenant_admin=True)
    client = sim_tenants.login(boss)
    page = client.get("/my/team/")
    assert page.status_code == 200
    assert b"sim-client-a" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/my/team/invite/", {"email": "colleague@example.test"})
    invitation = Invitation.objects.get()
    assert invitation.tenant == sim_tenants.tenant_a
    assert invitation.invited_by == boss
    client.post(f"/my/team/users/{sim_tenants.client_a.pk}/remove/")
    assert not User.objects.filter(pk=sim_tenants.client_a.pk).exists()
    # Another tenant's user is not found from here.
    assert client.post(f"/my/team/users/{sim_tenants.client_b.pk}/remove/").status_code == 404
    assert User.objects.filter(pk=sim_tenants.client_b.pk).exists()
    # And the admin cannot remove itself.
    client.post(f"/my/team/users/{boss.pk}/remove/")
    assert User.objects.filter(pk=boss.pk).exists()


@pytest.mark.django_db
def test_client_pages_send_a_strict_csp_and_contain_no_inline_code(sim_tenants) -> None:
    _seed(sim_tenants)
    boss = make_user(role=Role.CLIENT, tenant=sim_tenants.tenant_a, is_tenant_admin=True)
    client = sim_tenants.login(boss)
    client.post("/my/tokens/create/", {"name": "csp", "days": "1"})
    pages = ["/my/", "/my/backups/", "/my/tokens/", "/my/team/", "/accounts/security/"]
    anonymous = ["/accounts/login/"]
    for url in pages + anonymous:
        response = (Client() if url in anonymous else client).get(url)
        assert response.status_code == 200, url
        csp = response["Content-Security-Policy"]
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "script-src 'self' 'nonce-" in csp
        assert "frame-ancestors 'none'" in csp
        html = response.content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script on {url}"
        assert not re.search(r"\sstyle=", html), f"style attribute on {url}"
        assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {url}"
        assert "<style" not in html, f"style element on {url}"
