"""The consistency check itself: quiet on a clean host, loud on each kind of damage.

In-process (SQLite, the simulator through its transport), so it runs in the fast suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pbsclient import PbsClient
from pbsclient.models import PruneJob
from tenants import services
from tenants.models import PbsHost, Tenant
from tenants.onboarding import RunResult, run_execute
from tests.faults.consistency import assert_consistent, host_problems

pytestmark = pytest.mark.django_db


@pytest.fixture
def onboarded(pbs_sim: Any, pbs_host: Any) -> tuple[PbsHost, list[Tenant]]:
    host = services.pbshost_check(host_id=pbs_host(pbs_sim, name="pbs-c").pk)
    tenants = []
    for slug, store in (("acme", "store1"), ("beta", "store2")):
        tenant = services.tenant_create(slug=slug, name=slug, datastore=host.datastores.get(name=store))
        run, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
        assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED
        tenants.append(tenant)
    return host, tenants


@pytest.fixture
def admin(pbs_sim: Any, pbs_admin_token: tuple[str, str]) -> Iterator[PbsClient]:
    token_id, secret = pbs_admin_token
    with PbsClient(
        base_url="https://pbs.test:8007", token_id=token_id, token_secret=secret, transport=pbs_sim.transport()
    ) as client:
        yield client


def test_a_clean_host_passes(pbs_sim: Any, onboarded: Any) -> None:
    host, _ = onboarded
    assert_consistent((host, pbs_sim))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("foreign_user", "user ghost@pbs belongs to no tenant"),
        ("user_disabled", "acme: PBS user acme@pbs is disabled"),
        ("acl_removed", "acme: ACL differs"),
        ("second_prune_job", "has 2 prune jobs"),
        ("prune_job_changed", "acme: prune job t-acme is"),
        ("secret_regenerated", "acme: the stored backup token secret does not work"),
        ("extra_token", "acme: PBS tokens"),
    ],
)
def test_each_kind_of_damage_is_found(
    pbs_sim: Any, onboarded: Any, admin: PbsClient, damage: str, expected: str
) -> None:
    host, _ = onboarded
    path = "/datastore/store1/clients/acme"
    if damage == "foreign_user":
        admin.user_create(userid="ghost@pbs", comment="pbs-portal tenant ghost")
    elif damage == "user_disabled":
        admin.user_update("acme@pbs", enable=False)
    elif damage == "acl_removed":
        admin.acl_update(path=path, role="DatastorePowerUser", auth_id="acme@pbs", delete=True)
    elif damage == "second_prune_job":
        admin.prune_job_create(PruneJob(id="other", store="store1", schedule="daily", ns="clients/acme", keep_last=1))
    elif damage == "prune_job_changed":
        admin.prune_job_update("t-acme", keep_daily=1)
    elif damage == "secret_regenerated":
        admin.token_update("acme@pbs", "backup", regenerate=True)
    elif damage == "extra_token":
        admin.token_create("acme@pbs", "spare")

    problems = host_problems(host, pbs_sim)

    assert any(expected in problem for problem in problems), problems
    with pytest.raises(AssertionError):
        assert_consistent((host, pbs_sim))
