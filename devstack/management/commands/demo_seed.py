"""Seed the `make run` demo, in two steps.

``manage.py demo_seed < hosts.json``: register the simulated hosts, plans, logins and a
tenant per simulated customer (onboarded by the worker). stdin: a JSON list of the hosts
(name, url, fingerprint, token_id, token_secret), as `python -m pbssim --json` prints them.
The secret travels on stdin only, never in argv or a file.

``manage.py demo_seed --history``: once those tenants are onboarded and measured, the demo
history: 90 days of usage, the last two months closed with invoices and one correction, a
tenant near its quota and one in grace, a stale offsite copy and a failed onboarding run.

Both are idempotent: a second start adds nothing.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from devstack import demo
from plans.models import Plan
from tenants.models import Datastore


class Command(BaseCommand):
    help = "Register the simulated PBS hosts, plans, demo logins and tenants; --history adds the demo history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--history", action="store_true",
            help="Write the demo history (usage, closed months, quotas, offsite, a failed run) instead.",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        if options["history"]:
            self._history()
            return
        hosts = [demo.DemoHostInfo(**item) for item in json.load(sys.stdin)]
        plans = demo.demo_plans_ensure()
        new_logins = demo.demo_logins_ensure()
        for info in hosts:
            host = demo.demo_host_register(info)
            status = "reachable" if host.reachable else f"NOT reachable: {host.last_error}"
            self.stdout.write(f"{host.name}: {host.url} ({status})")
            for tenant in demo.demo_tenants_adopt(host, plans):
                self.stdout.write(f"  onboarding {tenant.slug} on {tenant.datastore}")
        first_tenant = demo.Tenant.objects.order_by("slug").first()
        if first_tenant is not None:
            client_login = demo.demo_client_login_ensure(first_tenant)
            if client_login:
                new_logins.append(client_login)
        for login in new_logins:
            self.stdout.write(f"login created ({login.role}): {login.username} / {login.password}  (shown once)")

    def _history(self) -> None:
        result = demo.demo_usage_history_ensure()
        self.stdout.write(f"demo history: {result.samples} daily samples, {result.gaps} gaps written")
        if result.skipped:
            self.stdout.write(f"  not measured yet, no history: {', '.join(result.skipped)}")
        demo.demo_months_close(result=result)
        for period in result.closed:
            self.stdout.write(f"  closed {period}")
        if result.invoices:
            self.stdout.write(f"  {result.invoices} invoices issued")
        if result.credit_note:
            self.stdout.write(f"  corrected with credit note {result.credit_note}")
        for line in demo.demo_quotas_ensure():
            self.stdout.write(f"  quota {line}")
        # The last two need PBS; the demo goes on without them if a host is not there.
        for what, step in (("offsite copy", demo.demo_offsite_ensure), ("failed onboarding", self._failed_run)):
            try:
                outcome = step()
            except Exception as exc:  # a demo extra must not stop `make run`
                self.stderr.write(f"  demo {what} not set up: {exc}")
            else:
                if outcome:
                    self.stdout.write(f"  {what}: {outcome}")

    def _failed_run(self) -> str:
        datastore = Datastore.objects.filter(enabled=True, host__enabled=True).select_related("host")
        first = datastore.order_by("host__name", "name").first()
        if first is None:
            return ""
        tenant = demo.demo_failed_run_ensure(datastore=first, plan=Plan.objects.order_by("name").first())
        return f"{tenant.slug} on {first} (its PBS user was made by hand)" if tenant else ""
