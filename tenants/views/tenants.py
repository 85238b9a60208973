"""Staff pages: the create-and-onboard form with its live progress. (The tenant list, with
figures of the apps above tenants, is served by the overview app.)"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from accounts.permissions import staff_required
from core.htmx import wants_partial
from tenants import selectors, services
from tenants.forms import (
    TenantCreateForm,
)
from tenants.models import OnboardingRun, Tenant
from tenants.naming import tenant_names
from tenants.onboarding import STEP_LABELS
from tenants.views.common import _errors_text, _redirect, _tenant


def _preview(form: TenantCreateForm) -> dict[str, Any]:
    """Derived PBS names and field errors for the as-you-type panel."""
    slug = (form.data.get("slug") or "").strip()
    host, datastore = (None, None)
    if form.is_valid() or "placement" in form.cleaned_data:
        host, datastore = form.placement_target()
    errors = services.tenant_validate(slug=slug, name=None, datastore=datastore) if slug else {}
    if form.is_bound:
        for name, field_errors in form.errors.items():
            # While typing, an empty field is not an error yet (the submit says so).
            if name != "slug" and form.data.get(name):
                errors.setdefault(name, []).extend(field_errors)
    if form.is_valid():
        errors.update(services.retention_problems(form.retention()))
    names = tenant_names(slug) if slug and "slug" not in errors else None
    store_label = datastore.name if datastore else "<store>"
    return {
        "errors": errors,
        "names": names,
        "acl_path": names.acl_path(store_label) if names else "",
        "placement_hint": (
            f"{datastore.host.name} / {datastore.name}" if datastore
            else (f"best datastore on {host.name}" if host else "best datastore of any host")
        ),
    }  # fmt: skip


@staff_required
@require_http_methods(["GET", "POST"])
def tenant_new(request: HttpRequest) -> HttpResponse:
    form = TenantCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        host, datastore = form.placement_target()
        data = form.cleaned_data
        try:
            tenant, run = services.tenant_create_request(
                slug=data["slug"], name=data["name"], actor=request.user,
                contact_name=data["contact_name"], contact_email=data["contact_email"],
                plan=data["plan"], host=host, datastore=datastore, retention=form.retention(),
                onboard=data["start_now"],
            )  # fmt: skip
        except ValidationError as exc:
            for field, field_errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, field_errors)
        else:
            if run is not None:
                return redirect("tenants:run", slug=tenant.slug, run_id=run.pk)
            messages.success(request, f"Tenant {tenant.slug} created; start onboarding when ready.")
            return redirect("tenants:detail", slug=tenant.slug)
    context = {"form": form, "preview": _preview(form) if form.is_bound else None}
    return render(request, "tenants/new.html", context)


@staff_required
@require_POST
def tenant_validate(request: HttpRequest) -> HttpResponse:
    """As-you-type validation: derived PBS names and what PBS would refuse."""
    form = TenantCreateForm(request.POST)
    return render(request, "tenants/new.html#preview", {"preview": _preview(form), "form": form})


@staff_required
@require_POST
def tenant_onboard(request: HttpRequest, slug: str) -> HttpResponse:
    """Start onboarding, or retry after a failure (a new run; done steps are found done)."""
    tenant = _tenant(slug)
    kind = OnboardingRun.Kind.ONBOARD
    if tenant.status in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        kind = OnboardingRun.Kind.REPAIR
    try:
        run, _ = services.tenant_onboard(tenant_id=tenant.pk, actor=request.user, kind=kind)
    except ValidationError as exc:
        messages.error(request, _errors_text(exc))
        return _redirect(request, reverse("tenants:detail", args=[slug]))
    return _redirect(request, reverse("tenants:run", args=[slug, run.pk]))


@staff_required
@require_GET
def run_detail(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """Progress of a run; the progress partial polls every second until the run ends."""
    try:
        run = selectors.onboarding_run_get(run_id=run_id)
    except OnboardingRun.DoesNotExist:
        raise Http404("no such run") from None
    if run.tenant.slug != slug:
        raise Http404("no such run")
    finished = run.status not in (OnboardingRun.Status.QUEUED, OnboardingRun.Status.RUNNING)
    backup_token = selectors.tenant_live_backup_token(tenant=run.tenant) if finished else None
    context = {
        "run": run,
        "tenant": run.tenant,
        "steps": run.steps.all(),
        "labels": STEP_LABELS,
        "finished": finished,
        "backup_token": backup_token,
    }
    if wants_partial(request):
        response = render(request, "tenants/run.html#progress", context)
        if finished:
            stop = HttpResponseStopPolling(response.content)
            return stop
        return response
    return render(request, "tenants/run.html", context)


@staff_required
@require_POST
def run_retry(request: HttpRequest, slug: str, run_id: int) -> HttpResponse:
    """Retry a failed run: a new run of the same kind; done steps are found done."""
    tenant = _tenant(slug)
    run = get_object_or_404(OnboardingRun, pk=run_id, tenant=tenant)
    try:
        new_run, _ = services.tenant_onboard(
            tenant_id=tenant.pk, actor=request.user, kind=run.kind, options=run.options
        )
    except ValidationError as exc:
        messages.error(request, _errors_text(exc))
        return _redirect(request, reverse("tenants:detail", args=[slug]))
    return _redirect(request, reverse("tenants:run", args=[slug, new_run.pk]))
