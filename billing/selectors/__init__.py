"""Billing reads: periods and totals, invoices, the last collection, usage series, export rows.

Every list here costs a fixed number of queries whatever the number of tenants. The
submodules own the functions; the names are repeated here for callers outside billing
(selfservice, the docs test) that read ``billing.selectors``.
"""

from __future__ import annotations

from billing.selectors.export import EXPORT_COLUMNS, export_dicts, export_metric, export_rows
from billing.selectors.invoices import invoice_get, invoice_replacement, plan_list, tenant_invoices
from billing.selectors.metering import (
    CollectionStatus,
    last_collection,
    metering_run_exists,
    metering_run_list,
    metering_run_pending_chunks,
)
from billing.selectors.periods import PeriodSummary, period_get, period_invoices, period_list, period_totals
from billing.selectors.usage import UsagePoint, UsageSeries, usage_series

__all__ = [
    "EXPORT_COLUMNS",
    "CollectionStatus",
    "PeriodSummary",
    "UsagePoint",
    "UsageSeries",
    "export_dicts",
    "export_metric",
    "export_rows",
    "invoice_get",
    "invoice_replacement",
    "last_collection",
    "metering_run_exists",
    "metering_run_list",
    "metering_run_pending_chunks",
    "period_get",
    "period_invoices",
    "period_list",
    "period_totals",
    "plan_list",
    "tenant_invoices",
    "usage_series",
]
