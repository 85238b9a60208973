"""A simulated PBS whose snapshots have known chunks.

``seeded`` builds, on store1 of a simulator served over HTTPS (pinned fingerprint), two
tenants and a namespace of no tenant whose snapshots share chunks in known ways:

- acme and beta both back up the same template VM (vm/100: the same template chunks);
- acme's second vm/100 snapshot is incremental (most chunks of the first, two new ones);
- acme has a child namespace (``clients/acme/lab``) that shares a chunk with beta;
- the root namespace (no tenant: "others") holds a container sharing a chunk with both.

Sizes are odd so that splitting a chunk among three owners leaves bytes over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pbssim.chunk_content import ArchiveSpec, SnapshotRef
from pbssim.chunk_seed import seeded_digest
from tests.factories import make_tenant

T0 = 1_760_000_000
STORE = "store1"


def chunk(label: str, size: int) -> tuple[bytes, int]:
    return seeded_digest(7, label), size


TEMPLATE = [chunk(f"template-{i}", 1000 + 37 * i) for i in range(8)]
SHARED_ALL = chunk("shared-all", 1001)  # acme, beta and others
SHARED_AB = chunk("shared-ab", 777)  # acme (child namespace) and beta
FIXED = 4096


@dataclass
class Snap:
    ns: str
    backup_type: str
    backup_id: str
    backup_time: int
    archives: list[ArchiveSpec]
    owner_ns: str = ""

    @property
    def ref(self) -> SnapshotRef:
        return SnapshotRef(STORE, self.ns, self.backup_type, self.backup_id, self.backup_time)

    def chunks(self) -> list[tuple[bytes, int]]:
        return [c for archive in self.archives for c in archive.chunks]


@dataclass
class Seeded:
    sim: Any
    server: Any
    host: Any
    tenants: dict[str, Any]
    snaps: list[Snap] = field(default_factory=list)

    def add(self, snap: Snap) -> Snap:
        """Put a snapshot on PBS (the state) with exactly these chunks (the content)."""
        size = sum(s for _, s in snap.chunks())
        self.sim.seed_snapshot(store=STORE, ns=snap.ns, backup_type=snap.backup_type, backup_id=snap.backup_id,
                               backup_time=snap.backup_time, size=size)  # fmt: skip
        self.sim.content.put_snapshot(snap.ref, owner="root@pam", archives=snap.archives)
        self.snaps.append(snap)
        return snap

    def remove(self, snap: Snap) -> None:
        """Remove a snapshot from PBS (as a prune does); the simulator drops its content too."""
        datastore = self.sim.state.datastores[STORE]
        datastore.remove_snapshot(datastore.groups[snap.ns][(snap.backup_type, snap.backup_id)], snap.backup_time)
        self.sim.mark_content_stale()  # a direct state edit (requests that change state do this themselves)
        self.snaps.remove(snap)


def fixed_archive(name: str, labels: list[str]) -> ArchiveSpec:
    chunks = [chunk(label, FIXED) for label in labels[:-1]] + [chunk(labels[-1], 1234)]
    return ArchiveSpec(name, chunks, chunk_size=FIXED)


@pytest.fixture
def seeded(pbs_sim: Any, pbs_https_factory: Callable[..., Any], pbs_host: Callable[..., Any]) -> Seeded:
    pbs_sim.enable_content()
    server = pbs_https_factory(pbs_sim)
    host = pbs_host(server)
    ds = host.datastores.get(name=STORE)
    acme = make_tenant(slug="acme", datastore=ds)
    beta = make_tenant(slug="beta", datastore=ds)
    world = Seeded(pbs_sim, server, host, {"acme": acme, "beta": beta})
    acme_ns, beta_ns = acme.namespace, beta.namespace
    acme_own = [chunk(f"acme-{i}", 900 + i) for i in range(5)]
    world.add(Snap(acme_ns, "vm", "100", T0, [ArchiveSpec("drive-scsi0.img.didx", TEMPLATE + acme_own)]))
    # incremental: all but the last two of the first snapshot, plus two new chunks (one repeated)
    changed = [chunk("acme-v2-0", 2001), chunk("acme-v2-1", 2003)]
    world.add(Snap(acme_ns, "vm", "100", T0 + 86400,
                   [ArchiveSpec("drive-scsi0.img.didx", TEMPLATE + acme_own[:3] + changed + changed[:1])]))  # fmt: skip
    world.add(Snap(f"{acme_ns}/lab", "host", "build", T0 + 3600,
                   [ArchiveSpec("root.pxar.didx", [SHARED_AB, SHARED_ALL, chunk("lab-0", 501)]),
                    fixed_archive("disk.img.fidx", ["lab-f0", "lab-f1", "lab-f2"])]))  # fmt: skip
    beta_chunks = [*TEMPLATE[:6], SHARED_AB, chunk("beta-0", 333)]
    world.add(Snap(beta_ns, "vm", "100", T0 + 7200, [ArchiveSpec("drive-scsi0.img.didx", beta_chunks)]))
    world.add(Snap("", "ct", "9", T0 + 60, [ArchiveSpec("root.pxar.didx", [SHARED_ALL, chunk("other-0", 4321)])]))
    return world
