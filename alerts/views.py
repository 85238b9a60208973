"""Staff pages: the alert dashboard and a tenant's quota page with staff decisions."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.permissions import staff_required
from alerts import forms, selectors, services
from alerts.models import QuotaState
from core.htmx import wants_partial
from tenants.models import Tenant

PAGE_SIZE = 50



@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Open alerts (filterable), tenants not at ok quota, and failing webhooks."""
    filters = forms.AlertFilterForm(request.GET or {"status": "open"})
    valid = filters.is_valid()
    status = filters.cleaned_data["status"] if valid else "open"
    kind = filters.cleaned_data["kind"] if valid else ""
    alerts = selectors.alerts_list(status=status or None, kind=kind or None)
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"filters": filters, "page": page, "query": _query_without_page(request)}
    if wants_partial(request):
        return render(request, "alerts/dashboard.html#alert-table", context)
    context.update(
        quota_states=selectors.quota_states_list(
            states=[QuotaState.State.WARNING, QuotaState.State.OVER, QuotaState.State.ENFORCED]
        )[:200],
        failed_deliveries=selectors.webhook_deliveries_list(status="failed")[:20],
        counts=selectors.open_alert_counts(),
    )
    return render(request, "alerts/dashboard.html", context)


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@staff_required
def quota_detail(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant.objects.select_related("plan"), pk=tenant_id)
    state = selectors.quota_state_for_tenant(tenant.pk)
    override = selectors.tenant_quota_override(tenant.pk)
    alert_settings = selectors.tenant_alert_settings(tenant.pk)
    context = {
        "tenant": tenant,
        "state": state,
        "policy": selectors.quota_policy_for_tenant(tenant),
        "transitions": selectors.quota_transitions_for_tenant(tenant.pk, limit=30),
        "tenant_alerts": selectors.open_alerts_for_tenant(tenant.pk),
        "grace_form": forms.GraceExtendForm(),
        "exempt_form": forms.ExemptForm(initial={"exempt": not (state and state.exempt)}),
        "override_form": forms.QuotaOverrideForm(
            initial={
                field: getattr(override, field)
                for field in ("soft_limit_gib", "hard_limit_gib", "warning_percent", "grace_days", "action")
            }
            if override
            else None
        ),
        "settings_form": forms.AlertSettingsForm(
            initial={"backup_max_age_hours": alert_settings.backup_max_age_hours if alert_settings else None}
        ),
        "webhook_form": forms.WebhookForm(
            initial={
                "url": alert_settings.webhook_url if alert_settings else "",
                "enabled": alert_settings.webhook_enabled if alert_settings else False,
            }
        ),
        "deliveries": selectors.webhook_deliveries_list(tenant_id=tenant.pk)[:10],
        "default_backup_hours": selectors.backup_max_age_hours(tenant),
    }
    return render(request, "alerts/quota_detail.html", context)


def _form_errors(request: HttpRequest, form: forms.forms.Form) -> None:
    for field, errors in form.errors.items():
        label = "" if field == "__all__" else f"{field}: "
        messages.error(request, label + " ".join(errors))


def _aware(value: datetime) -> datetime:
    return value if timezone.is_aware(value) else timezone.make_aware(value)


@require_POST
@staff_required
def quota_extend(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    form = forms.GraceExtendForm(request.POST)
    if form.is_valid():
        try:
            services.quota_grace_extend(
                tenant_id=tenant.pk, until=_aware(form.cleaned_data["until"]),
                reason=form.cleaned_data["reason"], actor=request.user,
            )
            messages.success(request, "Grace period extended.")
        except services.QuotaError as exc:
            messages.error(request, str(exc))
    else:
        _form_errors(request, form)
    return redirect("alerts:quota", tenant_id=tenant.pk)


@require_POST
@staff_required
def quota_exempt(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    form = forms.ExemptForm(request.POST)
    if form.is_valid():
        try:
            services.quota_exempt_set(
                tenant_id=tenant.pk, exempt=form.cleaned_data["exempt"],
                reason=form.cleaned_data["reason"], actor=request.user,
            )
            messages.success(request, "Exemption updated.")
        except services.QuotaError as exc:
            messages.error(request, str(exc))
    else:
        _form_errors(request, form)
    return redirect("alerts:quota", tenant_id=tenant.pk)


@require_POST
@staff_required
def quota_override(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    form = forms.QuotaOverrideForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if any(value not in (None, "") for value in data.values()):
                services.tenant_quota_set(
                    tenant_id=tenant.pk, soft_limit_gib=data["soft_limit_gib"],
                    hard_limit_gib=data["hard_limit_gib"], warning_percent=data["warning_percent"],
                    grace_days=data["grace_days"], action=data["action"] or None, actor=request.user,
                )
            else:
                services.tenant_quota_clear(tenant_id=tenant.pk, actor=request.user)
            messages.success(request, "Quota saved and re-evaluated.")
        except services.QuotaError as exc:
            messages.error(request, str(exc))
    else:
        _form_errors(request, form)
    return redirect("alerts:quota", tenant_id=tenant.pk)


@require_POST
@staff_required
def alert_settings(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    form = forms.AlertSettingsForm(request.POST)
    if form.is_valid():
        try:
            services.tenant_alert_settings_set(
                tenant_id=tenant.pk, backup_max_age_hours=form.cleaned_data["backup_max_age_hours"],
                actor=request.user,
            )
            messages.success(request, "Alert settings saved.")
        except services.QuotaError as exc:
            messages.error(request, str(exc))
    else:
        _form_errors(request, form)
    return redirect("alerts:quota", tenant_id=tenant.pk)


@require_POST
@staff_required
def webhook(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    form = forms.WebhookForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("alerts:quota", tenant_id=tenant.pk)
    try:
        _, new_secret = services.tenant_webhook_set(
            tenant_id=tenant.pk, url=form.cleaned_data["url"], enabled=form.cleaned_data["enabled"],
            regenerate_secret=form.cleaned_data["regenerate_secret"], actor=request.user,
        )
    except services.QuotaError as exc:
        messages.error(request, str(exc))
        return redirect("alerts:quota", tenant_id=tenant.pk)
    if new_secret:
        # Shown once on this response only (never stored in the session or a message).
        response = render(request, "alerts/webhook_secret.html", {"tenant": tenant, "secret": new_secret})
        response["Cache-Control"] = "no-store"
        return response
    messages.success(request, "Webhook saved.")
    return redirect("alerts:quota", tenant_id=tenant.pk)

