"""What every step gets: the tenant, its names, one PBS client, the state read once, the audit."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from audit.services import audit_record
from pbsclient import PbsClient
from tenants.models import OnboardingRun, PbsHost, Tenant
from tenants.naming import TenantNames, stored_names
from tenants.pbsstate import LiveState, PbsState


@dataclass
class StepContext:
    """What a step needs: the client, the PBS state, the tenant and who acts."""

    client: PbsClient
    state: PbsState
    tenant: Tenant
    host: PbsHost
    store: str
    names: TenantNames
    actor: Any = None
    run: OnboardingRun | None = None
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The first attempt at a new tenant creates first and reads only when PBS answers
    # "already exists" (PBS checks and creates under its config lock). Everything else
    # (a resumed or repeated onboarding, repair, offboarding) looks first, so a tenant
    # that is already there costs no write at all.
    create_first: bool = False
    # What this execution created on PBS ("user", "token:<name>"): a user made a moment
    # ago has no tokens, a token made a moment ago has no ACL entries (PBS drops a token's
    # entries with it and refuses entries for a token that does not exist).
    created: set[str] = field(default_factory=set)
    # Auth-ids whose roles were granted without reading their ACL entries first; the
    # verify step proves the outcome (and converges with a read if the proof fails).
    granted_unread: set[str] = field(default_factory=set)
    # Creates sent ahead of their step (``start_ahead``), by step name.
    ahead: dict[str, Future[Any]] = field(default_factory=dict)
    # Sends PBS calls from a helper thread (a first onboarding of a run alone, once its user
    # is proven), or None.
    submit: Callable[..., Future[Any]] | None = None

    @property
    def path(self) -> str:
        return self.names.acl_path(self.store)

    def audit(self, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        """Record one PBS mutation. Call inside the transaction that records its effect."""
        facts = {"host": self.host.name}
        if self.run is not None:
            facts["run"] = self.run.pk
        facts.update(detail or {})
        audit_record(action=action, actor=self.actor, tenant=self.tenant, target=target, detail=facts)


def context_for(
    tenant: Tenant,
    client: PbsClient,
    state: PbsState | None = None,
    *,
    actor: Any = None,
    run: OnboardingRun | None = None,
    create_first: bool = False,
) -> StepContext:
    if tenant.host is None or tenant.datastore is None:
        raise ValueError(f"tenant {tenant.slug} has no placement")
    return StepContext(
        client=client,
        state=state or LiveState(client),
        tenant=tenant,
        host=tenant.host,
        store=tenant.datastore.name,
        names=stored_names(tenant),
        actor=actor,
        run=run,
        options=dict(run.options) if run is not None else {},
        create_first=create_first,
    )
