"""Usage panels, loaded lazily (HTMX) into the staff tenant page, the client page and the host page.

Thin: check access, build one panel, render. Staff and accounting see any tenant's figures
and any datastore's split; a client sees only its own tenant (no id in the URL to change).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.permissions import client_required, staff_or_accounting_required
from attribution.panels import datastore_panel, tenant_panel
from tenants.models import Datastore, Tenant


@staff_or_accounting_required
def tenant_usage(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant.objects.select_related("host", "datastore"), pk=tenant_id)
    return render(request, "attribution/_tenant_panel.html", {"panel": tenant_panel(tenant=tenant)})


@client_required
def my_usage(request: HttpRequest) -> HttpResponse:
    tenant = Tenant.objects.select_related("host", "datastore").get(pk=request.tenant.pk)  # type: ignore[attr-defined]
    return render(request, "attribution/_tenant_panel.html", {"panel": tenant_panel(tenant=tenant)})


@staff_or_accounting_required
def datastore_usage(request: HttpRequest, datastore_id: int) -> HttpResponse:
    datastore = get_object_or_404(Datastore.objects.select_related("host"), pk=datastore_id)
    return render(request, "attribution/_datastore_panel.html", {"panel": datastore_panel(datastore=datastore)})
