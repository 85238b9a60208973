"""``manage.py pbshost add|list|check|drift|set-fingerprint|set-token``: PBS hosts for operators and scripts.

pbshost add --name N --url URL --fingerprint FP --token-id ID --token-secret-file F
            [--metering-token-id ID --metering-secret-file F] [--ca-file F]
            [--public-address HOST[:PORT]] [--no-check]
pbshost list
pbshost check N
pbshost drift N
pbshost set-fingerprint N FP
pbshost set-token N [--metering] --token-id ID --token-secret-file F
            (rotate the automation token, or with --metering the read-only metering token;
             the new token is tried on the host first, so a rejected one changes nothing)

Secrets are read from files ('-' = stdin), never from arguments (they would be in the
shell history and the process list). Exit 0 on success, 1 when PBS or a check failed,
2 on bad input. ``--json`` everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from core.commands import (
    EXIT_USAGE,
    emit,
    fail,
    json_parent,
    read_secret_file,
    validation_message,
)
from pbsclient import validation
from pbsclient.errors import PbsError
from tenants import selectors, services
from tenants.hints import hint_for
from tenants.models import PbsHost
from tenants.pbs import client_for_values


def host_data(host: PbsHost) -> dict[str, Any]:
    return {
        "name": host.name,
        "url": host.url,
        "enabled": host.enabled,
        "fingerprint": host.fingerprint,
        "token_id": host.token_id,
        "metering_token_id": host.metering_token_id,
        "reachable": host.reachable,
        "fingerprint_ok": host.fingerprint_ok,
        "pbs_version": host.pbs_version,
        "supports_regenerate": host.supports_regenerate,
        "last_check_at": host.last_check_at,
        "last_error": host.last_error,
        "permission_warnings": host.permission_warnings,
        "datastores": [
            {
                "name": ds.name,
                "enabled": ds.enabled,
                "placement_weight": ds.placement_weight,
                "total_bytes": ds.total_bytes,
                "used_bytes": ds.used_bytes,
                "avail_bytes": ds.avail_bytes,
            }
            for ds in host.datastores.all()
        ],
    }


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:,.0f} GiB"


class Command(BaseCommand):
    help = "Register, list and check PBS hosts."

    def add_arguments(self, parser: CommandParser) -> None:
        common = json_parent()
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", parents=[common], help="Register a host (connects first).")
        add.add_argument("--name", required=True)
        add.add_argument("--url", required=True, help="https://pbs1.example.net:8007")
        add.add_argument("--fingerprint", default="", help="SHA-256 of the certificate, aa:bb:...")
        add.add_argument("--ca-file", help="PEM file of the CA instead of (or besides) a pin.")
        add.add_argument("--token-id", required=True, help="Automation token, user@realm!name.")
        add.add_argument("--token-secret-file", required=True, help="File with its secret ('-' = stdin).")
        add.add_argument("--metering-token-id", default="")
        add.add_argument("--metering-secret-file")
        add.add_argument("--public-address", default="", help="host[:port] customers connect to.")
        add.add_argument("--no-check", action="store_true", help="Save without connecting (not advised).")
        sub.add_parser("list", parents=[common], help="List hosts and their last health check.")
        check = sub.add_parser("check", parents=[common], help="Health check now.")
        check.add_argument("name")
        drift = sub.add_parser("drift", parents=[common], help="Drift check of every tenant on the host.")
        drift.add_argument("name")
        pin = sub.add_parser("set-fingerprint", parents=[common], help="Update the pinned fingerprint.")
        pin.add_argument("name")
        pin.add_argument("fingerprint")
        token = sub.add_parser("set-token", parents=[common], help="Switch to a new automation (or metering) token.")
        token.add_argument("name")
        token.add_argument("--metering", action="store_true", help="Replace the metering token instead.")
        token.add_argument("--token-id", required=True)
        token.add_argument("--token-secret-file", required=True, help="File with its secret ('-' = stdin).")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action'].replace('-', '_')}")(options)

    def _host(self, name: str) -> PbsHost:
        host = PbsHost.objects.filter(name=name).first()
        if host is None:
            raise fail(f"no host named {name!r}", code=EXIT_USAGE)
        return host

    def _add(self, options: dict[str, Any]) -> None:
        token_secret = read_secret_file(options["token_secret_file"])
        metering_secret = ""
        if options["metering_token_id"]:
            if not options["metering_secret_file"]:
                raise fail("--metering-token-id needs --metering-secret-file", code=EXIT_USAGE)
            metering_secret = read_secret_file(options["metering_secret_file"])
        ca_pem = Path(options["ca_file"]).read_text(encoding="utf-8") if options["ca_file"] else ""
        try:
            host = services.pbshost_register(
                name=options["name"],
                url=options["url"],
                fingerprint=options["fingerprint"],
                ca_pem=ca_pem,
                token_id=options["token_id"],
                token_secret=token_secret,
                metering_token_id=options["metering_token_id"],
                metering_secret=metering_secret,
                public_address=options["public_address"],
                check=not options["no_check"],
            )
        except ValidationError as exc:
            raise fail(validation_message(exc), code=EXIT_USAGE) from exc
        except services.LifecycleError as exc:
            raise fail(f"{exc.message}\nHint: {exc.hint}") from exc
        host = selectors.host_get(name=host.name)
        emit(self, options, host_data(host), self._describe(host, headline=f"registered {host.name}"))
        if host.last_error:
            raise fail(f"{host.name} registered, but its health check failed: {host.last_error}")

    def _describe(self, host: PbsHost, *, headline: str) -> str:
        lines = [headline]
        state = "unreachable" if host.reachable is False else ("reachable" if host.reachable else "unchecked")
        lines.append(f"  {host.url}: {state}, PBS {host.pbs_version or '?'}")
        if host.fingerprint:
            match = {True: "matches", False: "DOES NOT MATCH", None: "not checked"}[host.fingerprint_ok]
            lines.append(f"  pinned fingerprint {match}")
        for ds in host.datastores.all():
            lines.append(
                f"  datastore {ds.name}: {'enabled' if ds.enabled else 'disabled'}, weight "
                f"{ds.placement_weight}, {_gib(ds.avail_bytes)} free of {_gib(ds.total_bytes)}"
            )
        lines += [f"  warning: {w}" for w in host.permission_warnings]
        if host.last_error:
            lines.append(f"  error: {host.last_error}")
        return "\n".join(lines)

    def _list(self, options: dict[str, Any]) -> None:
        hosts = selectors.host_list()
        text = "\n".join(
            f"{h.name:<16} {h.url:<40} "
            f"{'ok' if h.reachable and h.fingerprint_ok is not False and not h.last_error else 'PROBLEM':<8} "
            f"{h.pbs_version or '-':<8} {h.tenant_count:>6} tenants"
            for h in hosts
        )
        emit(self, options, [host_data(h) for h in hosts], text or "no hosts")

    def _check(self, options: dict[str, Any]) -> None:
        host = services.pbshost_check(host_id=self._host(options["name"]).pk)
        host = selectors.host_get(name=host.name)
        emit(self, options, host_data(host), self._describe(host, headline=f"health check of {host.name}"))
        if host.last_error or not host.reachable:
            raise fail(f"{host.name} is not healthy")

    def _drift(self, options: dict[str, Any]) -> None:
        host = self._host(options["name"])
        try:
            findings = services.pbshost_drift_check(host_id=host.pk)
        except services.LifecycleError as exc:
            raise fail(f"{exc.message}\nHint: {exc.hint}") from exc
        text = "\n".join(
            f"{f.get('tenant') or '(unknown)':<20} {f['kind']:<20} {f['object']}  {f['detail']}" for f in findings
        )
        emit(self, options, findings, text or f"{host.name}: in sync")
        if findings:
            raise fail(f"{len(findings)} drift finding(s) on {host.name}")

    def _set_fingerprint(self, options: dict[str, Any]) -> None:
        host = self._host(options["name"])
        try:
            services.pbshost_update(host_id=host.pk, fingerprint=options["fingerprint"])
        except ValidationError as exc:
            raise fail(validation_message(exc), code=EXIT_USAGE) from exc
        self._check({**options, "name": host.name})

    def _set_token(self, options: dict[str, Any]) -> None:
        """Replace a token: validate it, try it on the host, then save it and run a health check.

        Trying it first means a mistyped secret or a token without its grants never replaces
        the working one; the old token can be deleted on PBS once this succeeded.
        """
        host = self._host(options["name"])
        secret = read_secret_file(options["token_secret_file"])
        token_id = options["token_id"]
        try:
            validation.validate_tokenid(token_id)
        except ValueError as exc:
            raise fail(f"token_id: {exc}", code=EXIT_USAGE) from exc
        with client_for_values(
            url=host.url, token_id=token_id, token_secret=secret, fingerprint=host.fingerprint,
            ca_pem=host.ca_pem, name=host.name,
        ) as client:  # fmt: skip
            try:
                client.datastore_list()
            except PbsError as exc:
                probe = PbsHost(name=host.name, url=host.url, token_id=token_id)
                raise fail(
                    f"{token_id} cannot be used on {host.url}: {exc}; nothing was changed.\n"
                    f"Hint: {hint_for(exc, host=probe)}"
                ) from exc
        if options["metering"]:
            fields = {"metering_token_id": token_id, "metering_secret": secret}
        else:
            fields = {"token_id": token_id, "token_secret": secret}
        try:
            services.pbshost_update(host_id=host.pk, **fields)
        except ValidationError as exc:
            raise fail(validation_message(exc), code=EXIT_USAGE) from exc
        self._check({**options, "name": host.name})
