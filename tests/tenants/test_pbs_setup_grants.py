"""The PBS-side set-up in docs/pbs-setup.md, done exactly as written, is enough for the portal.

A PBS host (the simulator, which resolves ACLs as PBS does) gets the documented users,
tokens and grants, made with a root token the way an administrator would. The portal then
registers the host with those tokens, finds no missing privilege, onboards a tenant, lets
its client make a verified restore token and meters usage with the read-only token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Role
from billing import services as billing_services
from billing.models import MeteringRun
from tenants import services
from tenants.models import TenantToken
from tenants.onboarding import RunResult, run_execute
from tenants.pbs import client_for_values, install_transport, uninstall_transport
from tenants.services.restore_tokens import restore_token_create
from tests.conftest import sim_info
from tests.factories import FAKE_FINGERPRINT, make_user

pytestmark = pytest.mark.django_db

URL = "https://pbs-setup.sim.invalid:8007"
# docs/pbs-setup.md, "Commands": (path, role) for the automation user and its token.
AUTOMATION_GRANTS = [("/access", "Admin"), ("/datastore/store1", "DatastoreAdmin")]
# docs/pbs-setup.md, "The narrower alternative for /access".
NARROW_AUTOMATION_GRANTS = [
    ("/access/users", "Admin"),
    ("/access/acl", "Admin"),
    ("/access", "Audit"),
    ("/datastore/store1", "DatastoreAdmin"),
]
METERING_GRANTS = [("/datastore/store1", "DatastoreReader")]


@pytest.fixture
def root_client(pbs_sim: Any) -> Iterator[Any]:
    install_transport(URL, pbs_sim.transport(), pbs_sim.async_transport())
    info = sim_info(pbs_sim)
    with client_for_values(
        url=URL, token_id=info.token_id, token_secret=info.token_secret, fingerprint=FAKE_FINGERPRINT
    ) as client:
        yield client
    uninstall_transport(URL)


def _user_with_token(client: Any, userid: str, token: str, grants: list[tuple[str, str]]) -> str:
    """What the documented proxmox-backup-manager lines do: user, grants, token, same grants."""
    client.user_create(userid=userid, comment="made as docs/pbs-setup.md says")
    for path, role in grants:
        client.acl_update(path=path, role=role, auth_id=userid)
    secret = client.token_create(userid, token).value
    for path, role in grants:
        client.acl_update(path=path, role=role, auth_id=f"{userid}!{token}")
    return secret


@pytest.mark.parametrize("automation_grants", [AUTOMATION_GRANTS, NARROW_AUTOMATION_GRANTS], ids=["admin", "narrow"])
def test_the_documented_grants_are_enough(root_client: Any, automation_grants: list[tuple[str, str]]) -> None:
    automation = _user_with_token(root_client, "portal@pbs", "automation", automation_grants)
    metering = _user_with_token(root_client, "metering@pbs", "usage", METERING_GRANTS)

    host = services.pbshost_register(
        name="pbs-setup", url=URL, fingerprint=FAKE_FINGERPRINT,
        token_id="portal@pbs!automation", token_secret=automation,
        metering_token_id="metering@pbs!usage", metering_secret=metering,
    )  # fmt: skip
    assert host.reachable
    assert host.last_error == ""
    assert host.permission_warnings == []
    assert [ds.name for ds in host.datastores.all()] == ["store1"]  # store2 was not granted

    tenant = services.tenant_create(slug="acme", name="Acme", datastore=host.datastores.get(name="store1"))
    run, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED
    tenant.refresh_from_db()
    client = make_user(role=Role.CLIENT, tenant=tenant, password=None)
    created = restore_token_create(tenant=tenant, name="dr", days=10, actor=client)
    # The client's restore token passed the check of what PBS says it can really do.
    assert TenantToken.objects.get(pk=created.token.pk).privileges_checked_at is not None

    run = billing_services.metering_run_start(trigger=MeteringRun.Trigger.COMMAND)
    run = billing_services.metering_collect_run_inline(run=run)
    assert (run.tenants_sampled, run.tenants_gap) == (1, 0)


def test_without_the_datastore_grant_the_health_check_says_what_to_grant(root_client: Any) -> None:
    automation = _user_with_token(root_client, "portal@pbs", "automation", [("/access", "Admin")])
    root_client.acl_update(path="/datastore/store1", role="DatastoreAudit", auth_id="portal@pbs")
    root_client.acl_update(path="/datastore/store1", role="DatastoreAudit", auth_id="portal@pbs!automation")

    host = services.pbshost_register(
        name="pbs-setup", url=URL, fingerprint=FAKE_FINGERPRINT,
        token_id="portal@pbs!automation", token_secret=automation,
    )  # fmt: skip

    assert host.permission_warnings == [
        "the automation token lacks Datastore.Modify on /datastore/store1: grant DatastoreAdmin on "
        "/datastore/store1 to portal@pbs!automation (and to its user)"
    ]
