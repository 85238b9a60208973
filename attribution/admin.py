"""Django admin: chunk-exact runs and figures, read-only (they are measurements)."""

from __future__ import annotations

from django.contrib import admin

from attribution.models import AttributionRun, TenantAttribution
from core.readonly_admin import ReadOnlyAdmin


@admin.register(AttributionRun)
class AttributionRunAdmin(ReadOnlyAdmin):
    list_display = [
        "day", "host", "datastore", "status", "method", "snapshots_listed", "snapshots_new", "snapshots_read",
        "snapshots_dropped", "requests", "bytes_downloaded", "distinct_bytes",
    ]  # fmt: skip
    list_filter = ["status", "method"]


@admin.register(TenantAttribution)
class TenantAttributionAdmin(ReadOnlyAdmin):
    list_display = ["day", "tenant", "host", "datastore", "referenced_bytes", "exclusive_bytes", "share_bytes",
                    "physical_share_bytes"]  # fmt: skip
    list_select_related = ["tenant", "host"]
