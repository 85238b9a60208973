"""Demo data for a simulated PBS host: two datastores and a few tenants' backups.

``seed_demo(sim, host_index=0)`` and ``seed_demo(sim, host_index=1)`` give two
hosts different tenants, sizes and deduplication ratios, so a two-host demo
looks like two real servers. Everything is deterministic (no randomness from
the clock other than "now"), so screenshots and figures are repeatable.

Each tenant lives in ``clients/<slug>`` on one datastore and has daily VM,
container and host backups over the last 30 days; the newest two are not
verified yet and one older snapshot failed verification. The datastores' GC
figures are derived from the seeded sizes, so physical-usage estimates agree
with the logical sizes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

GIB = 2**30
TIB = 2**40
DAY = 86400
DAYS = 30
NAMESPACE_PARENT = "clients"


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    store: str
    vms: tuple[tuple[str, int], ...]  # (vmid, base size in GiB)
    cts: tuple[tuple[str, int], ...] = ()
    hosts: tuple[tuple[str, int], ...] = ()
    hour: int = 1


@dataclass(frozen=True)
class DemoHost:
    stores: dict[str, int]  # name -> total bytes
    dedup: float  # logical / physical
    tenants: tuple[DemoTenant, ...] = field(default_factory=tuple)


HOSTS: tuple[DemoHost, ...] = (
    DemoHost(
        stores={"store1": 8 * TIB, "store2": 4 * TIB},
        dedup=3.2,
        tenants=(
            DemoTenant("acme", "store1", vms=(("100", 40), ("101", 65)), cts=(("200", 6),), hour=1),
            DemoTenant("globex", "store1", vms=(("100", 120),), hosts=(("fileserver", 3),), hour=2),
            DemoTenant("initech", "store2", vms=(("110", 25),), cts=(("210", 4), ("211", 2)), hour=3),
        ),
    ),
    DemoHost(
        stores={"store1": 6 * TIB, "store2": 12 * TIB},
        dedup=2.6,
        tenants=(
            DemoTenant("umbrella", "store2", vms=(("300", 90), ("301", 30)), hour=0),
            DemoTenant("hooli", "store1", vms=(("120", 55),), cts=(("220", 8),), hour=4),
            DemoTenant("vandelay", "store2", hosts=(("ws-01", 2), ("ws-02", 2)), vms=(), hour=5),
        ),
    ),
)


def demo_snapshots(*, host_index: int = 0, now: float | None = None) -> list[dict[str, Any]]:
    """The snapshots ``seed_demo`` creates, as keyword arguments for ``sim.seed_snapshot``."""
    host = HOSTS[host_index % len(HOSTS)]
    clock = int(now if now is not None else time.time())
    today = clock // DAY * DAY
    snapshots: list[dict[str, Any]] = []
    for tenant in host.tenants:
        groups = (
            [("vm", vmid, size) for vmid, size in tenant.vms]
            + [("ct", ctid, size) for ctid, size in tenant.cts]
            + [("host", name, size) for name, size in tenant.hosts]
        )
        for group_no, (backup_type, backup_id, base_gib) in enumerate(groups):
            # Daily up to today's run, if its hour has come: the newest backup is recent.
            for age in range(DAYS, -1, -1):
                backup_time = today - age * DAY + tenant.hour * 3600 + group_no * 600
                if backup_time > clock:
                    continue
                # Guests grow ~0.4% a day, so usage trends up over the month.
                size = int(base_gib * GIB * (1 + 0.004 * (DAYS - age)))
                if age <= 2:
                    verification = None
                elif age == 12 and group_no == 0 and host_index % 2 == 1:
                    verification = "failed"
                else:
                    verification = "ok"
                snapshots.append(
                    {
                        "store": tenant.store,
                        "ns": f"{NAMESPACE_PARENT}/{tenant.slug}",
                        "backup_type": backup_type,
                        "backup_id": backup_id,
                        "backup_time": backup_time,
                        "size": size,
                        "owner": f"{tenant.slug}@pbs!backup",
                        "verification": verification,
                        "protected": age == DAYS and group_no == 0,
                    }
                )
    return snapshots


def seed_demo(sim: Any, *, host_index: int = 0, now: float | None = None) -> dict[str, Any]:
    """Add the demo datastores and snapshots for host ``host_index`` to ``sim``.

    Returns a short summary (datastores, tenants, snapshot count) for printing.
    """
    host = HOSTS[host_index % len(HOSTS)]
    snapshots = demo_snapshots(host_index=host_index, now=now)
    logical: dict[str, int] = dict.fromkeys(host.stores, 0)
    for snap in snapshots:
        logical[snap["store"]] += snap["size"]
    for name, total in host.stores.items():
        disk = int(logical[name] / host.dedup)
        # Other data on the datastore (older, non-portal namespaces) plus metadata.
        used = disk + int(total * 0.05)
        sim.add_datastore(
            name,
            total_bytes=total,
            used_bytes=used,
            gc_index_data_bytes=logical[name],
            gc_disk_bytes=disk,
            comment=f"demo datastore {name} on host {host_index + 1}",
        )
    for snap in snapshots:
        sim.seed_snapshot(**snap)
    return {
        "datastores": sorted(host.stores),
        "tenants": [f"{t.slug} ({t.store}:{NAMESPACE_PARENT}/{t.slug})" for t in host.tenants],
        "snapshots": len(snapshots),
    }
