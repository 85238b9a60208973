"""Billing writes: metering runs and samples, closing a month, corrections, plans.

Each service is one transaction; side effects (signals, Celery enqueues) run on commit.
Everything touching money writes an audit row with the acting user. The arithmetic lives
in billing.pricing (pure), the PBS conversation in billing.metering (async, no database)."""

from __future__ import annotations

from billing.services.base import (
    METERED_STATUSES,
    BillingError,
)
from billing.services.close import (
    CloseResult,
    billing_period_close,
    billing_period_get_or_create,
)
from billing.services.corrections import (
    Correction,
    invoice_correct,
    invoice_issue_late,
)
from billing.services.drafts import (
    DraftInvoice,
)
from billing.services.metering import (
    ClientFactory,
    metering_collect_chunk,
    metering_collect_run_inline,
    metering_outcome_store,
    metering_run_finish,
    metering_run_start,
    metering_runs_reap,
)
from billing.services.requests import (
    billing_period_close_request,
    metering_collect_request,
    plan_save,
)

__all__ = [
    "METERED_STATUSES",
    "BillingError",
    "ClientFactory",
    "CloseResult",
    "Correction",
    "DraftInvoice",
    "billing_period_close",
    "billing_period_close_request",
    "billing_period_get_or_create",
    "invoice_correct",
    "invoice_issue_late",
    "metering_collect_chunk",
    "metering_collect_request",
    "metering_collect_run_inline",
    "metering_outcome_store",
    "metering_run_finish",
    "metering_run_start",
    "metering_runs_reap",
    "plan_save",
]
