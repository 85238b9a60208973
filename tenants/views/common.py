"""Staff pages of tenants and hosts: helpers shared by the views."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from core.htmx import wants_partial
from tenants import selectors, services
from tenants.models import Tenant

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
