"""Django admin: plans are edited through the billing pages (audited); everything else is
read-only here, because issued documents and measured samples must never be edited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from billing.models import (
    BillingPeriod,
    CreditNote,
    Invoice,
    InvoiceLine,
    MeteringGap,
    MeteringHostResult,
    MeteringRun,
    UsageSample,
)
from core.readonly_admin import ReadOnlyAdmin
from plans.models import Plan


@admin.register(Plan)
class PlanAdmin(ReadOnlyAdmin):
    list_display = ["name", "metric", "currency", "included_gib", "price_per_gib", "base_fee", "minimum_charge"]


@admin.register(UsageSample)
class UsageSampleAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "day", "logical_bytes", "latest_bytes", "physical_estimate_bytes", "snapshot_count"]
    list_filter = ["day"]
    search_fields = ["tenant__slug"]
    list_select_related = ["tenant"]


@admin.register(MeteringRun)
class MeteringRunAdmin(ReadOnlyAdmin):
    list_display = ["day", "status", "trigger", "started_at", "tenants_sampled", "tenants_gap", "hosts_failed"]


@admin.register(MeteringHostResult)
class MeteringHostResultAdmin(ReadOnlyAdmin):
    list_display = ["run", "host", "status", "tenants", "sampled", "gaps", "attempts", "duration_ms"]
    list_select_related = ["run", "host"]


@admin.register(MeteringGap)
class MeteringGapAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "day", "host_name", "reason"]
    list_select_related = ["tenant"]


@admin.register(BillingPeriod)
class BillingPeriodAdmin(ReadOnlyAdmin):
    list_display = ["start", "status", "closed_at"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    can_delete = False
    extra = 0

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ["number", "tenant_slug", "period", "status", "total", "currency"]
    list_filter = ["status", "period"]
    search_fields = ["number", "tenant_slug", "client_name"]
    list_select_related = ["period"]
    inlines = [InvoiceLineInline]


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    list_display = ["number", "invoice", "amount", "currency", "issued_at"]
    list_select_related = ["invoice"]
