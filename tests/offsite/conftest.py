"""Two simulated PBS hosts for offsite tests: pbs1 (source) and pbs2 (offsite, pulling).

``hosts`` reaches both in-process (pbs2's pulls go to pbs1's simulator through a link);
``https_hosts`` runs both as real HTTPS servers, so pbs2's pulls really connect to pbs1 with
the remote's pinned fingerprint and token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pbssim.endpoints.sync import link_remote
from tenants.models import Datastore, PbsHost, Tenant
from tenants.pbs import client_for_host
from tests.factories import make_tenant
from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)

T0 = 1_760_000_000
DAY = 86_400


@dataclass
class Hosts:
    src: PbsHost
    dst: PbsHost
    src_sim: Any
    dst_sim: Any

    @property
    def src_store(self) -> Datastore:
        return Datastore.objects.get(host=self.src, name="store1")

    @property
    def dst_store(self) -> Datastore:
        return Datastore.objects.get(host=self.dst, name="store2")

    def tenant(self, slug: str = "acme", **fields: Any) -> Tenant:
        """A tenant on pbs1/store1 whose namespace exists on PBS, as onboarding leaves it."""
        tenant = make_tenant(slug=slug, datastore=self.src_store, **fields)
        with client_for_host(self.src) as client:
            parent = ""
            for component in tenant.namespace.split("/"):
                client.namespace_create("store1", component, parent=parent or None)
                parent = f"{parent}/{component}" if parent else component
        return tenant

    def seed(self, tenant: Tenant, btype: str, bid: str, times: list[int], **kw: Any) -> None:
        for when in times:
            self.src_sim.seed_snapshot(
                store="store1", ns=kw.get("ns", tenant.namespace), backup_type=btype,
                backup_id=bid, backup_time=when, size=kw.get("size", 1000),
                owner=f"{tenant.slug}@pbs!backup", verification=kw.get("verification", "ok"),
            )  # fmt: skip

    def writes(self, sim: Any) -> list[tuple[str, str]]:
        return [(entry[0], entry[1]) for entry in sim.request_log if entry[0] != "GET"]


@pytest.fixture
def hosts(pbs_sim_factory: Callable[..., Any], pbs_host: Callable[..., PbsHost]) -> Hosts:
    src_sim, dst_sim = pbs_sim_factory(), pbs_sim_factory()
    src = pbs_host(src_sim, name="pbs1")
    dst = pbs_host(dst_sim, name="pbs2")
    link_remote(dst_sim, "pbs1.sim.invalid:8007", src_sim)
    return Hosts(src, dst, src_sim, dst_sim)


@pytest.fixture
def https_hosts(
    pbs_sim_factory: Callable[..., Any],
    pbs_https_factory: Callable[..., Any],
    pbs_host: Callable[..., PbsHost],
) -> Hosts:
    src_sim, dst_sim = pbs_sim_factory(), pbs_sim_factory()
    src = pbs_host(pbs_https_factory(src_sim), name="pbs1")
    dst = pbs_host(pbs_https_factory(dst_sim), name="pbs2")
    return Hosts(src, dst, src_sim, dst_sim)
