"""Staff pages for tenants and PBS hosts (HTMX). Thin: parse, check access, call one service
or selector, render. Partials live inside their page ({% partialdef %}) and are rendered as
"tenants/<page>.html#<partial>" for non-boosted HTMX requests."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from accounts.http import client_ip
from accounts.permissions import admin_required, staff_or_accounting_required, staff_required
from core.htmx import wants_partial
from plans.models import Plan
from tenants import selectors, services
from tenants.forms import (
    DatastoreForm,
    HostFingerprintForm,
    HostRegisterForm,
    OffboardForm,
    RestoreTokenForm,
    RetentionForm,
    SuspendForm,
    TenantCreateForm,
)
from tenants.models import Datastore, OnboardingRun, PbsHost, Tenant, TenantToken
from tenants.naming import stored_names, tenant_names
from tenants.onboarding import STEP_LABELS

PAGE_SIZE = 50



def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    if wants_partial(request):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _errors_text(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(f"{msg}" for msgs in exc.message_dict.values() for msg in msgs)
    return " ".join(exc.messages)


def _lifecycle_message(request: HttpRequest, exc: services.LifecycleError) -> None:
    messages.error(request, f"{exc.message} {exc.hint}".strip())


def _tenant(slug: str) -> Tenant:
    try:
        return selectors.tenant_get(slug=slug)
    except Tenant.DoesNotExist:
        raise Http404("no such tenant") from None


# --- tenant list ------------------------------------------------------------------------------


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@staff_or_accounting_required
@require_GET
def tenant_list(request: HttpRequest) -> HttpResponse:
    """Search, filters (host, status, plan), pagination: a constant number of queries."""
    q = request.GET.get("q", "")[:100]
    host_id = _int_or_none(request.GET.get("host"))
    status = request.GET.get("status", "")
    status = status if status in Tenant.Status.values else ""
    plan_id = _int_or_none(request.GET.get("plan"))
    qs = selectors.tenant_list(search=q, host_id=host_id, status=status, plan_id=plan_id)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "page": page,
        "tenants": list(page.object_list),
        "q": q,
        "host_id": host_id,
        "status": status,
        "plan_id": plan_id,
        "query_string": params.urlencode(),
        "hosts": list(PbsHost.objects.only("id", "name").order_by("name")),
        "plans": list(Plan.objects.only("id", "name").order_by("name")),
        "statuses": Tenant.Status.choices,
        "can_edit": request.user.is_msp_staff,
    }
    template = "tenants/list.html#results" if wants_partial(request) else "tenants/list.html"
    return render(request, template, context)


# --- create and onboard -----------------------------------------------------------------------


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
            tenant = services.tenant_create(
                slug=data["slug"], name=data["name"], actor=request.user,
                contact_name=data["contact_name"], contact_email=data["contact_email"],
                plan=data["plan"], host=host, datastore=datastore, retention=form.retention(),
            )  # fmt: skip
        except ValidationError as exc:
            for field, field_errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, field_errors)
        else:
            if data["start_now"]:
                run, _ = services.tenant_onboard(tenant_id=tenant.pk, actor=request.user)
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


# --- tenant page ------------------------------------------------------------------------------


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


# --- hosts ------------------------------------------------------------------------------------


@staff_required
@require_GET
def host_list(request: HttpRequest) -> HttpResponse:
    return render(request, "tenants/hosts.html", {"hosts": selectors.host_list()})


def _host(name: str) -> PbsHost:
    try:
        return selectors.host_get(name=name)
    except PbsHost.DoesNotExist:
        raise Http404("no such host") from None


@staff_required
@require_GET
def host_detail(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(name)
    context = {
        "host": host,
        "datastores": list(host.datastores.all()),
        "candidates": {c.datastore.pk: c for c in selectors.placement_candidates(host=host)},
        "fingerprint_form": HostFingerprintForm(initial={"fingerprint": host.fingerprint}),
        "tenant_count": host.tenants.exclude(status=Tenant.Status.OFFBOARDED).count(),
        "repairable": any(f.get("repairable") for f in host.drift_findings),
    }
    return render(request, "tenants/host_detail.html", context)


@staff_required
@require_POST
def host_check(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(name)
    host = services.pbshost_check(host_id=host.pk, actor=request.user)
    if host.last_error:
        messages.error(request, f"Health check of {host.name} failed: {host.last_error}")
    else:
        messages.success(request, f"{host.name} is healthy (PBS {host.pbs_version}).")
    return _redirect(request, reverse("tenants:host", args=[name]))


@staff_required
@require_POST
def host_drift(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(name)
    try:
        findings = services.pbshost_drift_check(host_id=host.pk, actor=request.user)
    except services.LifecycleError as exc:
        _lifecycle_message(request, exc)
    else:
        messages.success(request, f"Drift check done: {len(findings)} finding(s).")
    return _redirect(request, reverse("tenants:host", args=[name]))


@staff_required
@require_POST
def host_repair(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(name)
    runs = services.pbshost_repair(host_id=host.pk, actor=request.user)
    messages.success(request, f"Repair started for {len(runs)} tenant(s).")
    return _redirect(request, reverse("tenants:host", args=[name]))


@admin_required
@require_http_methods(["GET", "POST"])
def host_new(request: HttpRequest) -> HttpResponse:
    form = HostRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            host = services.pbshost_register(
                name=data["name"], url=data["url"], token_id=data["token_id"],
                token_secret=data["token_secret"], fingerprint=data["fingerprint"],
                ca_pem=data["ca_pem"], metering_token_id=data["metering_token_id"],
                metering_secret=data["metering_secret"], public_address=data["public_address"],
                actor=request.user,
            )  # fmt: skip
        except ValidationError as exc:
            for field, errs in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, errs)
        except services.LifecycleError as exc:
            form.add_error(None, f"{exc.message} {exc.hint}".strip())
        else:
            messages.success(request, f"Host {host.name} registered.")
            return redirect("tenants:host", name=host.name)
    return render(request, "tenants/host_new.html", {"form": form})


@admin_required
@require_POST
def host_fingerprint(request: HttpRequest, name: str) -> HttpResponse:
    host = _host(name)
    form = HostFingerprintForm(request.POST)
    if form.is_valid():
        try:
            services.pbshost_update(host_id=host.pk, fingerprint=form.cleaned_data["fingerprint"], actor=request.user)
        except ValidationError as exc:
            messages.error(request, _errors_text(exc))
        else:
            services.pbshost_check(host_id=host.pk, actor=request.user)
            messages.success(request, "Fingerprint updated and checked.")
    return redirect("tenants:host", name=name)


@admin_required
@require_POST
def datastore_update(request: HttpRequest, name: str, datastore_id: int) -> HttpResponse:
    host = _host(name)
    store = get_object_or_404(Datastore, pk=datastore_id, host=host)
    form = DatastoreForm(request.POST)
    if form.is_valid():
        services.datastore_update(
            datastore_id=store.pk, enabled=form.cleaned_data["enabled"],
            placement_weight=form.cleaned_data["placement_weight"], actor=request.user,
        )  # fmt: skip
        messages.success(request, f"{store.name} updated.")
    else:
        messages.error(request, "Weight must be 0..1000.")
    return redirect("tenants:host", name=name)
