"""Offsite drift on a host and its repair."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from offsite import pbs as pbsops
from offsite.models import Remote, SyncJobRecord
from offsite.services.base import PULL_TOKEN_NAME, _client
from offsite.services.jobs import sync_job_ensure, sync_job_wanted
from offsite.services.remotes import remote_ensure
from pbsclient.errors import NotFound


@dataclass(frozen=True)
class DriftItem:
    """One difference between the portal's records and a PBS host."""

    host: str
    kind: str  # "remote" | "sync-job" | "pull-token"
    name: str
    problem: str  # "missing" | "differs" | "unexpected"
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "host": self.host,
            "kind": self.kind,
            "name": self.name,
            "problem": self.problem,
            "detail": self.detail,
        }

    def as_finding(self) -> dict[str, Any]:
        """The shape of tenants.drift findings: ``{kind, object, detail, repairable}``.
        Unknown jobs are never repaired (removed) automatically: someone may rely on them."""
        kind = f"offsite_{self.kind.replace('-', '_')}_{self.problem}"
        detail = self.detail or f"The offsite {self.kind} is {self.problem} on PBS."
        return {
            "kind": kind,
            "object": f"{self.host}:{self.name}",
            "detail": detail,
            "repairable": self.problem != "unexpected",
        }


def offsite_drift(host: Any) -> list[DriftItem]:
    """Remotes and sync jobs on ``host`` that differ from the records, read-only.

    Covers: remotes the portal keeps there (missing, address/auth-id/fingerprint differ), its
    sync jobs (missing, config differs), portal-named jobs PBS has but the portal doesn't
    know (``offsite-*``), and, where ``host`` is a source, the pull users' tokens.
    """
    items: list[DriftItem] = []
    remotes = list(Remote.objects.filter(pulling_host=host))
    records = list(
        SyncJobRecord.objects.filter(host=host).select_related(
            "policy__remote", "membership__tenant"
        )
    )
    sources = list(Remote.objects.filter(source_host=host, kind=Remote.Kind.MANAGED))
    if not (remotes or records or sources):
        return items
    with _client(host) as client:
        for remote in remotes:
            actual = pbsops.remote_get(client, remote.name)
            if actual is None:
                items.append(DriftItem(host.name, "remote", remote.name, "missing"))
                continue
            diffs = []
            for key, want in (
                ("host", remote.host),
                ("port", remote.port),
                ("auth-id", remote.auth_id),
                ("fingerprint", remote.fingerprint),
            ):
                have = actual.get(key) or (8007 if key == "port" else "")
                if key == "fingerprint":
                    have = str(have).lower()
                if have != want:
                    diffs.append(f"{key}: {have!r} != {want!r}")
            if diffs:
                items.append(DriftItem(host.name, "remote", remote.name, "differs", "; ".join(diffs)))
        known = {r.job_id for r in records}
        for record in records:
            actual = pbsops.job_get(client, record.job_id)
            if actual is None:
                items.append(DriftItem(host.name, "sync-job", record.job_id, "missing"))
                continue
            wanted = sync_job_wanted(record)
            have = pbsops.job_normalize(actual)
            diffs = [f"{k}: {have[k]!r} != {wanted[k]!r}" for k in wanted if have[k] != wanted[k]]
            if diffs:
                items.append(
                    DriftItem(host.name, "sync-job", record.job_id, "differs", "; ".join(diffs))
                )
        for job in client.sync_job_list():
            job_id = pbsops._kebab(job)["id"]
            if job_id.startswith("offsite-") and job_id not in known:
                items.append(
                    DriftItem(host.name, "sync-job", job_id, "unexpected", "not in the portal")
                )
        for remote in sources:
            try:
                client.token_get(remote.source_userid, PULL_TOKEN_NAME)
            except NotFound:
                items.append(
                    DriftItem(host.name, "pull-token", remote.auth_id, "missing", f"remote {remote}")
                )
    return items


def offsite_repair(host: Any, *, actor: Any = None) -> dict[str, int]:
    """Re-run the idempotent convergence for everything offsite on ``host``: its remotes and
    jobs (as the pulling host) and the pull tokens and grants (as a source). Never deletes."""
    remotes = {
        r.pk: r
        for r in Remote.objects.filter(
            Q(pulling_host=host) | Q(source_host=host, kind=Remote.Kind.MANAGED)
        ).select_related("pulling_host", "source_host")
    }
    for remote in remotes.values():
        remote_ensure(remote=remote, actor=actor)
    records = list(
        SyncJobRecord.objects.filter(host=host).select_related(
            "host", "policy__remote", "membership__tenant"
        )
    )
    for record in records:
        sync_job_ensure(record=record, actor=actor)
    return {"remotes": len(remotes), "jobs": len(records)}
