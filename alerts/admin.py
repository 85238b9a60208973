"""Django admin: read-only views for support; staff decisions go through the portal pages
(they need a reason and an audit row)."""

from django.contrib import admin

from alerts.models import Alert, PlanQuota, QuotaState, QuotaTransition, WebhookDelivery
from core.readonly_admin import ReadOnlyAdmin


@admin.register(PlanQuota)
class PlanQuotaAdmin(ReadOnlyAdmin):
    list_display = ("plan", "soft_limit_gib", "hard_limit_gib", "warning_percent", "grace_days", "action")


@admin.register(QuotaState)
class QuotaStateAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "state", "usage_bytes", "soft_limit_bytes", "grace_ends_at", "writes_blocked", "exempt")
    list_filter = ("state", "writes_blocked", "exempt")
    list_select_related = ("tenant",)


@admin.register(QuotaTransition)
class QuotaTransitionAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "from_state", "to_state", "usage_bytes", "created_at")
    list_select_related = ("tenant",)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "kind", "key", "severity", "status", "opened_at", "last_notified_at")
    list_filter = ("status", "kind", "severity")
    list_select_related = ("tenant",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("uuid", "target", "tenant", "event", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "target")
    list_select_related = ("tenant",)
