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
from billing.documents import PDF_CONTENT_TYPE, credit_note_pdf, invoice_pdf, pdf_filename
from billing.selectors.invoices import credit_note_get, invoice_get


def pdf_response(content: bytes, number: str) -> HttpResponse:
    response = HttpResponse(content, content_type=PDF_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{pdf_filename(number)}"'
    response["Cache-Control"] = "no-store"
    return response


def document_tenant_scope(user: object) -> int | None:
    """Whose invoices and credit notes ``user`` may open (the invoice page's rule too): None
    for any tenant's (admins, accounting), a tenant id for a client; other roles are refused."""
    if has_role(user, ACCOUNTING):
        return None
    if has_role(user, CLIENT):
        return user.tenant_id  # type: ignore[attr-defined]
    raise PermissionDenied("your role may not open invoices")


def invoice_pdf_for(*, number: str, tenant_id: int | None) -> HttpResponse:
    """The invoice ``number`` as a PDF download; only ``tenant_id``'s when given (404 otherwise)."""
    invoice = invoice_get(number=number, tenant_id=tenant_id)
    if invoice is None:
        raise Http404("no such invoice")
    return pdf_response(invoice_pdf(invoice), invoice.number)


def credit_note_pdf_for(*, number: str, tenant_id: int | None) -> HttpResponse:
    """The credit note ``number`` as a PDF download; only ``tenant_id``'s when given (404 otherwise)."""
    credit = credit_note_get(number=number, tenant_id=tenant_id)
    if credit is None:
        raise Http404("no such credit note")
    return pdf_response(credit_note_pdf(credit), credit.number)


@require_GET
def invoice_pdf_download(request: HttpRequest, number: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return invoice_pdf_for(number=number, tenant_id=document_tenant_scope(request.user))


@require_GET
def credit_note_pdf_download(request: HttpRequest, number: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return credit_note_pdf_for(number=number, tenant_id=document_tenant_scope(request.user))
