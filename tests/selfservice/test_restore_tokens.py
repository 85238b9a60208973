"""Restore tokens against the PBS simulator: effective rights, show-once, revoke."""

from __future__ import annotations

import json
import time

import pytest
from django.core.cache import cache
from django.test import Client

from audit.models import AuditEvent
from pbsclient import PbsClient
from pbsclient.errors import AuthenticationFailed, PermissionDenied
from tenants.models import AclGrant, TenantToken
from tenants.pbs import client_for_host
from tenants.restore import restore_privilege_problems
from tenants.services import restore_tokens as services
from tenants.services.restore_tokens import RestoreTokenError

HTMX = {"HTTP_HX_REQUEST": "true"}


def _token_client(sim_tenants, tokenid: str, secret: str) -> PbsClient:
    """A PBS client that authenticates as the new token itself."""
    return PbsClient(
        base_url=sim_tenants.host.url,
        token_id=tokenid,
        token_secret=secret,
        transport=sim_tenants.sim.transport(),
    )


def _create(sim_tenants, name: str = "laptop", days: int = 7):
    return services.restore_token_create(
        tenant=sim_tenants.tenant_a, name=name, days=days, actor=sim_tenants.client_a
    )


@pytest.mark.django_db
def test_a_restore_token_reads_its_namespace_and_nothing_else(sim_tenants) -> None:
    a, b = sim_tenants.tenant_a, sim_tenants.tenant_b
    now = int(time.time())
    sim_tenants.sim.seed_snapshot(store="store1", ns=a.namespace, backup_type="vm",
                                  backup_id="100", backup_time=now - 60, size=10)
    sim_tenants.sim.seed_snapshot(store="store1", ns=f"{a.namespace}/sub", backup_type="ct",
                                  backup_id="200", backup_time=now - 60, size=10)
    sim_tenants.sim.seed_snapshot(store="store1", ns=b.namespace, backup_type="vm",
                                  backup_id="900", backup_time=now - 60, size=10)
    created = _create(sim_tenants)

    # What the portal recorded: read rights on the namespace path only.
    token = TenantToken.objects.get(pk=created.token.pk)
    assert token.tokenid == "tenant-a@pbs!restore-laptop"
    assert token.privileges_checked_at is not None
    assert set(token.effective_privileges) == {a.acl_path}
    privs = token.effective_privileges[a.acl_path]
    assert {"Datastore.Read", "Datastore.Audit"} <= set(privs)
    assert not {"Datastore.Backup", "Datastore.Prune", "Datastore.Modify"} & set(privs)
    assert privs["Datastore.Read"] is True  # propagates into sub-namespaces

    # What the token can really do, asked of PBS as the token itself.
    with _token_client(sim_tenants, token.tokenid, created.secret) as pbs:
        assert [s.backup_id for s in pbs.snapshot_list("store1", ns=a.namespace)] == ["100"]
        assert [s.backup_id for s in pbs.snapshot_list("store1", ns=f"{a.namespace}/sub")] == ["200"]
        with pytest.raises(PermissionDenied):
            pbs.snapshot_list("store1", ns=b.namespace)
        with pytest.raises(PermissionDenied):
            pbs.namespace_create("store1", "evil", parent=a.namespace)
        with pytest.raises(PermissionDenied):
            pbs.snapshot_list("store1")  # the datastore root is outside the namespace


@pytest.mark.django_db
def test_creation_is_recorded_with_acl_grant_expiry_and_audit(sim_tenants) -> None:
    created = _create(sim_tenants, days=10)
    token = created.token
    assert AclGrant.objects.filter(auth_id=token.tokenid, role="DatastoreReader",
                                   path=sim_tenants.tenant_a.acl_path).exists()
    with client_for_host(sim_tenants.host) as pbs:
        on_pbs = pbs.token_get("tenant-a@pbs", "restore-laptop")
    assert on_pbs.expire == int(token.expires_at.timestamp())
    assert 9.9 * 86400 < on_pbs.expire - time.time() <= 10 * 86400
    actions = set(AuditEvent.objects.filter(target=token.tokenid).values_list("action", flat=True))
    assert {"token.created", "token.revealed"} <= actions


@pytest.mark.django_db
def test_the_secret_is_shown_once_and_never_stored(sim_tenants) -> None:
    client = sim_tenants.login(sim_tenants.client_a)
    response = client.post("/my/tokens/create/", {"name": "laptop", "days": "7"}, **HTMX)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = TenantToken.objects.get(tenant=sim_tenants.tenant_a)
    body = response.content.decode()
    secret = body.split('id="new-token-secret">', 1)[1].split("<", 1)[0]
    assert len(secret) == 36  # a PBS token secret (UUID)
    with _token_client(sim_tenants, token.tokenid, secret) as pbs:  # it is the real secret
        pbs.snapshot_list("store1", ns=sim_tenants.tenant_a.namespace)

    # Nothing kept: not on the row, not in the audit trail, not on any later page.
    token.refresh_from_db()
    assert token.secret_enc == ""
    assert token.revealed_at is not None
    assert secret not in json.dumps(list(TenantToken.objects.values()), default=str)
    assert secret not in json.dumps(list(AuditEvent.objects.values()), default=str)
    for url in ("/my/tokens/", "/my/", "/api/v1/my/restore-tokens/"):
        assert secret not in client.get(url).content.decode()


