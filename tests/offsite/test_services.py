"""Offsite services against two simulated PBS hosts: remotes, jobs, runs, staleness, cleanup."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ValidationError

from alerts.models import Alert
from audit.models import AuditEvent
from core.crypto import decrypt_secret
from offsite import selectors, services
from offsite.models import OffsitePolicy, Remote, SourceGrant, SyncJobRecord, TenantOffsite
from pbsclient.errors import NotFound
from tenants.pbs import client_for_host
from tests.offsite.conftest import DAY, Hosts

PULL_USER = "offsite-pull-pbs2@pbs"
PULL_TOKEN = f"{PULL_USER}!pull"


def _datastore_policy(hosts: Hosts, **options) -> OffsitePolicy:
    return services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store, **options
    )


def _acl(host, path: str) -> set[tuple[str, str]]:
    with client_for_host(host) as client:
        return {(e.ugid, e.roleid) for e in client.acl_list(path=path, exact=True)}


# --- remotes and datastore jobs ---------------------------------------------------------------


def test_a_datastore_policy_makes_a_read_only_pull_token_remote_and_job(hosts):
    policy = _datastore_policy(hosts, schedule="daily", rate_in="10MiB", group_filters=["include:type:vm"])

    remote = policy.remote
    assert (remote.kind, remote.state, remote.auth_id) == (Remote.Kind.MANAGED, "ready", PULL_TOKEN)
    # The pull credential is its own token, never the automation token, and encrypted at rest.
    secret = decrypt_secret(remote.secret_enc)
    assert secret
    assert secret not in remote.secret_enc
    assert remote.auth_id != hosts.src.token_id
    # Least privilege on the source: DatastoreReader on the replicated datastore, user and token.
    assert _acl(hosts.src, "/datastore/store1") >= {(PULL_USER, "DatastoreReader"), (PULL_TOKEN, "DatastoreReader")}
    with client_for_host(hosts.src) as src:
        privs = src.permissions_get(auth_id=PULL_TOKEN, path="/datastore/store1")["/datastore/store1"]
        assert set(privs) == {"Datastore.Audit", "Datastore.Read", "Datastore.Verify"}
        assert src.permissions_get(auth_id=PULL_TOKEN, path="/access").get("/access", {}) == {}
    with client_for_host(hosts.dst) as dst:
        pbs_remote = dst.remote_get("portal-pbs1")
        assert (pbs_remote.host, pbs_remote.port, pbs_remote.auth_id) == ("pbs1.sim.invalid", 8007, PULL_TOKEN)
        assert pbs_remote.fingerprint == hosts.src.fingerprint
        job = dst.sync_job_get(f"offsite-{policy.pk}")
    assert (job.store, job.remote, job.remote_store, job.schedule) == ("store2", "portal-pbs1", "store1", "daily")
    assert job.group_filter == ("type:vm",)
    assert job.extra.get("rate-in") == "10 MiB"
    record = SyncJobRecord.objects.get(policy=policy)
    assert (record.state, record.membership) == ("present", None)


def test_applying_a_policy_again_creates_nothing_twice(hosts):
    policy = _datastore_policy(hosts)
    before_src, before_dst = len(hosts.writes(hosts.src_sim)), len(hosts.writes(hosts.dst_sim))

    services.policy_apply(policy=policy)
    services.policy_apply(policy=policy)

    assert hosts.writes(hosts.src_sim)[before_src:] == []
    assert hosts.writes(hosts.dst_sim)[before_dst:] == []
    assert Remote.objects.count() == 1
    assert SyncJobRecord.objects.count() == 1
    with client_for_host(hosts.dst) as dst:
        assert [r.name for r in dst.remote_list()] == ["portal-pbs1"]
        assert [j.id for j in dst.sync_job_list()] == [f"offsite-{policy.pk}"]


def test_a_changed_policy_is_converged_with_put(hosts):
    policy = _datastore_policy(hosts, schedule="daily", transfer_last=3)
    services.policy_update(policy=policy, schedule="hourly", transfer_last=None, remove_vanished=True)
    with client_for_host(hosts.dst) as dst:
        job = dst.sync_job_get(f"offsite-{policy.pk}")
    assert (job.schedule, job.transfer_last, job.remove_vanished) == ("hourly", None, True)
    assert ("PUT", f"/api2/json/config/sync/offsite-{policy.pk}") in hosts.writes(hosts.dst_sim)


def test_a_remote_deleted_on_pbs_is_recreated_with_the_kept_secret(hosts):
    policy = _datastore_policy(hosts)
    with client_for_host(hosts.dst) as dst:
        dst.sync_job_delete(f"offsite-{policy.pk}")
        dst.remote_delete("portal-pbs1")
    services.policy_apply(policy=policy)
    record = SyncJobRecord.objects.get(policy=policy)
    services.sync_job_run(record=record)
    services.sync_status_refresh(host=hosts.dst)
    record.refresh_from_db()
    assert record.last_run_state == "OK"


def test_validation_uses_pbs_rules_before_any_call(hosts):
    calls = len(hosts.dst_sim.request_log)
    with pytest.raises(ValidationError) as info:
        _datastore_policy(hosts, schedule="every day", group_filters=["type:lxc"], rate_in="fast")
    errors = info.value.message_dict
    assert "calendar event 'every day'" in errors["schedule"][0]
    assert "unable to parse backup type 'lxc'" in errors["group_filters"][0]
    assert "rate_in" in errors
    assert len(hosts.dst_sim.request_log) == calls
    with pytest.raises(ValidationError, match="another PBS host"):
        services.policy_create(
            source_datastore=hosts.src_store,
            target_datastore=hosts.src.datastores.get(name="store2"),
        )


# --- privilege pre-check ------------------------------------------------------------------------


def _limited_automation_token(hosts: Hosts, extra: tuple[tuple[str, str], ...] = ()) -> None:
    """pbs2's automation token: Backup + Audit on store2 only (no Prune, Modify, Remote.Read),
    plus ``extra`` (path, role) grants."""
    with client_for_host(hosts.dst) as dst:
        dst.user_create(userid="portal@pbs")
        secret = dst.token_create("portal@pbs", "auto").value
        for auth_id in ("portal@pbs", "portal@pbs!auto"):
            for role in ("DatastoreBackup", "DatastoreAudit"):
                dst.acl_update(path="/datastore/store2", role=role, auth_id=auth_id)
            dst.acl_update(path="/remote", role="RemoteAudit", auth_id=auth_id)
            dst.acl_update(path="/remote", role="RemoteAdmin", auth_id=auth_id)
            dst.acl_update(path="/remote/portal-pbs1", role="RemoteAudit", auth_id=auth_id)
            for path, role in extra:
                dst.acl_update(path=path, role=role, auth_id=auth_id)
    from core.crypto import encrypt_secret

    hosts.dst.token_id = "portal@pbs!auto"
    hosts.dst.token_secret_enc = encrypt_secret(secret)
    hosts.dst.save()


def test_missing_privileges_are_named_before_the_job_is_created(hosts):
    _limited_automation_token(hosts)
    with pytest.raises(services.PrivilegeMissing) as info:
        _datastore_policy(hosts, remove_vanished=True)
    missing = {(m.privilege, m.path) for m in info.value.missing}
    assert missing == {
        ("Datastore.Prune", "/datastore/store2"),
        ("Datastore.Modify", "/datastore/store2"),
        ("Remote.Read", "/remote/portal-pbs1/store1"),
    }
    assert info.value.policy_id == OffsitePolicy.objects.get().pk
    assert "is saved: fix this, then apply it again" in info.value.hint()
    message = str(info.value)
    assert "portal@pbs!auto lacks Datastore.Prune on /datastore/store2 on host pbs2 (remove-vanished is on)" in message
    assert "Remote.Read on /remote/portal-pbs1/store1" in message
    record = SyncJobRecord.objects.get()
    assert record.state == "failed"
    assert "Datastore.Prune" in record.last_error
    with client_for_host(hosts.dst) as dst:
        assert dst.sync_job_list() == []


def test_an_owner_equal_to_the_caller_needs_no_modify(hosts):
    _limited_automation_token(hosts, extra=(("/remote/portal-pbs1/store1", "RemoteSyncOperator"),))
    policy = _datastore_policy(hosts, owner="portal@pbs!auto")
    assert SyncJobRecord.objects.get(policy=policy).state == "present"


def test_a_source_grant_removed_on_pbs_is_reported_for_the_pull_token(hosts):
    policy = _datastore_policy(hosts)
    with client_for_host(hosts.src) as src:
        for auth_id in (PULL_USER, PULL_TOKEN):
            src.acl_update(path="/datastore/store1", role="DatastoreReader", auth_id=auth_id, delete=True)
    record = SyncJobRecord.objects.get(policy=policy)
    expected = f"{PULL_TOKEN} lacks Datastore.Read on /datastore/store1 on host pbs1"
    with pytest.raises(services.PrivilegeMissing, match=expected):
        services.sync_job_ensure(record=record)


# --- tenants -------------------------------------------------------------------------------------


def test_tenant_scoped_jobs_come_with_onboarding_and_go_with_offboarding(hosts):
    acme = hosts.tenant("acme")
    hosts.seed(acme, "vm", "100", [int(time.time()) - DAY])
    policy = _datastore_policy(hosts, scope=OffsitePolicy.Scope.TENANTS, auto_include_tenants=True, max_depth=2)

    memberships = services.tenant_offsite_include(acme)
    services.tenant_offsite_include(acme)  # onboarding re-run: nothing new

    assert [m.policy_id for m in memberships] == [policy.pk]
    record = SyncJobRecord.objects.get(membership__tenant=acme)
    assert record.job_id == f"offsite-{policy.pk}-acme"
    with client_for_host(hosts.dst) as dst:
        job = dst.sync_job_get(record.job_id)
        assert [j.id for j in dst.sync_job_list()] == [record.job_id]
    assert (job.ns, job.remote_ns, job.max_depth) == ("clients/acme", "clients/acme", 2)
    # The pull token reads only the tenant's namespace, not the datastore.
    assert (PULL_TOKEN, "DatastoreReader") in _acl(hosts.src, "/datastore/store1/clients/acme")
    assert (PULL_TOKEN, "DatastoreReader") not in _acl(hosts.src, "/datastore/store1")

    services.sync_job_run(record=record)
    services.offsite_status_refresh(host=hosts.dst)
    record.refresh_from_db()
    assert record.last_run_state == "OK"
    with client_for_host(hosts.dst) as dst:
        assert len(dst.snapshot_list("store2", ns="clients/acme")) == 1

    removed = services.tenant_offsite_remove(acme)

    assert removed == 1
    assert services.tenant_offsite_remove(acme) == 0  # safe to re-run
    with client_for_host(hosts.dst) as dst:
        with pytest.raises(NotFound):
            dst.sync_job_get(record.job_id)
        assert dst.remote_get("portal-pbs1")  # the remote stays for other tenants
    assert (PULL_TOKEN, "DatastoreReader") not in _acl(hosts.src, "/datastore/store1/clients/acme")
    assert not TenantOffsite.objects.filter(tenant=acme).exists()
    assert not SourceGrant.objects.filter(tenant=acme).exists()
    assert AuditEvent.objects.filter(action="offsite.tenant_remove", tenant=acme).count() == 1


def test_offsite_is_an_option_when_the_policy_does_not_auto_include(hosts):
    acme, beta = hosts.tenant("acme"), hosts.tenant("beta")
    policy = _datastore_policy(hosts, scope=OffsitePolicy.Scope.TENANTS)
    assert services.tenant_offsite_include(acme) == []
    services.tenant_offsite_enable(tenant=beta, policy=policy)
    assert list(SyncJobRecord.objects.values_list("job_id", flat=True)) == [f"offsite-{policy.pk}-beta"]
    assert services.tenant_offsite_disable(tenant=beta, policy=policy) is True
    assert SyncJobRecord.objects.count() == 0


def test_a_datastore_policy_covers_new_tenants_without_a_job_of_their_own(hosts):
    policy = _datastore_policy(hosts)
    acme = hosts.tenant("acme")
    services.tenant_offsite_include(acme)
    assert TenantOffsite.objects.filter(tenant=acme, policy=policy).exists()
    assert SyncJobRecord.objects.count() == 1
    with pytest.raises(ValidationError):
        services.tenant_offsite_disable(tenant=acme, policy=policy)


# --- runs, staleness, usage --------------------------------------------------------------------------


def test_staleness_flags_a_copy_that_missed_old_snapshots_and_clears_after_a_run(hosts):
    acme = hosts.tenant("acme")
    now = int(time.time())
    hosts.seed(acme, "vm", "100", [now - 5 * DAY, now - 3 * DAY], size=700)
    hosts.seed(acme, "vm", "100", [now - 600], size=300)  # in flight: not "due" yet
    policy = _datastore_policy(hosts, stale_after_hours=48)
    membership = TenantOffsite.objects.get(tenant=acme, policy=policy)

    services.offsite_status_refresh(host=hosts.dst)
    membership.refresh_from_db()
    assert membership.stale
    assert "no offsite copy yet" in membership.stale_reason
    assert selectors.stale_tenant_ids([acme.pk]) == {acme.pk}
    assert selectors.host_offsite_summary(hosts.dst)["stale_tenants"] == 1

    alert = Alert.objects.get(tenant=acme, kind="offsite_stale")
    assert (alert.key, alert.status) == (f"policy-{policy.pk}", "open")

    services.sync_job_run(record=SyncJobRecord.objects.get(policy=policy))
    services.offsite_status_refresh(host=hosts.dst)
    membership.refresh_from_db()
    assert not membership.stale
    assert membership.lag_seconds == 0
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert selectors.offsite_usage_bytes(acme) == 700 + 700 + 300  # logical: sum of copied sizes
    assert membership.target_snapshot_count == 3


def test_a_copy_behind_by_more_than_the_threshold_is_stale(hosts):
    acme = hosts.tenant("acme")
    now = int(time.time())
    hosts.seed(acme, "vm", "100", [now - 10 * DAY])
    policy = _datastore_policy(hosts, stale_after_hours=24)
    services.sync_job_run(record=SyncJobRecord.objects.get(policy=policy))
    hosts.seed(acme, "vm", "100", [now - 2 * DAY])  # arrived on the source, never copied
    services.offsite_status_refresh(host=hosts.dst)
    membership = TenantOffsite.objects.get(tenant=acme)
    assert membership.stale
    assert membership.lag_seconds == 8 * DAY
    assert "offsite copy ends" in membership.stale_reason


def test_filtered_out_groups_do_not_count_as_lag(hosts):
    acme = hosts.tenant("acme")
    now = int(time.time())
    hosts.seed(acme, "vm", "100", [now - 5 * DAY])
    hosts.seed(acme, "ct", "200", [now - 3 * DAY])
    policy = _datastore_policy(hosts, group_filters=["type:vm"], stale_after_hours=24)
    services.sync_job_run(record=SyncJobRecord.objects.get(policy=policy))
    services.offsite_status_refresh(host=hosts.dst)
    assert not TenantOffsite.objects.get(tenant=acme).stale


def test_status_refresh_records_last_run_and_next_run(hosts):
    policy = _datastore_policy(hosts, schedule="hourly")
    record = SyncJobRecord.objects.get(policy=policy)
    upid = services.sync_job_run(record=record)
    services.sync_status_refresh(host=hosts.dst)
    record.refresh_from_db()
    assert record.last_run_upid == upid
    assert record.last_run_state == "OK"
    assert record.last_run_at is not None
    assert record.next_run_at is not None
    assert record.next_run_at.minute == 0


# --- drift -------------------------------------------------------------------------------------------


def test_drift_reports_missing_changed_and_unknown_objects(hosts):
    policy = _datastore_policy(hosts)
    assert services.offsite_drift(hosts.dst) == []
    assert services.offsite_drift(hosts.src) == []
    from pbsclient.models import SyncJob

    with client_for_host(hosts.dst) as dst:
        dst.sync_job_update(f"offsite-{policy.pk}", schedule="weekly")
        dst.sync_job_create(SyncJob(id="offsite-999", store="store2", remote="portal-pbs1", remote_store="store1"))
        dst.remote_update("portal-pbs1", port=9999)
    with client_for_host(hosts.src) as src:
        src.token_delete(PULL_USER, "pull")
    drift = {(d.kind, d.name, d.problem) for d in services.offsite_drift(hosts.dst)}
    assert drift == {
        ("remote", "portal-pbs1", "differs"),
        ("sync-job", f"offsite-{policy.pk}", "differs"),
        ("sync-job", "offsite-999", "unexpected"),
    }
    assert [(d.kind, d.problem) for d in services.offsite_drift(hosts.src)] == [("pull-token", "missing")]


# --- audit and secrets -------------------------------------------------------------------------------


def test_no_secret_reaches_audit_rows_or_reprs(hosts):
    policy = _datastore_policy(hosts)
    secret = decrypt_secret(policy.remote.secret_enc)
    for event in AuditEvent.objects.all():
        assert secret not in str(event.detail)
        assert secret not in event.target
    assert secret not in repr(policy.remote)
    assert AuditEvent.objects.filter(action="offsite.pull_token_issue").count() == 1


# --- over real HTTPS ---------------------------------------------------------------------------------


def test_over_https_the_offsite_host_pulls_with_the_pinned_fingerprint(https_hosts):
    hosts = https_hosts
    acme = hosts.tenant("acme")
    now = int(time.time())
    hosts.seed(acme, "vm", "100", [now - 3 * DAY, now - 2 * DAY], size=2048)
    policy = _datastore_policy(hosts, target_ns="offsite")
    remote = policy.remote
    assert (remote.host, remote.port) == ("127.0.0.1", int(hosts.src.url.rsplit(":", 1)[1]))
    assert remote.fingerprint == hosts.src.fingerprint

    record = SyncJobRecord.objects.get(policy=policy)
    services.sync_job_run(record=record)
    services.offsite_status_refresh(host=hosts.dst)

    record.refresh_from_db()
    assert record.last_run_state == "OK"
    with client_for_host(hosts.dst) as dst:
        copied = dst.snapshot_list("store2", ns="offsite/clients/acme")
    assert sorted(s.backup_time for s in copied) == [now - 3 * DAY, now - 2 * DAY]
    membership = TenantOffsite.objects.get(tenant=acme)
    assert not membership.stale
    assert selectors.offsite_usage_bytes(acme) == 4096

    services.policy_apply(policy=policy)  # re-run over HTTPS: still one of each
    with client_for_host(hosts.dst) as dst:
        assert len(dst.remote_list()) == 1
        assert len(dst.sync_job_list()) == 1


def test_repair_converges_what_drift_found_and_keeps_unknown_jobs(hosts):
    from pbsclient.models import SyncJob

    policy = _datastore_policy(hosts)
    with client_for_host(hosts.dst) as dst:
        dst.sync_job_delete(f"offsite-{policy.pk}")
        dst.remote_update("portal-pbs1", port=9999)
        dst.sync_job_create(SyncJob(id="offsite-999", store="store2", remote="portal-pbs1", remote_store="store1"))
    findings = [d.as_finding() for d in services.offsite_drift(hosts.dst)]
    assert {f["kind"] for f in findings} == {
        "offsite_remote_differs", "offsite_sync_job_missing", "offsite_sync_job_unexpected",
    }  # fmt: skip
    assert [f["repairable"] for f in findings if f["kind"] == "offsite_sync_job_unexpected"] == [False]

    services.offsite_repair(hosts.dst)

    assert [(d.name, d.problem) for d in services.offsite_drift(hosts.dst)] == [("offsite-999", "unexpected")]


def test_a_disabled_policy_keeps_its_job_but_unschedules_it(hosts):
    policy = _datastore_policy(hosts, schedule="daily")
    services.policy_update(policy=policy, enabled=False)
    with client_for_host(hosts.dst) as dst:
        assert dst.sync_job_get(f"offsite-{policy.pk}").schedule is None
    services.policy_update(policy=policy, enabled=True)
    with client_for_host(hosts.dst) as dst:
        assert dst.sync_job_get(f"offsite-{policy.pk}").schedule == "daily"


def test_an_external_source_is_replicated_with_its_given_credential(hosts):
    from tests.factories import FAKE_FINGERPRINT

    with client_for_host(hosts.src) as src:  # what the external PBS's admin hands over
        src.user_create(userid="hosted@pbs")
        secret = src.token_create("hosted@pbs", "sync").value
        for auth_id in ("hosted@pbs", "hosted@pbs!sync"):
            src.acl_update(path="/datastore/store1", role="DatastoreReader", auth_id=auth_id)
    acme = hosts.tenant("acme")
    hosts.seed(acme, "vm", "100", [int(time.time()) - DAY])
    with pytest.raises(ValidationError) as info:
        services.remote_create(pulling_host=hosts.dst, name="hosted", host="pbs1.sim.invalid")
    assert set(info.value.message_dict) == {"fingerprint", "secret"}

    remote = services.remote_create(
        pulling_host=hosts.dst, name="hosted", host="pbs1.sim.invalid", port=8007,
        fingerprint=FAKE_FINGERPRINT, auth_id="hosted@pbs!sync", secret=secret,
    )  # fmt: skip
    policy = services.policy_create(
        remote=remote, source_store="store1", target_datastore=hosts.dst_store, target_ns="hosted"
    )

    assert remote.kind == Remote.Kind.EXTERNAL
    assert decrypt_secret(remote.secret_enc) == secret
    record = SyncJobRecord.objects.get(policy=policy)
    services.sync_job_run(record=record)
    services.sync_status_refresh(host=hosts.dst)
    record.refresh_from_db()
    assert record.last_run_state == "OK"
    with client_for_host(hosts.dst) as dst:
        assert len(dst.snapshot_list("store2", ns="hosted/clients/acme")) == 1
    with pytest.raises(ValidationError, match="tenant-scoped replication"):
        services.policy_create(
            remote=remote, source_store="store1", target_datastore=hosts.dst.datastores.get(name="store1"),
            scope=OffsitePolicy.Scope.TENANTS,
        )  # fmt: skip
