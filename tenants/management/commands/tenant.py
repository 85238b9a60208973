"""``manage.py tenant ...``: tenants for operators and scripts.

tenant create --slug S --name N [--host H --datastore D] [--plan P] [--contact-email E]
              [--keep-last N ... --schedule CAL]
tenant onboard S [S ...] [--wait [--timeout SEC]] [--credentials-out FILE]
tenant list [--status X] [--host H] [--search Q]
tenant show S
tenant suspend S [--reason TEXT] | resume S | rotate S [--credentials-out FILE]
tenant drift S [--repair [--wait]]
tenant offboard S --yes [--delete-data]

``onboard`` with several slugs uses the bulk path (one snapshot of the host's lists per
batch). ``--wait`` drives the run(s) in this process (no worker needed; a worker that
already holds a run is waited for). ``--credentials-out`` writes the one-time credentials
to a NEW file with mode 0600 and marks them revealed. Exit 0 on success, 1 when a run or
PBS failed, 2 on bad input. ``--json`` everywhere.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from core.commands import (
    EXIT_USAGE,
    check_new_file,
    emit,
    fail,
    json_parent,
    validation_message,
    write_new_private_file,
)
from tenants import selectors, services
from tenants.models import OnboardingRun, PbsHost, Tenant, TenantToken
from tenants.onboarding import RunResult, runs_drive


def tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status,
        "host": tenant.host.name if tenant.host else None,
        "datastore": tenant.datastore.name if tenant.datastore else None,
        "namespace": tenant.namespace,
        "pbs_userid": tenant.pbs_userid,
        "prune_job_id": tenant.prune_job_id,
        "plan": tenant.plan.name if tenant.plan else None,
        "writes_blocked": tenant.writes_blocked,
        "retention": services.Retention.of(tenant).as_fields(),
    }


def run_data(run: OnboardingRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "tenant": run.tenant.slug,
        "kind": run.kind,
        "status": run.status,
        "error": run.error,
        "hint": run.error_hint,
        "steps": [
            {"name": s.name, "state": s.state, "outcome": s.outcome, "attempts": s.attempts, "detail": s.detail}
            for s in run.steps.all()
        ],
    }


def credentials_text(tenant: Tenant, token: TenantToken, secret: str) -> str:
    details = selectors.connection_details(tenant=tenant, tokenid=token.tokenid) or {}
    lines = [
        f"# PBS credentials of {tenant.slug} ({tenant.name}); the portal no longer has the secret.",
        f"PBS_SERVER={details.get('server', '')}",
        f"PBS_PORT={details.get('port', '')}",
        f"PBS_FINGERPRINT={details.get('fingerprint', '')}",
        f"PBS_DATASTORE={details.get('datastore', '')}",
        f"PBS_NAMESPACE={details.get('namespace', '')}",
        f"PBS_AUTH_ID={token.tokenid}",
        f"PBS_REPOSITORY={details.get('repository', '')}",
        f"PBS_PASSWORD={secret}",
        "",
        "# proxmox-backup-client",
        *(f"# {line}" for line in details.get("client_commands", "").splitlines()),
        "# Proxmox VE",
        f"# {details.get('pvesm_command', '')}",
        "",
    ]
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Create, onboard, list and manage tenants."

    def add_arguments(self, parser: CommandParser) -> None:
        common = json_parent()
        sub = parser.add_subparsers(dest="action", required=True)

        create = sub.add_parser("create", parents=[common], help="Create a tenant (pending).")
        create.add_argument("--slug", required=True)
        create.add_argument("--name", required=True)
        create.add_argument("--host", help="Host name; without --datastore: its best datastore.")
        create.add_argument("--datastore", help="Datastore name (on --host).")
        create.add_argument("--plan", help="Plan name.")
        create.add_argument("--contact-name", default="")
        create.add_argument("--contact-email", default="")
        for keep in services.KEEP_FIELDS:
            create.add_argument(f"--{keep.replace('_', '-')}", type=int)
        create.add_argument("--schedule")

        onboard = sub.add_parser("onboard", parents=[common], help="Onboard one or many tenants.")
        onboard.add_argument("slugs", nargs="+", metavar="SLUG")
        onboard.add_argument("--wait", action="store_true", help="Drive the run(s) to the end here.")
        onboard.add_argument("--timeout", type=float, default=900.0)
        onboard.add_argument("--credentials-out", help="New file (0600) for the one-time credentials.")

        lst = sub.add_parser("list", parents=[common], help="List tenants.")
        lst.add_argument("--status", choices=Tenant.Status.values)
        lst.add_argument("--host")
        lst.add_argument("--search", default="")

        show = sub.add_parser("show", parents=[common], help="One tenant with its tokens and last run.")
        show.add_argument("slug")

        suspend = sub.add_parser("suspend", parents=[common], help="Stop backups; keep data and restores.")
        suspend.add_argument("slug")
        suspend.add_argument("--reason", default="")
        resume = sub.add_parser("resume", parents=[common], help="Allow backups again.")
        resume.add_argument("slug")
        rotate = sub.add_parser("rotate", parents=[common], help="New backup token secret.")
        rotate.add_argument("slug")
        rotate.add_argument("--credentials-out", help="New file (0600) for the new credentials.")
        drift = sub.add_parser("drift", parents=[common], help="Compare with PBS (exit 1 on drift).")
        drift.add_argument("slug")
        drift.add_argument("--repair", action="store_true", help="Then run the idempotent convergence.")
        drift.add_argument("--wait", action="store_true", help="With --repair: drive it here.")
        offboard = sub.add_parser("offboard", parents=[common], help="Offboard (runs here).")
        offboard.add_argument("slug")
        offboard.add_argument("--yes", action="store_true", help="Confirm (required).")
        offboard.add_argument("--delete-data", action="store_true", help="Also delete the namespace and backups.")
        offboard.add_argument("--timeout", type=float, default=900.0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except ValidationError as exc:
            raise fail(validation_message(exc), code=EXIT_USAGE) from exc
        except services.LifecycleError as exc:
            raise fail(f"{exc.message}\nHint: {exc.hint}" if exc.hint else exc.message) from exc

    def _tenant(self, slug: str) -> Tenant:
        tenant = Tenant.objects.select_related("host", "datastore", "plan").filter(slug=slug).first()
        if tenant is None:
            raise fail(f"no tenant {slug!r}", code=EXIT_USAGE)
        return tenant

    # --- create / onboard ---------------------------------------------------------------

    def _create(self, options: dict[str, Any]) -> None:
        tenant, _ = services.tenant_create_request(
            slug=options["slug"], name=options["name"],
            contact_name=options["contact_name"], contact_email=options["contact_email"],
            host=options["host"] or None, datastore=options["datastore"] or None, plan=options["plan"] or None,
            retention=options,
        )  # fmt: skip
        emit(
            self,
            options,
            tenant_data(tenant),
            f"created {tenant.slug} on {tenant.host.name}/{tenant.datastore.name}, namespace "
            f"{tenant.namespace}, status {tenant.status}",
        )

    def _onboard(self, options: dict[str, Any]) -> None:
        slugs = options["slugs"]
        out = check_new_file(options["credentials_out"]) if options["credentials_out"] else None
        if out is not None and len(slugs) != 1:
            raise fail("--credentials-out works with one tenant", code=EXIT_USAGE)
        if out is not None and not options["wait"]:
            raise fail("--credentials-out needs --wait", code=EXIT_USAGE)
        tenants = [self._tenant(slug) for slug in slugs]
        onboarded = [t for t in tenants if services.onboard_kind_for(t) == OnboardingRun.Kind.REPAIR]
        if onboarded and not options["wait"] and out is None:
            # Idempotent for automation: an onboarded tenant needs nothing; --wait checks it.
            tenants = [t for t in tenants if t not in onboarded]
            for tenant in onboarded:
                self.stdout.write(f"{tenant.slug}: already {tenant.status}, nothing to do")
            if not tenants:
                if options["json"]:
                    emit(self, options, {"runs": [], "already_onboarded": [t.slug for t in onboarded]}, "")
                return
        enqueue = not options["wait"]
        if len(tenants) == 1 or any(t in onboarded for t in tenants):
            runs = [
                services.tenant_onboard(tenant_id=t.pk, enqueue=enqueue, kind=services.onboard_kind_for(t))[0]
                for t in tenants
            ]
        else:
            runs = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants], enqueue=enqueue)
        if options["wait"]:
            runs_drive(run_ids=[r.pk for r in runs], timeout=options["timeout"])
        runs = [OnboardingRun.objects.select_related("tenant").prefetch_related("steps").get(pk=r.pk) for r in runs]
        failed = [r for r in runs if r.status == OnboardingRun.Status.FAILED]
        data: dict[str, Any] = {"runs": [run_data(r) for r in runs]}
        lines = []
        for run in runs:
            if run.kind == OnboardingRun.Kind.REPAIR and run.status == OnboardingRun.Status.SUCCEEDED:
                changes = sum(1 for step in run.steps.all() if step.outcome not in ("existed", "verified"))
                lines.append(f"{run.tenant.slug}: already active; convergence check made {changes} change(s)")
                continue
            lines.append(f"{run.tenant.slug}: run {run.pk} {run.status}")
            for step in run.steps.all():
                lines.append(f"  {step.name:<14} {step.state:<8} {step.outcome:<12} {step.detail}")
            if run.error:
                lines.append(f"  error: {run.error}")
            if run.error_hint:
                lines.append(f"  hint: {run.error_hint}")
        if out is not None and not failed and runs[0].status == OnboardingRun.Status.SUCCEEDED:
            path = self._write_credentials(tenants[0], out)
            data["credentials_file"] = str(path)
            lines.append(f"credentials written to {path} (mode 0600); the portal no longer has the secret")
        emit(self, options, data, "\n".join(lines))
        if failed:
            raise fail(f"{len(failed)} of {len(runs)} run(s) failed")
        if options["wait"] and any(r.status != OnboardingRun.Status.SUCCEEDED for r in runs):
            raise fail("timed out before every run finished")

    def _write_credentials(self, tenant: Tenant, path: Any) -> Any:
        tenant.refresh_from_db()
        token = selectors.tenant_live_backup_token(tenant=tenant)
        if token is None:
            raise fail(f"{tenant.slug} has no backup token")
        if not token.secret_enc:
            raise fail(
                f"the secret of {token.tokenid} was already revealed; rotate the token "
                f"(tenant rotate {tenant.slug} --credentials-out FILE)"
            )
        secret = services.token_reveal(token_id=token.pk, via="cli")
        write_new_private_file(path, credentials_text(tenant, token, secret))
        return path

    # --- reading ---------------------------------------------------------------------------

    def _list(self, options: dict[str, Any]) -> None:
        host_id = None
        if options["host"]:
            host_id = PbsHost.objects.filter(name=options["host"]).values_list("pk", flat=True).first()
            if host_id is None:
                raise fail(f"no host named {options['host']!r}", code=EXIT_USAGE)
        qs = selectors.tenant_list(search=options["search"], host_id=host_id, status=options["status"] or "")
        tenants = list(qs)
        text = "\n".join(
            f"{t.slug:<30} {t.status:<12} {(t.host.name if t.host else '-'):<12} "
            f"{(t.datastore.name if t.datastore else '-'):<12} {t.name}"
            for t in tenants
        )
        emit(
            self,
            options,
            [
                {
                    "slug": t.slug,
                    "name": t.name,
                    "status": t.status,
                    "host": t.host.name if t.host else None,
                    "datastore": t.datastore.name if t.datastore else None,
                    "namespace": t.namespace,
                    "plan": t.plan.name if t.plan else None,
                }
                for t in tenants
            ],
            text or "no tenants",
        )

    def _show(self, options: dict[str, Any]) -> None:
        tenant = self._tenant(options["slug"])
        tokens = selectors.tenant_tokens(tenant=tenant)
        data = tenant_data(tenant)
        data["tokens"] = [
            {
                "tokenid": t.tokenid,
                "purpose": t.purpose,
                "enabled": t.enabled,
                "revoked_at": t.revoked_at,
                "revealed_at": t.revealed_at,
                "secret_kept": bool(t.secret_enc),
            }
            for t in tokens
        ]
        data["drift_findings"] = tenant.drift_findings
        lines = [f"{k}: {v}" for k, v in tenant_data(tenant).items()]
        lines += [f"token {t['tokenid']} ({t['purpose']}): revoked={bool(t['revoked_at'])}" for t in data["tokens"]]
        emit(self, options, data, "\n".join(lines))

    # --- lifecycle ---------------------------------------------------------------------------

    def _suspend(self, options: dict[str, Any]) -> None:
        tenant = services.tenant_suspend(tenant_id=self._tenant(options["slug"]).pk, reason=options["reason"])
        emit(self, options, tenant_data(tenant), f"{tenant.slug} suspended: backups stop, restores work")

    def _resume(self, options: dict[str, Any]) -> None:
        tenant = services.tenant_resume(tenant_id=self._tenant(options["slug"]).pk)
        emit(self, options, tenant_data(tenant), f"{tenant.slug} resumed")

    def _rotate(self, options: dict[str, Any]) -> None:
        out = check_new_file(options["credentials_out"]) if options["credentials_out"] else None
        tenant = self._tenant(options["slug"])
        token = services.tenant_token_rotate(tenant_id=tenant.pk)
        data: dict[str, Any] = {"tokenid": token.tokenid, "token_id": token.pk}
        text = f"new secret for {token.tokenid}; reveal it once in the portal"
        if out is not None:
            secret = services.token_reveal(token_id=token.pk, via="cli")
            write_new_private_file(out, credentials_text(tenant, token, secret))
            data["credentials_file"] = str(out)
            text = f"new secret for {token.tokenid} written to {out} (mode 0600)"
        emit(self, options, data, text)

    def _drift(self, options: dict[str, Any]) -> None:
        tenant = self._tenant(options["slug"])
        findings = services.tenant_drift_check(tenant_id=tenant.pk)
        data: dict[str, Any] = {"tenant": tenant.slug, "findings": findings}
        lines = [f"{f['kind']:<20} {f['object']}  {f['detail']}" for f in findings] or [f"{tenant.slug}: in sync"]
        if findings and options["repair"]:
            run, _ = services.tenant_repair(tenant_id=tenant.pk, enqueue=not options["wait"])
            if options["wait"]:
                runs_drive(run_ids=[run.pk])
                run.refresh_from_db()
                findings = services.tenant_drift_check(tenant_id=tenant.pk)
            data["repair_run"] = {"id": run.pk, "status": run.status}
            data["findings_after"] = findings
            lines.append(f"repair run {run.pk}: {run.status}; {len(findings)} finding(s) left")
        emit(self, options, data, "\n".join(lines))
        if findings:
            raise fail(f"{len(findings)} drift finding(s)")

    def _offboard(self, options: dict[str, Any]) -> None:
        if not options["yes"]:
            raise fail("offboarding needs --yes", code=EXIT_USAGE)
        tenant = self._tenant(options["slug"])
        run, _ = services.tenant_offboard(
            tenant_id=tenant.pk, confirm_slug=tenant.slug, delete_data=options["delete_data"], enqueue=False
        )
        result = runs_drive(run_ids=[run.pk], timeout=options["timeout"]).get(run.pk)
        run = OnboardingRun.objects.select_related("tenant").prefetch_related("steps").get(pk=run.pk)
        lines = [f"{tenant.slug}: offboarding run {run.pk} {run.status}"]
        lines += [f"  {s.name:<16} {s.state:<8} {s.outcome:<10} {s.detail}" for s in run.steps.all()]
        if run.error:
            lines.append(f"  error: {run.error}\n  hint: {run.error_hint}")
        emit(self, options, run_data(run), "\n".join(lines))
        if result is not RunResult.SUCCEEDED:
            raise fail(f"offboarding of {tenant.slug} did not finish")
