"""Staff pages: PBS hosts and their datastores."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import admin_required, staff_required
from tenants import selectors, services
from tenants.forms import (
    DatastoreForm,
    HostFingerprintForm,
    HostRegisterForm,
)
from tenants.models import Datastore, PbsHost, Tenant
from tenants.views.common import _errors_text, _lifecycle_message, _redirect


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
@sensitive_post_parameters("token_secret", "metering_secret")
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
