"""Seed the `make run` demo: `manage.py demo_seed < hosts.json`.

stdin: a JSON list of the simulated hosts (name, url, fingerprint, token_id,
token_secret), as `python -m pbssim --json` prints them. The secret travels on
stdin only, never in argv or a file.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand

from devstack import demo


class Command(BaseCommand):
    help = "Register the simulated PBS hosts, plans, demo logins and tenants (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
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
