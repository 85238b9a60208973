"""Lifecycle against the in-process simulator: privileges, suspend/resume, rotation,
retention, restore tokens, reveal-once, offboarding, drift and repair."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from core.crypto import decrypt_secret
from pbsclient.errors import AuthenticationFailed, PbsHttpError
from tenants import services
from tenants.models import AclGrant, OnboardingRun, Tenant, TenantToken
from tenants.onboarding import RunResult, run_execute
from tenants.pbs import client_for_host
from tests.tenants.conftest import pbs_state, token_client

pytestmark = pytest.mark.django_db

NS_PATH = "/datastore/store1/clients/acme"
DATASTORE_PRIVS = {"Datastore.Audit", "Datastore.Verify", "Datastore.Read", "Datastore.Backup",
                   "Datastore.Prune", "Datastore.Modify", "Datastore.Allocate"}  # fmt: skip


def _backup_secret(tenant: Tenant) -> tuple[str, str]:
    token = TenantToken.objects.get(tenant=tenant, purpose="backup", revoked_at__isnull=True)
    return token.tokenid, decrypt_secret(token.secret_enc)


def test_backup_and_restore_tokens_reach_exactly_their_namespace(pbs_sim: Any, sim_host: Any, onboard: Any) -> None:
    acme = onboard("acme")
    onboard("other")
    pbs_sim.seed_snapshot(store="store1", ns="clients/acme", backup_type="vm", backup_id="100",
                          backup_time=1_700_000_000, size=10, owner="acme@pbs!backup")  # fmt: skip
    pbs_sim.seed_snapshot(store="store1", ns="clients/other", backup_type="vm", backup_id="200",
                          backup_time=1_700_000_000, size=10, owner="other@pbs!backup")  # fmt: skip
    restore = services.restore_token_create(tenant=acme, name="laptop", days=30, actor=None, keep_secret=True).token
    restore_secret = services.token_reveal(token_id=restore.pk)

    backup_id = "acme@pbs!backup"
    assert set(pbs_sim.lookup_privs(backup_id, NS_PATH)) == {"Datastore.Backup"}
    assert set(pbs_sim.lookup_privs(backup_id, NS_PATH + "/sub")) == {"Datastore.Backup"}
    assert set(pbs_sim.lookup_privs(restore.tokenid, NS_PATH)) == {"Datastore.Audit", "Datastore.Verify",
                                                                  "Datastore.Read"}  # fmt: skip
    for outside in ("/", "/datastore", "/datastore/store1", "/datastore/store1/clients",
                    "/datastore/store1/clients/other", "/datastore/store2", "/access", "/system"):  # fmt: skip
        for auth_id in ("acme@pbs", backup_id, restore.tokenid):
            assert not set(pbs_sim.lookup_privs(auth_id, outside)) & (DATASTORE_PRIVS | {"Sys.Audit"}), (
                auth_id,
                outside,
            )

    with token_client(pbs_sim, sim_host, restore.tokenid, restore_secret) as client:
        assert [s.backup_id for s in client.snapshot_list("store1", ns="clients/acme")] == ["100"]
        with pytest.raises(PbsHttpError):
            client.snapshot_list("store1", ns="clients/other")
        with pytest.raises(PbsHttpError):
            client.namespace_create("store1", "sneaky", parent="clients/acme")
    tokenid, secret = _backup_secret(acme)
    with token_client(pbs_sim, sim_host, tokenid, secret) as client:
        with pytest.raises(PbsHttpError):
            client.snapshot_list("store1", ns="clients/other")
        with pytest.raises(PbsHttpError):
            client.namespace_create("store1", "sneaky", parent="clients/acme")


def test_suspend_stops_backups_keeps_restores_and_resume_gives_them_back(
    pbs_sim: Any, sim_host: Any, onboard: Any, staff_user: Any
) -> None:
    tenant = onboard("acme")
    restore = services.restore_token_create(tenant=tenant, name="dr", days=10, actor=None, keep_secret=True).token

    services.tenant_suspend(tenant_id=tenant.pk, actor=staff_user, reason="unpaid invoice")

    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED
    assert set(pbs_sim.lookup_privs("acme@pbs", NS_PATH)) == {"Datastore.Audit", "Datastore.Verify", "Datastore.Read"}
    assert pbs_sim.lookup_privs("acme@pbs!backup", NS_PATH) == []
    assert "Datastore.Read" in pbs_sim.lookup_privs(restore.tokenid, NS_PATH)
    tokens = {t["tokenid"]: t for t in pbs_state(pbs_sim)["tokens"]}
    assert tokens["acme@pbs!backup"].get("enable") is False
    assert not AclGrant.objects.filter(tenant=tenant, role__in=["DatastorePowerUser", "DatastoreBackup"]).exists()
    event = AuditEvent.objects.get(tenant=tenant, action="tenant.suspend")
    assert event.actor == staff_user
    assert event.detail["reason"] == "unpaid invoice"

    services.tenant_resume(tenant_id=tenant.pk, actor=staff_user)

    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    assert set(pbs_sim.lookup_privs("acme@pbs!backup", NS_PATH)) == {"Datastore.Backup"}
    tokens = {t["tokenid"]: t for t in pbs_state(pbs_sim)["tokens"]}
    assert tokens["acme@pbs!backup"].get("enable", True) is not False


def test_a_staff_made_restore_token_has_its_checked_rights_recorded(pbs_sim: Any, onboard: Any) -> None:
    tenant = onboard("acme")

    restore = services.restore_token_create(tenant=tenant, name="dr", days=10, actor=None, keep_secret=True).token

    assert set(restore.effective_privileges) == {NS_PATH}
    assert set(restore.effective_privileges[NS_PATH]) == {"Datastore.Audit", "Datastore.Read", "Datastore.Verify"}
    assert restore.privileges_checked_at is not None


def test_a_restore_token_with_rights_outside_the_namespace_is_deleted_again(pbs_sim: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    tokenid = "acme@pbs!restore-dr"
    # Stale grants made by hand on PBS would let the new token read another datastore.
    pbs_sim.state.acl.insert("/datastore/store2", "acme@pbs", "DatastoreReader", True)
    pbs_sim.state.acl.insert("/datastore/store2", tokenid, "DatastoreReader", True)

    with pytest.raises(services.RestoreTokenError, match="rights on the backup server were not as expected"):
        services.restore_token_create(tenant=tenant, name="dr", days=10, actor=None, keep_secret=True)

    assert tokenid not in {t["tokenid"] for t in pbs_state(pbs_sim)["tokens"]}
    assert not TenantToken.objects.filter(tokenid=tokenid).exists(), "a refused token is never recorded"
    rejected = AuditEvent.objects.get(tenant=tenant, action="token.rejected")
    assert any("outside the namespace" in problem for problem in rejected.detail["problems"])


def test_writes_block_and_suspension_do_not_undo_each_other(pbs_sim: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    services.tenant_writes_set(tenant_id=tenant.pk, allowed=False, reason="quota: over the hard limit")
    services.tenant_suspend(tenant_id=tenant.pk)
    services.tenant_resume(tenant_id=tenant.pk)

    tenant.refresh_from_db()
    assert tenant.writes_blocked
    assert pbs_sim.lookup_privs("acme@pbs!backup", NS_PATH) == []

    services.tenant_writes_set(tenant_id=tenant.pk, allowed=True)
    assert set(pbs_sim.lookup_privs("acme@pbs!backup", NS_PATH)) == {"Datastore.Backup"}


def test_blocking_writes_again_re_applies_them_on_pbs(pbs_sim: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    services.tenant_writes_set(tenant_id=tenant.pk, allowed=False, reason="quota")
    # Someone (or a half-finished earlier call) gave the write role back on PBS.
    pbs_sim.state.acl.insert(NS_PATH, "acme@pbs", "DatastorePowerUser", True)
    assert "Datastore.Backup" in pbs_sim.lookup_privs("acme@pbs", NS_PATH)

    services.tenant_writes_set(tenant_id=tenant.pk, allowed=False, reason="quota")

    assert "Datastore.Backup" not in pbs_sim.lookup_privs("acme@pbs", NS_PATH)
    assert "Datastore.Read" in pbs_sim.lookup_privs("acme@pbs", NS_PATH)  # restores keep working
    assert AuditEvent.objects.filter(tenant=tenant, action="tenant.writes.block").count() == 1


@pytest.mark.parametrize("regenerate", [True, False])
def test_rotation_gives_a_new_working_secret_and_kills_the_old_one(
    pbs_sim: Any, sim_host: Any, onboard: Any, regenerate: bool
) -> None:
    tenant = onboard("acme")
    sim_host.supports_regenerate = regenerate
    sim_host.save(update_fields=["supports_regenerate"])
    tokenid, old_secret = _backup_secret(tenant)
    old_row = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)

    new_row = services.tenant_token_rotate(tenant_id=tenant.pk)

    old_row.refresh_from_db()
    assert old_row.revoked_at is not None
    assert old_row.secret_enc == ""
    assert new_row.pk != old_row.pk
    new_secret = services.token_reveal(token_id=new_row.pk)
    assert new_secret != old_secret
    with token_client(pbs_sim, sim_host, tokenid, new_secret) as client:
        assert client.permissions_get()[NS_PATH] == {"Datastore.Backup": True}
    with token_client(pbs_sim, sim_host, tokenid, old_secret) as client, pytest.raises(AuthenticationFailed):
        client.permissions_get()
    method = AuditEvent.objects.get(tenant=tenant, action="token.rotate").detail["method"]
    assert method == ("regenerated" if regenerate else "recreated")


def test_reveal_once_gives_the_secret_a_single_time_and_wipes_it(onboard: Any, staff_user: Any) -> None:
    tenant = onboard("acme")
    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    expected = decrypt_secret(token.secret_enc)

    assert services.token_reveal(token_id=token.pk, actor=staff_user) == expected

    token.refresh_from_db()
    assert token.secret_enc == ""
    assert token.revealed_by == staff_user
    assert token.revealed_at is not None
    with pytest.raises(services.TokenAlreadyRevealed, match=staff_user.username):
        services.token_reveal(token_id=token.pk, actor=staff_user)
    event = AuditEvent.objects.get(action="token.revealed")
    assert expected not in str(event.detail)
    assert expected not in event.target


def test_a_client_of_another_tenant_cannot_reveal(onboard: Any, client_b: Any) -> None:
    tenant = onboard("acme")
    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    with pytest.raises(ValidationError):
        services.token_reveal(token_id=token.pk, actor=client_b)
    token.refresh_from_db()
    assert token.secret_enc


def test_retention_change_updates_the_prune_job_and_clears_removed_keeps(pbs_sim: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    retention = services.Retention(keep_last=3, keep_daily=7, keep_weekly=None, keep_monthly=None, schedule="hourly")

    services.tenant_retention_update(tenant_id=tenant.pk, retention=retention)

    job = next(j for j in pbs_state(pbs_sim)["prune_jobs"] if j["id"] == "t-acme")
    assert job["keep-last"] == 3
    assert job["keep-daily"] == 7
    assert "keep-weekly" not in job
    assert "keep-monthly" not in job
    assert job["schedule"] == "hourly"
    puts = [r for r in pbs_sim.request_log if r[0] == "PUT" and "/config/prune/" in r[1]]
    assert puts, "retention is changed with PUT, not delete + create"


def test_retention_refuses_an_invalid_calendar_event(onboard: Any) -> None:
    tenant = onboard("acme")
    with pytest.raises(ValidationError) as info:
        services.tenant_retention_update(tenant_id=tenant.pk, retention=services.Retention(schedule="every tuesday"))
    assert "schedule" in info.value.message_dict


@pytest.mark.parametrize("delete_data", [False, True])
def test_offboarding_removes_identities_and_keeps_or_deletes_the_namespace(
    pbs_sim: Any, onboard: Any, delete_data: bool
) -> None:
    tenant = onboard("acme")
    services.restore_token_create(tenant=tenant, name="dr", days=10, actor=None, keep_secret=True)
    pbs_sim.seed_snapshot(store="store1", ns="clients/acme", backup_type="vm", backup_id="100",
                          backup_time=1_700_000_000, size=10, owner="acme@pbs!backup")  # fmt: skip
    # An extra grant on the user elsewhere: PBS would keep it after deleting the user.
    with client_for_host(tenant.host) as client:
        client.acl_update(path="/datastore/store2", role="DatastoreAudit", auth_id="acme@pbs")

    with pytest.raises(ValidationError):
        services.tenant_offboard(tenant_id=tenant.pk, confirm_slug="acme-typo", enqueue=False)
    run, _ = services.tenant_offboard(tenant_id=tenant.pk, confirm_slug="acme", delete_data=delete_data, enqueue=False)
    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED

    state = pbs_state(pbs_sim)
    assert not [u for u in state["users"] if u["userid"] == "acme@pbs"]
    assert not [t for t in state["tokens"] if t["tokenid"].startswith("acme@pbs!")]
    assert not [a for a in state["acl"] if a["ugid"].startswith("acme@pbs")]
    assert not [j for j in state["prune_jobs"] if j["id"] == "t-acme"]
    assert ("clients/acme" in state["namespaces"]["store1"]) is not delete_data
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.OFFBOARDED
    assert not TenantToken.objects.filter(tenant=tenant, revoked_at__isnull=True).exists()
    assert not TenantToken.objects.exclude(secret_enc="").filter(tenant=tenant).exists()
    assert not AclGrant.objects.filter(tenant=tenant).exists()


def test_drift_is_found_and_repaired(pbs_sim: Any, sim_host: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    with client_for_host(sim_host) as client:
        client.acl_update(path=NS_PATH, role="DatastoreBackup", auth_id="acme@pbs!backup", delete=True)
        client.prune_job_delete("t-acme")
        client.user_update("acme@pbs", enable=False)
        client.user_create(userid="ghost@pbs", comment="pbs-portal tenant ghost")
        client.namespace_create("store1", "ghost", parent="clients")

    findings = services.tenant_drift_check(tenant_id=tenant.pk)
    kinds = {f["kind"] for f in findings}
    assert kinds == {"acl_missing", "prune_job_missing", "user_disabled"}
    host_kinds = {(f["kind"], f["object"]) for f in services.pbshost_drift_check(host_id=sim_host.pk)}
    assert ("unknown_user", "ghost@pbs") in host_kinds
    assert ("unknown_namespace", "store1:clients/ghost") in host_kinds

    run, _ = services.tenant_repair(tenant_id=tenant.pk, enqueue=False)
    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED

    assert services.tenant_drift_check(tenant_id=tenant.pk) == []
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    # The repair never deletes what the portal does not know.
    names = [u["userid"] for u in pbs_state(pbs_sim)["users"]]
    assert "ghost@pbs" in names


def test_repair_keeps_a_suspended_tenant_suspended(pbs_sim: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    services.tenant_suspend(tenant_id=tenant.pk)
    with client_for_host(tenant.host) as client:  # someone gives writes back by hand
        client.acl_update(path=NS_PATH, role="DatastoreBackup", auth_id="acme@pbs!backup")
    assert {f["kind"] for f in services.tenant_drift_check(tenant_id=tenant.pk)} == {"acl_extra"}

    run, _ = services.tenant_repair(tenant_id=tenant.pk, enqueue=False)
    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED

    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED
    assert pbs_sim.lookup_privs("acme@pbs!backup", NS_PATH) == []


def test_lifecycle_actions_wait_for_a_live_run(onboard: Any) -> None:
    tenant = onboard("acme")
    services.tenant_repair(tenant_id=tenant.pk, enqueue=False)
    with pytest.raises(ValidationError, match="in progress"):
        services.tenant_suspend(tenant_id=tenant.pk)
    assert OnboardingRun.objects.filter(tenant=tenant, status="queued").count() == 1


def test_health_check_task_records_version_capacity_and_missing_privileges(pbs_sim: Any, sim_host: Any) -> None:
    from tenants.models import PbsHost
    from tenants.tasks import hosts_health_check

    # A weaker automation token: Admin on /access only, nothing on the datastores.
    with client_for_host(sim_host) as client:
        client.user_create(userid="portal@pbs")
        secret = client.token_create("portal@pbs", "automation").value
        for auth_id in ("portal@pbs", "portal@pbs!automation"):
            client.acl_update(path="/access", role="Admin", auth_id=auth_id)
    services.pbshost_update(host_id=sim_host.pk, token_id="portal@pbs!automation", token_secret=secret)

    assert hosts_health_check.delay().get() == 1  # eager in tests: fans out and runs

    host = PbsHost.objects.get(pk=sim_host.pk)
    assert host.reachable is True
    assert host.pbs_version == "4.2.3"
    assert host.supports_regenerate is True
    assert any("Datastore.Modify" in w and "/datastore/store1" in w for w in host.permission_warnings)
    assert not any("/access" in w for w in host.permission_warnings)
    assert AuditEvent.objects.filter(action="host.check", target=host.name).exists()


def test_an_unreachable_host_is_marked_and_not_used_for_placement(sim_host: Any) -> None:
    from tenants.pbs import uninstall_transport
    from tenants.selectors import placement_choose

    uninstall_transport(sim_host.url)  # the .invalid name does not resolve
    host = services.pbshost_check(host_id=sim_host.pk)
    assert host.reachable is False
    assert host.last_error
    assert placement_choose() is None


def test_offboarding_a_tenant_that_never_got_its_user_leaves_a_foreign_user_alone(pbs_sim: Any, sim_host: Any) -> None:
    with client_for_host(sim_host) as client:
        client.user_create(userid="stark@pbs", comment="the MSP's own account")
        client.token_create("stark@pbs", "ops")
        client.acl_update(path="/datastore/store2", role="DatastoreAudit", auth_id="stark@pbs")
    tenant = services.tenant_create(slug="stark", name="Stark", datastore=sim_host.datastores.get(name="store1"))
    run, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    assert run_execute(run_id=run.pk) is RunResult.FAILED  # not taken over

    off, _ = services.tenant_offboard(tenant_id=tenant.pk, confirm_slug="stark", enqueue=False)
    assert run_execute(run_id=off.pk) is RunResult.SUCCEEDED

    state = pbs_state(pbs_sim)
    assert [u["userid"] for u in state["users"] if u["userid"] == "stark@pbs"] == ["stark@pbs"]
    assert [t["tokenid"] for t in state["tokens"] if t["tokenid"].startswith("stark@pbs")] == ["stark@pbs!ops"]
    assert [a["path"] for a in state["acl"] if a["ugid"] == "stark@pbs"] == ["/datastore/store2"]
    assert off.steps.get(name="delete_user").outcome == "skipped"