@pytest.mark.django_db
def test_without_javascript_the_full_page_shows_the_secret_once(sim_tenants) -> None:
    client = sim_tenants.login(sim_tenants.client_a)
    response = client.post("/my/tokens/create/", {"name": "nojs", "days": "3"})
    assert response.status_code == 201
    assert b'id="new-token-secret"' in response.content
    assert b"<html" in response.content
    assert b'id="new-token-secret"' not in client.get("/my/tokens/").content


@pytest.mark.django_db
def test_a_token_without_read_rights_is_deleted_again(sim_tenants, pbs_sim) -> None:
    """If the tenant's user lacks DatastoreReader, the token cannot read: refuse it."""
    a = sim_tenants.tenant_a
    with client_for_host(sim_tenants.host) as pbs:
        pbs.acl_update(path=a.acl_path, role="DatastoreReader", auth_id=a.pbs_userid, delete=True)
    with pytest.raises(RestoreTokenError, match="not as expected"):
        _create(sim_tenants)
    with client_for_host(sim_tenants.host) as pbs:
        assert pbs.token_list(a.pbs_userid) == []
    assert not TenantToken.objects.exists()
    assert not AclGrant.objects.exists()
    rejected = AuditEvent.objects.get(action="token.rejected")
    assert "missing Datastore.Read" in " ".join(rejected.detail["problems"])


def test_privilege_check_refuses_write_rights_outside_paths_and_non_propagating_read() -> None:
    path = "/datastore/store1/clients/acme"
    good = {path: {"Datastore.Read": True, "Datastore.Audit": True, "Datastore.Verify": True}}
    assert restore_privilege_problems(good, acl_path=path) == []
    assert restore_privilege_problems(
        {path: {**good[path], "Datastore.Backup": True}}, acl_path=path
    ) == [f"has more than read rights on {path}: Datastore.Backup"]
    assert restore_privilege_problems(
        {**good, "/datastore/store1/clients/other": {"Datastore.Read": True}}, acl_path=path
    )
    assert restore_privilege_problems(
        {**good, "/datastore/store1/clients/acme2": {"Datastore.Audit": True}}, acl_path=path
    ), "a sibling with the same prefix is outside the namespace"
    assert restore_privilege_problems(
        {**good, f"{path}/sub": {"Datastore.Read": True}}, acl_path=path
    ) == []
    assert restore_privilege_problems(
        {path: {"Datastore.Read": False, "Datastore.Audit": True}}, acl_path=path
    ) == [f"Datastore.Read on {path} does not reach the sub-namespaces"]
    assert restore_privilege_problems({}, acl_path=path) == [
        f"missing Datastore.Audit on {path}", f"missing Datastore.Read on {path}"
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "days", "message"),
    [
        ("Bad Name", 7, "lower-case"),
        ("x" * 60, 7, "at most"),
        ("ok-name", 0, "between 1 and"),
        ("ok-name", 91, "between 1 and 90"),
    ],
)
def test_bad_names_and_lifetimes_are_refused_before_pbs_is_asked(
    sim_tenants, name: str, days: int, message: str
) -> None:
    before = len(sim_tenants.sim.request_log)
    with pytest.raises(RestoreTokenError, match=message):
        _create(sim_tenants, name=name, days=days)
    assert len(sim_tenants.sim.request_log) == before


@pytest.mark.django_db
def test_the_lifetime_is_capped_by_the_site_maximum(sim_tenants, settings) -> None:
    settings.PORTAL_MAX_RESTORE_TOKEN_DAYS = 5
    with pytest.raises(RestoreTokenError, match="between 1 and 5"):
        _create(sim_tenants, days=6)
    assert _create(sim_tenants, days=5).token.pk


@pytest.mark.django_db
def test_a_live_name_cannot_be_reused_but_a_revoked_one_can(sim_tenants) -> None:
    first = _create(sim_tenants)
    with pytest.raises(RestoreTokenError, match="exists"):
        _create(sim_tenants)
    services.restore_token_revoke(token=first.token, actor=sim_tenants.client_a)
    second = _create(sim_tenants)
    assert second.token.pk != first.token.pk


@pytest.mark.django_db
def test_revoke_deletes_the_token_on_pbs_and_keeps_the_row(sim_tenants) -> None:
    created = _create(sim_tenants)
    client = sim_tenants.login(sim_tenants.client_a)
    response = client.post(f"/my/tokens/{created.token.pk}/revoke/", **HTMX)
    assert response.status_code == 200
    assert b"revoked" in response.content
    token = TenantToken.objects.get(pk=created.token.pk)
    assert token.revoked_at is not None
    assert token.revoked_by == sim_tenants.client_a
    assert not token.enabled
    assert not AclGrant.objects.filter(auth_id=token.tokenid).exists()
    with client_for_host(sim_tenants.host) as pbs:
        assert pbs.token_list("tenant-a@pbs") == []
    with (
        pytest.raises(AuthenticationFailed),
        _token_client(sim_tenants, token.tokenid, created.secret) as pbs,
    ):
        pbs.snapshot_list("store1", ns=sim_tenants.tenant_a.namespace)
    assert AuditEvent.objects.filter(action="token.revoked", target=token.tokenid).exists()
    # Revoking again changes nothing.
    assert services.restore_token_revoke(token=token, actor=sim_tenants.client_a) is False


