"""Staff pages of one tenant's client users: who has access, open invitations, invite more.

The account rules (invitations, removal) are the accounts app's services; the pages are about
a tenant, so they live here, above accounts. Their URLs keep their place under /accounts/.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import InvitationForm
from accounts.http import client_ip
from accounts.permissions import staff_required
from tenants.models import Tenant


def _team_context(tenant: Tenant, form: InvitationForm | None = None) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "users": list(selectors.tenant_users(tenant_id=tenant.pk)),
        "invitations": list(selectors.tenant_invitations_open(tenant_id=tenant.pk)),
        "form": form or InvitationForm(),
        "invite_ttl_hours": settings.PORTAL_INVITE_TTL_HOURS,
    }


@staff_required
def tenant_users(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    return render(request, "accounts/tenant_users.html", _team_context(tenant))


@staff_required
@require_POST
def tenant_user_invite(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create(
                tenant=tenant,
                email=form.cleaned_data["email"],
                is_tenant_admin=form.cleaned_data["is_tenant_admin"],
                actor=request.user,
                ip=client_ip(request),
            )
        except services.InvitationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("team:tenant_users", tenant_id=tenant.pk)
    return render(request, "accounts/tenant_users.html", _team_context(tenant, form), status=400)


