"""PDF downloads of invoices and credit notes (staff side; clients use /my/ or these).

Who may download follows the invoice page: MSP admins and accounting any document, a client
only its own tenant's (another tenant's is a 404, so its existence stays hidden), every
other role 403.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from accounts.permissions import ACCOUNTING, CLIENT, has_role
from billing.documents import (
    PDF_CONTENT_TYPE,
    credit_note_for_pdf,
    credit_note_pdf,
    invoice_for_pdf,
    invoice_pdf,
    pdf_filename,
)


def pdf_response(content: bytes, number: str) -> HttpResponse:
    response = HttpResponse(content, content_type=PDF_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{pdf_filename(number)}"'
    response["Cache-Control"] = "no-store"
    return response


def _allowed_tenant(request: HttpRequest) -> int | None:
    """None: any tenant's document; a tenant id: only that one's. Raises for other roles."""
    if has_role(request.user, ACCOUNTING):
        return None
    if has_role(request.user, CLIENT):
        return request.user.tenant_id  # type: ignore[union-attr]
    raise PermissionDenied("your role may not open invoices")


@require_GET
def invoice_pdf_download(request: HttpRequest, number: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    invoice = invoice_for_pdf(number=number, tenant_id=_allowed_tenant(request))
    if invoice is None:
        raise Http404("no such invoice")
    return pdf_response(invoice_pdf(invoice), invoice.number)


@require_GET
def credit_note_pdf_download(request: HttpRequest, number: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    credit = credit_note_for_pdf(number=number, tenant_id=_allowed_tenant(request))
    if credit is None:
        raise Http404("no such credit note")
    return pdf_response(credit_note_pdf(credit), credit.number)
