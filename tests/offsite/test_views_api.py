"""The offsite page, API and CLI: staff only, thin over the services, constant queries."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from offsite import services
from offsite.models import OffsitePolicy, SyncJobRecord
from tests.offsite.conftest import Hosts


def _policy(hosts: Hosts, **options) -> OffsitePolicy:
    return services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store, **options
    )


def _tenant_jobs(hosts: Hosts, count: int) -> OffsitePolicy:
    policy = _policy(hosts, scope=OffsitePolicy.Scope.TENANTS)
    for n in range(count):
        services.tenant_offsite_enable(tenant=hosts.tenant(f"t{n}"), policy=policy)
    return policy


# --- page ---------------------------------------------------------------------------------


def test_the_overview_is_for_msp_staff_only(client, client_a, accounting_user, operator_user, db):
    url = reverse("offsite:overview")
    client.force_login(client_a)
    assert client.get(url).status_code == 403
    client.force_login(accounting_user)
    assert client.get(url).status_code == 403
    client.force_login(operator_user)
    assert client.get(url).status_code == 200


def test_the_overview_shows_jobs_runs_and_stale_tenants(client, staff_user, hosts):
    policy = _tenant_jobs(hosts, 1)
    record = SyncJobRecord.objects.get()
    services.sync_job_run(record=record)
    services.sync_status_refresh(host=hosts.dst)
    client.force_login(staff_user)
    page = client.get(reverse("offsite:overview")).content.decode()
    assert record.job_id in page
    assert "portal-pbs1" in page
    assert f"offsite-{policy.pk}-t0" in page
    assert ">OK<" in page.replace(" ", "")


def test_the_jobs_partial_is_served_to_htmx(client, staff_user, hosts):
    _tenant_jobs(hosts, 1)
    client.force_login(staff_user)
    reply = client.get(reverse("offsite:overview"), headers={"HX-Request": "true"})
    body = reply.content.decode()
    assert body.lstrip().startswith('<div id="jobs">')
    assert "<html" not in body


def test_the_overview_costs_the_same_queries_for_one_or_many_jobs(client, staff_user, hosts):
    client.force_login(staff_user)
    _tenant_jobs(hosts, 1)
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("offsite:overview")).status_code == 200
    policy = OffsitePolicy.objects.get()
    for n in range(1, 5):
        services.tenant_offsite_enable(tenant=hosts.tenant(f"more{n}"), policy=policy)
    with CaptureQueriesContext(connection) as many:
        assert client.get(reverse("offsite:overview")).status_code == 200
    assert len(many) == len(one)


def test_run_now_is_a_post_that_queues_the_job(client, staff_user, hosts, django_capture_on_commit_callbacks):
    _tenant_jobs(hosts, 1)
    record = SyncJobRecord.objects.get()
    client.force_login(staff_user)
    assert client.get(reverse("offsite:job_run", args=[record.pk])).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        reply = client.post(reverse("offsite:job_run", args=[record.pk]))
    assert reply.status_code == 302
    record.refresh_from_db()
    assert record.last_run_state == "OK"  # the eager task ran the job and read its status


# --- API -----------------------------------------------------------------------------------


def test_the_api_refuses_clients_and_accounting(client, client_a, accounting_user, db):
    for user in (client_a, accounting_user):
        client.force_login(user)
        assert client.get("/api/v1/offsite/policies/").status_code == 403
        assert client.post("/api/v1/offsite/policies/create/", {}).status_code == 403


def test_staff_create_a_policy_through_the_api(client, staff_user, hosts):
    client.force_login(staff_user)
    reply = client.post(
        "/api/v1/offsite/policies/create/",
        data=json.dumps({
            "source_datastore": hosts.src_store.pk, "target_datastore": hosts.dst_store.pk,
            "schedule": "02:30", "group_filters": ["include:type:ct"], "rate_in": "5MiB",
        }),
        content_type="application/json",
    )  # fmt: skip
    assert reply.status_code == 201, reply.content
    body = reply.json()
    assert body["group_filters"] == ["type:ct"]
    assert body["rate_in"] == "5 MiB"
    assert body["source"] == "pbs1/store1"
    jobs = client.get("/api/v1/offsite/jobs/").json()
    assert [j["job_id"] for j in jobs["results"]] == [f"offsite-{body['id']}"]
    remotes = client.get("/api/v1/offsite/remotes/").json()["results"]
    assert "secret" not in remotes[0]
    assert "secret_enc" not in remotes[0]


def test_api_validation_errors_are_400_with_the_reason(client, staff_user, hosts):
    client.force_login(staff_user)
    reply = client.post(
        "/api/v1/offsite/policies/create/",
        data=json.dumps({"source_datastore": hosts.src_store.pk, "target_datastore": hosts.dst_store.pk,
                         "transfer_last": 0}),
        content_type="application/json",
    )  # fmt: skip
    assert reply.status_code == 400
    assert "minimum value of 1" in reply.content.decode()


def test_tenant_enable_status_and_disable_through_the_api(client, staff_user, hosts):
    policy = _policy(hosts, scope=OffsitePolicy.Scope.TENANTS)
    acme = hosts.tenant("acme")
    client.force_login(staff_user)
    enabled = client.post(f"/api/v1/offsite/tenants/{acme.pk}/enable/", {"policy": policy.pk})
    assert enabled.status_code == 201, enabled.content
    assert enabled.json()["job_id"] == f"offsite-{policy.pk}-acme"
    status = client.get(f"/api/v1/offsite/tenants/{acme.pk}/").json()
    assert status["enabled"] is True
    assert status["stale"] is False
    disabled = client.post(f"/api/v1/offsite/tenants/{acme.pk}/disable/", {"policy": policy.pk})
    assert disabled.json() == {"removed": True}


def test_the_job_list_api_has_constant_queries(client, staff_user, hosts):
    client.force_login(staff_user)
    _tenant_jobs(hosts, 1)
    with CaptureQueriesContext(connection) as one:
        client.get("/api/v1/offsite/jobs/")
    policy = OffsitePolicy.objects.get()
    for n in range(3):
        services.tenant_offsite_enable(tenant=hosts.tenant(f"x{n}"), policy=policy)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get("/api/v1/offsite/jobs/").json()["results"]) == 4
    assert len(many) == len(one)


# --- CLI -----------------------------------------------------------------------------------


def _cli(*args: str) -> str:
    out = StringIO()
    call_command("offsite", *args, stdout=out)
    return out.getvalue()


def test_the_cli_adds_and_lists_policies_as_json(hosts):
    added = json.loads(_cli("policy", "add", "--source", "pbs1/store1", "--target", "pbs2/store2",
                            "--group-filter", "include:type:vm", "--remove-vanished", "--json"))  # fmt: skip
    assert added["group_filters"] == ["type:vm"]
    assert added["remove_vanished"] is True
    listed = json.loads(_cli("policy", "list", "--json"))
    assert [p["id"] for p in listed] == [added["id"]]
    remotes = json.loads(_cli("--json", "remote", "list"))
    assert remotes[0]["auth_id"] == "offsite-pull-pbs2@pbs!pull"


def test_the_cli_runs_a_job_and_reports_status(hosts):
    policy = _policy(hosts)
    run = json.loads(_cli("run", f"pbs2:offsite-{policy.pk}", "--json"))
    assert run["upid"].startswith("UPID:")
    assert run["last_run_state"] == "OK"
    status = json.loads(_cli("status", "--refresh", "--json"))
    assert status["jobs"][0]["last_run_state"] == "OK"
    assert status["stale"] == []


def test_the_cli_enables_a_tenant_and_reports_drift(hosts):
    policy = _policy(hosts, scope=OffsitePolicy.Scope.TENANTS)
    hosts.tenant("acme")
    enabled = json.loads(_cli("tenant", "enable", "acme", "--policy", str(policy.pk), "--json"))
    assert enabled["job_id"] == f"offsite-{policy.pk}-acme"
    assert json.loads(_cli("drift", "pbs2", "--json")) == []


def test_the_cli_explains_bad_input(hosts):
    with pytest.raises(CommandError, match="schedule"):
        _cli("policy", "add", "--source", "pbs1/store1", "--target", "pbs2/store2", "--schedule", "often")
    with pytest.raises(CommandError, match="no datastore 'pbs9/x'"):
        _cli("policy", "add", "--source", "pbs9/x", "--target", "pbs2/store2")


def test_apply_from_the_page_converges_a_policy_that_failed_before(
    client, staff_user, hosts, django_capture_on_commit_callbacks
):
    policy = _policy(hosts, apply=False)
    client.force_login(staff_user)
    with django_capture_on_commit_callbacks(execute=True):
        reply = client.post(reverse("offsite:policy_apply"), {"policy": policy.pk})
    assert reply.status_code == 302
    assert SyncJobRecord.objects.get(policy=policy).state == "present"


def test_the_tenant_and_host_partials_flag_a_stale_copy(hosts):
    from django.template.loader import render_to_string

    from offsite import selectors
    from offsite.models import TenantOffsite

    policy = _policy(hosts)
    acme = hosts.tenant("acme")
    services.tenant_offsite_include(acme)
    TenantOffsite.objects.filter(tenant=acme, policy=policy).update(stale=True, stale_reason="behind by 3 days")
    tenant_html = render_to_string(
        "offsite/_tenant_status.html", {"offsite": selectors.tenant_offsite_status(acme)}
    )
    host_html = render_to_string(
        "offsite/_host_status.html", {"offsite_summary": selectors.host_offsite_summary(hosts.dst)}
    )
    assert "stale" in tenant_html
    assert "behind by 3 days" in tenant_html
    assert "1 tenant" in host_html


def test_the_page_and_the_api_audit_and_queue_a_policy_apply_alike(
    client, staff_user, hosts, django_capture_on_commit_callbacks
):
    from audit.models import AuditEvent

    policy = _policy(hosts, apply=False)
    client.force_login(staff_user)
    with django_capture_on_commit_callbacks() as from_page:
        client.post(reverse("offsite:policy_apply"), {"policy": policy.pk})
    with django_capture_on_commit_callbacks() as from_api:
        reply = client.post(f"/api/v1/offsite/policies/{policy.pk}/apply/")
    assert reply.status_code == 202
    rows = list(AuditEvent.objects.filter(action="offsite.policy_apply_request").values_list("actor_id", "target"))
    assert rows == [(staff_user.pk, f"policy/{policy.pk}")] * 2
    assert len(from_page) == len(from_api) == 1
