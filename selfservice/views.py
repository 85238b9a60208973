"""Client self-service pages (/my/): backups, usage and invoices, connection details,
restore tokens, and the team page for the tenant's client admins.

Every view is for clients only and takes the tenant from ``request.tenant`` (the user's own),
never from the URL; objects addressed by id are looked up within that tenant, so another
tenant's id is simply not found.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.forms import InvitationForm
from accounts.http import client_ip
from accounts.models import Invitation, Role, User
from accounts.permissions import client_admin_required, client_required
from billing import document_views
from billing.selectors import tenant_invoices, usage_series
from core.htmx import wants_partial
from selfservice import selectors
from selfservice.forms import RestoreTokenForm
from tenants.models import TenantToken
from tenants.services import restore_tokens


@client_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant
    context = {
        "tenant": tenant,
        "connection": selectors.connection_details(tenant=tenant),
        "series": usage_series(tenant.pk, days=90),
        "invoices": tenant_invoices(tenant_id=tenant.pk, limit=12),
    }
    return render(request, "selfservice/home.html", context)


@client_required
@require_GET
def backups(request: HttpRequest) -> HttpResponse:
    """The tenant's backup groups, live from PBS (cached a minute). HTMX gets the fragment."""
    context = {"tenant": request.tenant, "backups": selectors.tenant_backups(tenant=request.tenant)}
    template = "selfservice/backups.html"
    if wants_partial(request):
        template += "#backups"
    return render(request, template, context)


def _tokens_context(request: HttpRequest, form: RestoreTokenForm | None = None) -> dict[str, Any]:
    tenant = request.tenant
    max_days = restore_tokens.restore_token_max_days(tenant)
    tokens = selectors.restore_token_rows(tenant_id=tenant.pk)
    return {
        "tenant": tenant,
        "tokens": tokens,
        "form": form or RestoreTokenForm(max_days=max_days),
        "max_days": max_days,
        "connection": selectors.connection_details(tenant=tenant),
    }


@client_required
@require_GET
def tokens(request: HttpRequest) -> HttpResponse:
    context = _tokens_context(request)
    template = "selfservice/tokens.html"
    if wants_partial(request):
        template += "#token_list"
    return render(request, template, context)


@client_required
@require_POST
@never_cache
@sensitive_variables("created", "context")
def token_create(request: HttpRequest) -> HttpResponse:
    """Create a restore token and show its secret in this response, once.

    Nothing is kept to show it again: the HTMX fragment (or, without JavaScript, the full
    page) carries the secret and is sent with no-store caching headers.
    """
    tenant = request.tenant
    form = RestoreTokenForm(request.POST, max_days=restore_tokens.restore_token_max_days(tenant))
    created = None
    if form.is_valid():
        try:
            created = restore_tokens.restore_token_create(
                tenant=tenant,
                name=form.cleaned_data["name"],
                days=form.cleaned_data["days"],
                actor=request.user,
                ip=client_ip(request),
            )
        except restore_tokens.RestoreTokenError as exc:
            form.add_error(None, str(exc))
    context = _tokens_context(request, None if created else form)
    context["created"] = created
    if wants_partial(request):
        # htmx 2 does not swap 4xx/5xx responses, so a refused create is a 200 fragment.
        return render(request, "selfservice/tokens.html#create_result", context)
    return render(request, "selfservice/tokens.html", context, status=201 if created else 400)


@client_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(
        TenantToken.objects.select_related("tenant__host"),
        pk=token_id,
        tenant=request.tenant,
        purpose=TenantToken.Purpose.RESTORE,
    )
    error = ""
    try:
        restore_tokens.restore_token_revoke(token=token, actor=request.user, ip=client_ip(request))
    except restore_tokens.RestoreTokenError as exc:
        error = str(exc)
    if wants_partial(request):
        context = _tokens_context(request)
        context["list_error"] = error
        return render(request, "selfservice/tokens.html#token_list", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Token {selectors.restore_token_label(token)} revoked.")
    return redirect("selfservice:tokens")


# --- team (client admins) ------------------------------------------------------------


def _team_context(request: HttpRequest, form: InvitationForm | None = None) -> dict[str, Any]:
    tenant = request.tenant
    return {
        "tenant": tenant,
        "users": list(account_selectors.tenant_users(tenant_id=tenant.pk)),
        "invitations": list(account_selectors.tenant_invitations_open(tenant_id=tenant.pk)),
        "form": form or InvitationForm(),
        "invite_ttl_hours": settings.PORTAL_INVITE_TTL_HOURS,
    }


@client_admin_required
@require_GET
def team(request: HttpRequest) -> HttpResponse:
    return render(request, "selfservice/team.html", _team_context(request))


@client_admin_required
@require_POST
def team_invite(request: HttpRequest) -> HttpResponse:
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            account_services.invitation_create(
                tenant=request.tenant,
                email=form.cleaned_data["email"],
                is_tenant_admin=form.cleaned_data["is_tenant_admin"],
                actor=request.user,
                ip=client_ip(request),
            )
        except account_services.InvitationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("selfservice:team")
    return render(request, "selfservice/team.html", _team_context(request, form), status=400)


@client_admin_required
@require_POST
def team_remove(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id, tenant=request.tenant, role=Role.CLIENT)
    try:
        account_services.tenant_user_remove(user=member, actor=request.user, ip=client_ip(request))
    except account_services.InvitationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"User {member.get_username()} removed.")
    return redirect("selfservice:team")


@client_admin_required
@require_POST
def team_invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(
        Invitation.objects.select_related("tenant"), pk=invitation_id, tenant=request.tenant
    )
    account_services.invitation_revoke(invitation=invitation, actor=request.user, ip=client_ip(request))
    messages.success(request, f"Invitation for {invitation.email} withdrawn.")
    return redirect("selfservice:team")


@client_required
@require_GET
def invoice_pdf(request: HttpRequest, number: str) -> HttpResponse:
    """The tenant's own invoice as a PDF; another tenant's number is simply not found."""
    return document_views.invoice_pdf_for(number=number, tenant_id=request.tenant.pk)  # type: ignore[attr-defined]


@client_required
@require_GET
def credit_note_pdf(request: HttpRequest, number: str) -> HttpResponse:
    return document_views.credit_note_pdf_for(number=number, tenant_id=request.tenant.pk)  # type: ignore[attr-defined]
