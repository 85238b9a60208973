"""Staff pages: one tenant, its runs, tokens, lifecycle actions and drift."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.http import client_ip
from accounts.permissions import admin_required, staff_required
from core.htmx import wants_partial
from tenants import selectors, services
from tenants.forms import (
    OffboardForm,
    RestoreTokenForm,
    RetentionForm,
    SuspendForm,
)
from tenants.models import Tenant, TenantToken
from tenants.naming import stored_names
from tenants.onboarding import STEP_LABELS
from tenants.views.common import _errors_text, _lifecycle_message, _redirect, _tenant


@staff_required
@require_GET
def tenant_detail(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(slug)
    tokens = selectors.tenant_tokens(tenant=tenant)
    live_tokens = [t for t in tokens if t.revoked_at is None]
    backup = next((t for t in live_tokens if t.purpose == TenantToken.Purpose.BACKUP), None)
    context = {
        "tenant": tenant,
        "names": stored_names(tenant),
        "tokens": tokens,
        "backup_token": backup,
        "connection": selectors.connection_details(tenant=tenant),
        "runs": selectors.tenant_runs(tenant=tenant, limit=5),
        "live_run": selectors.tenant_live_run(tenant=tenant),
        "audit": selectors.tenant_audit(tenant=tenant, limit=30),
        "acl_grants": list(tenant.acl_grants.order_by("auth_id", "role")),
        "labels": STEP_LABELS,
        "restore_form": RestoreTokenForm(),
        "suspend_form": SuspendForm(),
        "onboarded": tenant.status in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED),
    }
    return render(request, "tenants/detail.html", context)


def _lifecycle(request: HttpRequest, slug: str, action: Any, success: str) -> HttpResponse:
    tenant = _tenant(slug)
    try:
        action(tenant)
    except services.LifecycleError as exc:
        _lifecycle_message(request, exc)
    except ValidationError as exc:
        messages.error(request, _errors_text(exc))
    else:
        messages.success(request, success)
    return _redirect(request, reverse("tenants:detail", args=[slug]))


@staff_required
@require_POST
def tenant_suspend(request: HttpRequest, slug: str) -> HttpResponse:
    form = SuspendForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _lifecycle(
        request, slug,
        lambda t: services.tenant_suspend(tenant_id=t.pk, actor=request.user, reason=reason),
        "Suspended: backups stop, restores keep working.",
    )  # fmt: skip


@staff_required
@require_POST
def tenant_resume(request: HttpRequest, slug: str) -> HttpResponse:
    return _lifecycle(
        request, slug, lambda t: services.tenant_resume(tenant_id=t.pk, actor=request.user),
        "Resumed: backups work again.",
    )  # fmt: skip


@staff_required
@require_POST
def token_rotate(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(slug)
    try:
        token = services.tenant_token_rotate(tenant_id=tenant.pk, actor=request.user)
    except services.LifecycleError as exc:
        _lifecycle_message(request, exc)
        return _redirect(request, reverse("tenants:detail", args=[slug]))
    except ValidationError as exc:
        messages.error(request, _errors_text(exc))
        return _redirect(request, reverse("tenants:detail", args=[slug]))
    messages.success(request, "New backup token secret made; reveal it once and hand it over.")
    return _redirect(request, reverse("tenants:reveal", args=[slug, token.pk]))


@staff_required
@require_POST
def restore_token_new(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(slug)
    form = RestoreTokenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the restore token a name.")
        return _redirect(request, reverse("tenants:detail", args=[slug]))
    try:
        token = services.restore_token_create(
            tenant=tenant, name=form.cleaned_data["name"], days=form.cleaned_data["days"],
            actor=request.user, keep_secret=True, ip=client_ip(request),
        ).token  # fmt: skip
    except services.LifecycleError as exc:
        _lifecycle_message(request, exc)
    except ValidationError as exc:
        messages.error(request, _errors_text(exc))
    else:
        return _redirect(request, reverse("tenants:reveal", args=[slug, token.pk]))
    return _redirect(request, reverse("tenants:detail", args=[slug]))


@staff_required
@require_POST
def token_revoke(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    tenant = _tenant(slug)
    token = get_object_or_404(TenantToken, pk=token_id, tenant=tenant)
    try:
        services.token_revoke(token_id=token.pk, actor=request.user)
    except services.LifecycleError as exc:
        _lifecycle_message(request, exc)
    else:
        messages.success(request, f"{token.tokenid} revoked.")
    return _redirect(request, reverse("tenants:detail", args=[slug]))


@staff_required
@require_http_methods(["GET", "POST"])
def token_reveal(request: HttpRequest, slug: str, token_id: int) -> HttpResponse:
    """GET shows who may reveal and what happens; only a POST reveals (never in a URL)."""
    tenant = _tenant(slug)
    token = get_object_or_404(TenantToken.objects.select_related("revealed_by"), pk=token_id, tenant=tenant)
    context: dict[str, Any] = {
        "tenant": tenant,
        "token": token,
        "secret": None,
        "connection": selectors.connection_details(tenant=tenant, tokenid=token.tokenid),
    }
    if request.method == "POST":
        try:
            context["secret"] = services.token_reveal(token_id=token.pk, actor=request.user)
        except services.TokenAlreadyRevealed as exc:
            context["refused"] = str(exc)
        except ValidationError as exc:
            context["refused"] = _errors_text(exc)
        token.refresh_from_db()
    template = "tenants/reveal.html#secret" if wants_partial(request) else "tenants/reveal.html"
    response = render(request, template, context)
    # The page may carry a secret: never cache it anywhere.
    response["Cache-Control"] = "no-store"
    return response


@staff_required
@require_http_methods(["GET", "POST"])
def tenant_retention(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(slug)
    form = RetentionForm(request.POST) if request.method == "POST" else RetentionForm.for_tenant(tenant)
    if request.method == "POST" and form.is_valid():
        try:
            services.tenant_retention_update(tenant_id=tenant.pk, retention=form.retention(), actor=request.user)
        except ValidationError as exc:
            for field, errs in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, errs)
        except services.LifecycleError as exc:
            _lifecycle_message(request, exc)
            return redirect("tenants:detail", slug=slug)
        else:
            messages.success(request, "Retention updated; the prune job on PBS follows it.")
            return redirect("tenants:detail", slug=slug)
    return render(request, "tenants/retention.html", {"tenant": tenant, "form": form})


@admin_required
@require_http_methods(["GET", "POST"])
def tenant_offboard(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(slug)
    form = OffboardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            run, _ = services.tenant_offboard(
                tenant_id=tenant.pk, actor=request.user, confirm_slug=form.cleaned_data["confirm_slug"],
                delete_data=form.cleaned_data["delete_data"],
            )  # fmt: skip
        except ValidationError as exc:
            for field, errs in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            return redirect("tenants:run", slug=slug, run_id=run.pk)
    return render(request, "tenants/offboard.html", {"tenant": tenant, "form": form})


@staff_required
@require_POST
def tenant_drift(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(slug)
    try:
        services.tenant_drift_check(tenant_id=tenant.pk, actor=request.user)
    except services.LifecycleError as exc:
        _lifecycle_message(request, exc)
    tenant.refresh_from_db()
    if wants_partial(request):
        return render(request, "tenants/detail.html#drift", {"tenant": tenant, "onboarded": True})
    return redirect("tenants:detail", slug=slug)


@staff_required
@require_POST
def tenant_repair(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant(slug)
    try:
        run, _ = services.tenant_repair(tenant_id=tenant.pk, actor=request.user)
    except ValidationError as exc:
        messages.error(request, _errors_text(exc))
        return _redirect(request, reverse("tenants:detail", args=[slug]))
    return _redirect(request, reverse("tenants:run", args=[slug, run.pk]))
