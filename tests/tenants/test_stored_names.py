"""After creation every reader uses a tenant's stored PBS names: changing PORTAL_PBS_REALM or
PORTAL_NAMESPACE_PARENT later renames nothing that exists and makes nothing look drifted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenants import selectors, services
from tenants.naming import stored_names, tenant_names
from tenants.onboarding import RunResult, run_execute


def _writes(pbs_sim: Any) -> int:
    return sum(1 for method, _path, _status in pbs_sim.request_log if method != "GET")


def test_changed_settings_leave_existing_tenants_alone(
    pbs_sim: Any, onboard: Callable[..., Any], settings: Any
) -> None:
    tenant = onboard("acme")
    assert (tenant.pbs_userid, tenant.namespace) == ("acme@pbs", "clients/acme")

    settings.PORTAL_PBS_REALM = "ldap"
    settings.PORTAL_NAMESPACE_PARENT = "customers"

    names = stored_names(tenant)
    assert (names.userid, names.namespace, names.backup_tokenid) == ("acme@pbs", "clients/acme", "acme@pbs!backup")
    assert tenant_names("newco").userid == "newco@ldap"  # new tenants get the new names

    repair, _ = services.tenant_repair(tenant_id=tenant.pk, enqueue=False)
    writes_before = _writes(pbs_sim)
    assert run_execute(run_id=repair.pk) is RunResult.SUCCEEDED
    assert _writes(pbs_sim) == writes_before, "an existing tenant must not be re-created under new names"

    assert services.tenant_drift_check(tenant_id=tenant.pk) == []
    host_findings = services.pbshost_drift_check(host_id=tenant.host_id)
    assert [f for f in host_findings if f.get("kind", "").startswith("unknown")] == []


def test_the_connection_details_show_the_stored_names(onboard: Callable[..., Any], settings: Any) -> None:
    tenant = onboard("acme")
    settings.PORTAL_PBS_REALM = "ldap"
    settings.PORTAL_NAMESPACE_PARENT = "customers"
    details = selectors.connection_details(tenant=tenant)
    assert details is not None
    text = repr(details)
    assert "acme@pbs!backup" in text
    assert "ldap" not in text
    assert "customers" not in text
