"""``manage.py offsite ...``: remotes, policies, tenant offsite, status, runs and drift.

Examples::

    manage.py offsite remote add --pulling-host pbs2 --source-host pbs1
    manage.py offsite remote add --pulling-host pbs2 --name hosted --host pbs.example.net \\
        --fingerprint aa:bb:... --auth-id sync@pbs!pull --secret-stdin < secret.txt
    manage.py offsite remote list --json
    manage.py offsite policy add --source pbs1/store1 --target pbs2/offsite --schedule hourly \\
        --remove-vanished --group-filter type:vm --rate-in 10MiB
    manage.py offsite policy list
    manage.py offsite tenant enable acme --policy 3
    manage.py offsite tenant disable acme --policy 3
    manage.py offsite status --refresh --json
    manage.py offsite run 12
    manage.py offsite drift pbs2

Secrets are never taken as arguments (process lists show them): use --secret-stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from offsite import selectors, services
from offsite.models import OffsitePolicy, Remote, SyncJobRecord
from pbsclient.errors import PbsError
from tenants.models import Datastore, PbsHost, Tenant


def _datastore(spec: str) -> Datastore:
    host, _, store = spec.partition("/")
    found = Datastore.objects.filter(host__name=host, name=store).select_related("host").first()
    if found is None:
        raise CommandError(f"no datastore {spec!r} (write it as HOST/STORE)")
    return found


def _host(name: str) -> PbsHost:
    found = PbsHost.objects.filter(name=name).first()
    if found is None:
        raise CommandError(f"no PBS host {name!r}")
    return found


def _remote_row(r: Remote) -> dict[str, Any]:
    return {
        "id": r.pk,
        "name": r.name,
        "kind": r.kind,
        "pulling_host": r.pulling_host.name,
        "source": r.source_host.name if r.source_host else f"{r.host}:{r.port}",
        "auth_id": r.auth_id,
        "state": r.state,
        "last_error": r.last_error,
    }


def _policy_row(p: OffsitePolicy) -> dict[str, Any]:
    source = (
        f"{p.source_datastore.host.name}/{p.source_datastore.name}"
        if p.source_datastore_id
        else f"{p.remote.name}:{p.source_store}"
    )
    return {
        "id": p.pk,
        "source": source,
        "target": f"{p.target_datastore.host.name}/{p.target_datastore.name}",
        "scope": p.scope,
        "schedule": p.schedule,
        "remove_vanished": p.remove_vanished,
        "group_filters": p.group_filters,
        "enabled": p.enabled,
    }


def _job_row(j: SyncJobRecord) -> dict[str, Any]:
    return {
        "id": j.pk,
        "job_id": j.job_id,
        "host": j.host.name,
        "tenant": j.membership.tenant.slug if j.membership_id else None,
        "state": j.state,
        "last_run_state": j.last_run_state,
        "last_run_at": j.last_run_at.isoformat() if j.last_run_at else None,
        "next_run_at": j.next_run_at.isoformat() if j.next_run_at else None,
        "last_error": j.last_error,
    }


# On sub-commands too (``offsite remote list --json``); SUPPRESS keeps a sub-parser's default
# from overwriting a --json given before the sub-command.
_JSON: dict[str, Any] = {"action": "store_true", "default": argparse.SUPPRESS}


class Command(BaseCommand):
    help = "Offsite replication: remotes, policies, tenant offsite, status, runs, drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")
        groups = parser.add_subparsers(dest="group", required=True)

        remote = groups.add_parser("remote").add_subparsers(dest="action", required=True)
        add = remote.add_parser("add", help="Create a remote on a pulling host.")
        add.add_argument("--pulling-host", required=True)
        add.add_argument("--source-host", help="A portal host (managed pull token).")
        add.add_argument("--name", default="")
        add.add_argument("--host", default="", help="External: DNS name or IP.")
        add.add_argument("--port", type=int, default=8007)
        add.add_argument("--fingerprint", default="")
        add.add_argument("--auth-id", default="")
        add.add_argument("--secret-stdin", action="store_true", help="Read the secret from stdin.")
        add.add_argument("--json", **_JSON)
        remote.add_parser("list").add_argument("--json", **_JSON)

        policy = groups.add_parser("policy").add_subparsers(dest="action", required=True)
        padd = policy.add_parser("add", help="Replicate a datastore to another host.")
        padd.add_argument("--source", help="HOST/STORE of a portal datastore.")
        padd.add_argument("--remote", help="External remote name (with --source-store).")
        padd.add_argument("--source-store", default="")
        padd.add_argument("--target", required=True, help="HOST/STORE of the offsite datastore.")
        padd.add_argument("--scope", choices=OffsitePolicy.Scope.values, default="datastore")
        padd.add_argument("--auto-include", action="store_true")
        padd.add_argument("--target-ns", default="")
        padd.add_argument("--schedule", default="hourly")
        padd.add_argument("--rate-in", default="")
        padd.add_argument("--burst-in", default="")
        padd.add_argument("--remove-vanished", action="store_true")
        padd.add_argument("--encrypted-only", action="store_true")
        padd.add_argument("--verified-only", action="store_true")
        padd.add_argument("--transfer-last", type=int)
        padd.add_argument("--group-filter", action="append", default=[])
        padd.add_argument("--owner", default="")
        padd.add_argument("--max-depth", type=int)
        padd.add_argument("--stale-after-hours", type=int, default=48)
        padd.add_argument("--no-apply", action="store_true", help="Only record it.")
        padd.add_argument("--json", **_JSON)
        policy.add_parser("list").add_argument("--json", **_JSON)
        papply = policy.add_parser("apply", help="Converge PBS with the policy now.")
        papply.add_argument("policy_id", type=int)
        papply.add_argument("--json", **_JSON)

        tenant = groups.add_parser("tenant").add_subparsers(dest="action", required=True)
        for action in ("enable", "disable"):
            t = tenant.add_parser(action)
            t.add_argument("slug")
            t.add_argument("--policy", type=int, required=True)
            if action == "enable":
                t.add_argument("--max-depth", type=int)
            t.add_argument("--json", **_JSON)

        status = groups.add_parser("status", help="Jobs and stale copies.")
        status.add_argument("--refresh", action="store_true", help="Ask PBS first.")
        status.add_argument("--json", **_JSON)

        run = groups.add_parser("run", help="Run a sync job now.")
        run.add_argument("job", help="Record id, or HOST:JOB_ID.")
        run.add_argument("--json", **_JSON)

        drift = groups.add_parser("drift", help="Remotes/sync jobs that differ on a host.")
        drift.add_argument("host")
        drift.add_argument("--json", **_JSON)

    def handle(self, *args: Any, **opts: Any) -> None:
        handler = getattr(self, f"_{opts['group']}_{opts.get('action') or 'main'}")
        try:
            result = handler(opts)
        except ValidationError as exc:
            details = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
            text = "; ".join(f"{k}: {' '.join(v)}" if k else " ".join(v) for k, v in details.items())
            raise CommandError(text) from exc
        except services.OffsiteError as exc:
            raise CommandError(exc.hint()) from exc
        except PbsError as exc:
            raise CommandError(str(exc)) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(result, indent=2, default=str))
        else:
            self._print(result)

    def _print(self, result: Any) -> None:
        rows = result if isinstance(result, list) else [result]
        for row in rows:
            if isinstance(row, dict):
                self.stdout.write("  ".join(f"{k}={v}" for k, v in row.items() if v not in (None, "")))
            else:
                self.stdout.write(str(row))

    # --- remote ---
    def _remote_add(self, opts: dict[str, Any]) -> dict[str, Any]:
        secret = sys.stdin.readline().strip() if opts["secret_stdin"] else ""
        remote = services.remote_create(
            pulling_host=_host(opts["pulling_host"]),
            source_host=_host(opts["source_host"]) if opts["source_host"] else None,
            name=opts["name"],
            host=opts["host"],
            port=opts["port"],
            fingerprint=opts["fingerprint"],
            auth_id=opts["auth_id"],
            secret=secret,
        )
        return _remote_row(remote)

    def _remote_list(self, opts: dict[str, Any]) -> list[dict[str, Any]]:
        return [_remote_row(r) for r in selectors.remote_list()]

    # --- policy ---
    def _policy_add(self, opts: dict[str, Any]) -> dict[str, Any]:
        target = _datastore(opts["target"])
        remote = None
        if opts["remote"]:
            remote = Remote.objects.filter(pulling_host=target.host, name=opts["remote"]).first()
            if remote is None:
                raise CommandError(f"no remote {opts['remote']!r} on {target.host.name}")
        policy = services.policy_create(
            source_datastore=_datastore(opts["source"]) if opts["source"] else None,
            target_datastore=target,
            remote=remote,
            source_store=opts["source_store"],
            scope=opts["scope"],
            auto_include_tenants=opts["auto_include"],
            target_ns=opts["target_ns"],
            schedule=opts["schedule"],
            rate_in=opts["rate_in"],
            burst_in=opts["burst_in"],
            remove_vanished=opts["remove_vanished"],
            encrypted_only=opts["encrypted_only"],
            verified_only=opts["verified_only"],
            transfer_last=opts["transfer_last"],
            group_filters=opts["group_filter"],
            owner=opts["owner"],
            max_depth=opts["max_depth"],
            stale_after_hours=opts["stale_after_hours"],
            apply=not opts["no_apply"],
        )
        return _policy_row(selectors.policy_list().get(pk=policy.pk))

    def _policy_list(self, opts: dict[str, Any]) -> list[dict[str, Any]]:
        return [_policy_row(p) for p in selectors.policy_list()]

    def _policy_apply(self, opts: dict[str, Any]) -> list[dict[str, Any]]:
        policy = selectors.policy_list().filter(pk=opts["policy_id"]).first()
        if policy is None:
            raise CommandError(f"no policy {opts['policy_id']}")
        records = services.policy_apply(policy=policy)
        return [_job_row(r) for r in records]

    # --- tenant ---
    def _tenant_args(self, opts: dict[str, Any]) -> tuple[Tenant, OffsitePolicy]:
        tenant = Tenant.objects.filter(slug=opts["slug"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {opts['slug']!r}")
        policy = selectors.policy_list().filter(pk=opts["policy"]).first()
        if policy is None:
            raise CommandError(f"no policy {opts['policy']}")
        return tenant, policy

    def _tenant_enable(self, opts: dict[str, Any]) -> dict[str, Any]:
        tenant, policy = self._tenant_args(opts)
        m = services.tenant_offsite_enable(tenant=tenant, policy=policy, max_depth=opts["max_depth"])
        job = SyncJobRecord.objects.filter(membership=m).first()
        return {"tenant": tenant.slug, "policy": policy.pk, "job_id": job.job_id if job else None}

    def _tenant_disable(self, opts: dict[str, Any]) -> dict[str, Any]:
        tenant, policy = self._tenant_args(opts)
        removed = services.tenant_offsite_disable(tenant=tenant, policy=policy)
        return {"tenant": tenant.slug, "policy": policy.pk, "removed": removed}

    # --- status, run, drift ---
    def _status_main(self, opts: dict[str, Any]) -> dict[str, Any]:
        refreshed: dict[str, Any] = {}
        if opts["refresh"]:
            host_ids = set(SyncJobRecord.objects.values_list("host_id", flat=True))
            for host in PbsHost.objects.filter(pk__in=host_ids, enabled=True):
                refreshed[host.name] = services.offsite_status_refresh(host=host)
        return {
            "refreshed": refreshed,
            "jobs": [_job_row(j) for j in selectors.job_list()],
            "stale": [
                {
                    "tenant": m.tenant.slug,
                    "policy": m.policy_id,
                    "reason": m.stale_reason,
                    "target_newest_at": m.target_newest_at,
                }
                for m in selectors.membership_list(stale_only=True)
            ],
        }

    def _run_main(self, opts: dict[str, Any]) -> dict[str, Any]:
        spec = opts["job"]
        qs = selectors.job_list()
        if ":" in spec:
            host, _, job_id = spec.partition(":")
            record = qs.filter(host__name=host, job_id=job_id).first()
        else:
            record = qs.filter(pk=int(spec)).first() if spec.isdigit() else None
        if record is None:
            raise CommandError(f"no sync job {spec!r} known to the portal")
        upid = services.sync_job_run(record=record)
        services.sync_status_refresh(host=record.host)
        record.refresh_from_db()
        return {**_job_row(record), "upid": upid}

    def _drift_main(self, opts: dict[str, Any]) -> list[dict[str, str]]:
        return [item.as_dict() for item in services.offsite_drift(_host(opts["host"]))]
