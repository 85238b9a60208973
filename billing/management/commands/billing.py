"""``manage.py billing collect|close|export|correct|issue-late``: billing by hand.

billing collect [--as-of YYYY-MM-DD]          measure every tenant now (synchronously)
billing close --period YYYY-MM                issue the month's invoices (idempotent)
billing export --period YYYY-MM --out F.csv   the accounting CSV ("-" for stdout)
billing correct --invoice NUMBER --reason ... credit note + new invoice
billing issue-late --period YYYY-MM --tenant SLUG   bill a tenant the close skipped
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.export import csv_chunks
from billing.models import Invoice, MeteringRun
from billing.selectors.export import EXPORT_COLUMNS, export_rows
from billing.selectors.periods import period_get
from billing.services.base import BillingError
from billing.services.close import billing_period_close
from billing.services.corrections import invoice_correct, invoice_issue_late
from billing.services.metering import metering_collect_run_inline, metering_run_start
from plans.models import Plan


class Command(BaseCommand):
    help = "Metering, monthly close, CSV export and invoice corrections."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        collect = sub.add_parser("collect", help="Measure every metered tenant now.")
        collect.add_argument("--as-of", type=dt.date.fromisoformat, help="Record the samples for this day.")
        close = sub.add_parser("close", help="Close a month: issue its invoices.")
        close.add_argument("--period", required=True, help="YYYY-MM")
        export = sub.add_parser("export", help="Write the accounting CSV of a closed month.")
        export.add_argument("--period", required=True, help="YYYY-MM")
        export.add_argument("--out", required=True, help="File to write, or - for stdout.")
        correct = sub.add_parser("correct", help="Credit an invoice and issue a corrected one.")
        correct.add_argument("--invoice", required=True, help="Invoice number.")
        correct.add_argument("--reason", required=True)
        correct.add_argument("--plan", help="Bill with this plan instead of the tenant's current one.")
        correct.add_argument("--no-reissue", action="store_true", help="Only credit, issue nothing new.")
        late = sub.add_parser("issue-late", help="Invoice a tenant the close skipped.")
        late.add_argument("--period", required=True, help="YYYY-MM")
        late.add_argument("--tenant", required=True, help="Tenant slug.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action'].replace('-', '_')}")(options)
        except (BillingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

    def _collect(self, options: dict[str, Any]) -> None:
        run = metering_run_start(day=options.get("as_of"), trigger=MeteringRun.Trigger.COMMAND)
        run = metering_collect_run_inline(run=run)
        for result in run.host_results.select_related("host").order_by("host__name", "first_tenant_id"):
            line = (
                f"{result.host.name}: {result.status}, {result.sampled}/{result.tenants} sampled, "
                f"{result.gaps} gaps, {result.requests} requests, {result.duration_ms} ms"
            )
            self.stdout.write(line + (f" - {result.error}" if result.error else ""))
        self.stdout.write(
            f"run {run.pk} for {run.day}: {run.status}; {run.tenants_sampled} sampled, "
            f"{run.tenants_gap} gaps, {run.hosts_failed} host(s) failed"
        )

    def _close(self, options: dict[str, Any]) -> None:
        result = billing_period_close(period=options["period"])
        if result.already_closed:
            self.stdout.write(f"{options['period']} was already closed; nothing changed.")
            return
        totals = ", ".join(f"{amount} {cur}" for cur, amount in result.totals.items()) or "0"
        self.stdout.write(f"closed {options['period']}: {result.created} invoices, total {totals}")
        if result.skipped_no_plan:
            self.stderr.write(f"not billed (no plan): {', '.join(result.skipped_no_plan)}")

    def _export(self, options: dict[str, Any]) -> None:
        period = period_get(period=options["period"])
        if period is None or period.status != period.Status.CLOSED:
            raise CommandError(f"{options['period']} is not closed; close it first")
        counted = [0]

        def rows():  # type: ignore[no-untyped-def]
            for row in export_rows(period=period):
                counted[0] += 1
                yield row

        chunks = csv_chunks(EXPORT_COLUMNS, rows())
        if options["out"] == "-":
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            return
        with open(options["out"], "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        self.stderr.write(f"wrote {counted[0]} rows to {options['out']}")

    def _correct(self, options: dict[str, Any]) -> None:
        invoice = Invoice.objects.filter(number=options["invoice"]).first()
        if invoice is None:
            raise CommandError(f"no invoice {options['invoice']}")
        plan = None
        if options.get("plan"):
            plan = Plan.objects.filter(name=options["plan"]).first()
            if plan is None:
                raise CommandError(f"no plan {options['plan']!r}")
        result = invoice_correct(
            invoice=invoice, reason=options["reason"], actor=None, plan=plan, reissue=not options["no_reissue"]
        )
        self.stdout.write(f"credit note {result.credit_note.number} for {result.credit_note.amount}")
        if result.invoice:
            self.stdout.write(f"new invoice {result.invoice.number}: {result.invoice.total} {result.invoice.currency}")

    def _issue_late(self, options: dict[str, Any]) -> None:
        from tenants.models import Tenant

        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}")
        invoice = invoice_issue_late(tenant=tenant, period=options["period"], actor=None)
        self.stdout.write(f"issued {invoice.number}: {invoice.total} {invoice.currency}")