@pytest.mark.django_db
def test_another_tenants_token_cannot_be_revoked(sim_tenants) -> None:
    created = _create(sim_tenants)
    intruder = sim_tenants.login(sim_tenants.client_b)
    assert intruder.post(f"/my/tokens/{created.token.pk}/revoke/").status_code == 404
    assert intruder.post(f"/api/v1/my/restore-tokens/{created.token.pk}/revoke/").status_code == 404
    created.token.refresh_from_db()
    assert created.token.revoked_at is None


@pytest.mark.django_db
def test_pbs_down_during_revoke_leaves_the_token_live_and_says_so(sim_tenants) -> None:
    from pbssim import FaultConfig

    created = _create(sim_tenants)
    sim_tenants.sim.faults = FaultConfig(error_rate=1.0, seed=1)
    client = sim_tenants.login(sim_tenants.client_a)
    response = client.post(f"/my/tokens/{created.token.pk}/revoke/", follow=True)
    assert b"still valid" in response.content
    created.token.refresh_from_db()
    assert created.token.revoked_at is None


@pytest.mark.django_db
def test_the_api_creates_shows_the_secret_once_and_lists_without_it(sim_tenants) -> None:
    client = sim_tenants.login(sim_tenants.client_a)
    response = client.post(
        "/api/v1/my/restore-tokens/create/", {"name": "api-made", "days": 3},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tokenid"] == "tenant-a@pbs!restore-api-made"
    assert len(body["secret"]) == 36
    assert "no-store" in response["Cache-Control"]
    listed = client.get("/api/v1/my/restore-tokens/").json()
    assert [t["name"] for t in listed] == ["api-made"]
    assert listed[0]["state"] == "active"
    assert body["secret"] not in json.dumps(listed)
    revoked = client.post(f"/api/v1/my/restore-tokens/{body['id']}/revoke/")
    assert revoked.json()["state"] == "revoked"


@pytest.mark.django_db
def test_the_api_needs_csrf_for_session_users(sim_tenants) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(sim_tenants.client_a)
    response = client.post(
        "/api/v1/my/restore-tokens/create/", {"name": "x1", "days": 3}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not TenantToken.objects.exists()


@pytest.mark.django_db
def test_the_token_list_page_has_constant_queries(sim_tenants, django_assert_max_num_queries) -> None:
    client = sim_tenants.login(sim_tenants.client_a)
    _create(sim_tenants, name="one")
    cache.clear()
    with django_assert_max_num_queries(20) as first:
        client.get("/my/tokens/")
    for n in range(4):
        created = _create(sim_tenants, name=f"more-{n}")
        if n % 2:
            services.restore_token_revoke(token=created.token, actor=sim_tenants.client_a)
    with django_assert_max_num_queries(len(first.captured_queries)):
        response = client.get("/my/tokens/")
    assert response.content.count(b"tenant-a@pbs!restore-") == 5


@pytest.mark.django_db
def test_the_whole_flow_works_over_real_https_with_the_pinned_fingerprint(pbs_host, pbs_https) -> None:
    """Same service, real TLS: the simulator served over HTTPS, the host row pinned."""
    from tenants.models import Datastore
    from tests.factories import make_tenant, make_user
    from tests.selfservice.conftest import provision_on_pbs

    host = pbs_host(pbs_https)
    tenant = make_tenant(slug="tls-tenant", datastore=Datastore.objects.get(host=host, name="store1"))
    provision_on_pbs(host, tenant)
    user = make_user(role="client", tenant=tenant, password=None)
    created = services.restore_token_create(tenant=tenant, name="over-tls", days=2, actor=user)
    assert {"Datastore.Read", "Datastore.Audit"} <= set(created.token.effective_privileges[tenant.acl_path])
    with PbsClient(base_url=pbs_https.url, token_id=created.token.tokenid, token_secret=created.secret,
                   fingerprint=pbs_https.fingerprint) as pbs:
        assert pbs.snapshot_list("store1", ns=tenant.namespace) == []
    assert services.restore_token_revoke(token=created.token, actor=user) is True


@pytest.mark.django_db
def test_no_log_line_carries_the_secret(sim_tenants, caplog) -> None:
    import logging

    with caplog.at_level(logging.DEBUG):
        created = _create(sim_tenants)
        services.restore_token_revoke(token=created.token, actor=sim_tenants.client_a)
    assert "restore-laptop" in caplog.text  # the calls were logged...
    assert created.secret not in caplog.text  # ...without the secret
    assert created.secret not in repr(created)
