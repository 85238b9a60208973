"""Invoice and credit note PDFs: what they hold, and who may download them."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import zlib

import pytest
from django.urls import reverse

from billing.documents import credit_note_pdf, invoice_pdf, pdf_text
from billing.models import Invoice
from billing.services.close import billing_period_close
from billing.services.corrections import invoice_correct
from tests.billing.factories import GIB, days_of, make_plan, make_sample

pytestmark = pytest.mark.django_db


def pdf_strings(data: bytes) -> str:
    """The text a PDF shows: every literal string of its (Flate-compressed) content streams,
    joined by single spaces (so a wrapped line reads as one).

    Enough for what fpdf2 writes with the core fonts: ``(text) Tj``, parentheses escaped. It
    also checks what a reader needs to open the file: the header, and the cross-reference
    table where the trailer says it is."""
    assert data.startswith(b"%PDF-"), data[:20]
    # A reader starts at the end: "startxref" must point at the cross-reference table.
    tail = data[-64:]
    assert tail.rstrip().endswith(b"%%EOF"), tail
    offset = int(re.search(rb"startxref\s+(\d+)", tail).group(1))
    assert data[offset : offset + 4] == b"xref", data[offset : offset + 16]
    found = []
    # Not "\r?\nendstream": compressed bytes may end in "\r", which that would cut off.
    for match in re.finditer(rb"stream\r?\n(.*?)\nendstream", data, re.S):
        body = match.group(1)
        with contextlib.suppress(zlib.error):
            body = zlib.decompressobj().decompress(body)  # a trailing end-of-line is left unused
        for literal in re.finditer(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", body):
            found.append(re.sub(rb"\\(.)", rb"\1", literal.group(1)).decode("latin-1"))
    return re.sub(r"\s+", " ", " ".join(found))


@pytest.fixture
def issued(tenant_a, tenant_b, settings) -> tuple[Invoice, Invoice]:
    """January 2025 closed: one invoice for tenant A, one for tenant B."""
    settings.PORTAL_COMPANY_NAME = "Harbour Backup Services Ltd"
    settings.PORTAL_COMPANY_ADDRESS = "1 Harbour Road | D02 XY12 Dublin"
    plan = make_plan(name="Standard", included_gib="10", price_per_gib="0.05", base_fee="10", currency="EUR")
    for tenant, gib in ((tenant_a, 300), (tenant_b, 40)):
        tenant.plan = plan
        tenant.activated_at = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
        tenant.save()
        for day in days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31)):
            if day.day != 15:  # one gap
                make_sample(tenant=tenant, day=day, logical=gib * GIB)
    billing_period_close(period="2025-01")
    return Invoice.objects.get(tenant=tenant_a), Invoice.objects.get(tenant=tenant_b)


def test_invoice_pdf_holds_issuer_customer_lines_method_and_total(issued) -> None:
    invoice, _ = issued
    text = pdf_strings(invoice_pdf(invoice))
    assert "Harbour Backup Services Ltd" in text
    assert "D02 XY12 Dublin" in text
    assert invoice.number in text
    assert invoice.client_name in text
    assert "2025-01" in text
    for line in invoice.lines.all():
        assert line.description in text
        assert f"{line.amount:,.2f}" in text
    # 300 GiB all month, 10 included: 290 x 0.05 = 14.50 plus the 10.00 base fee.
    assert invoice.total == 24.5
    assert "24.50 EUR" in text
    assert "30 measured, 1 without a measurement" in text
    assert "1 GiB = 2^30 bytes" in text
    assert "Method of measurement" in text


def test_credit_note_pdf_names_the_invoice_reason_and_amount(issued) -> None:
    invoice, _ = issued
    other_plan = make_plan(name="Efficient", price_per_gib="0.04", currency="EUR")
    correction = invoice_correct(invoice=invoice, reason="Billed on the wrong plan", actor=None, plan=other_plan)
    text = pdf_strings(credit_note_pdf(correction.credit_note))
    assert "CREDIT NOTE" in text
    assert correction.credit_note.number in text
    assert invoice.number in text
    assert "Billed on the wrong plan" in text
    assert "Credited amount: 24.50 EUR" in text
    assert correction.invoice is not None
    assert correction.invoice.number in text
    # The credited invoice says so on its own PDF, the new one names what it replaces.
    invoice.refresh_from_db()
    assert correction.credit_note.number in pdf_strings(invoice_pdf(invoice))
    assert invoice.number in pdf_strings(invoice_pdf(correction.invoice))


def test_text_outside_latin1_is_transliterated() -> None:
    # A Polish city, an en dash, a German name, curly quotes and the euro sign: Latin-1 letters
    # stay, the rest is spelled out or transliterated.
    text = "\u0141\u00f3d\u017a \u2013 M\u00fcller \u201cGmbH\u201d \u20ac"
    assert pdf_text(text) == 'L\u00f3dz - M\u00fcller "GmbH" EUR'


@pytest.mark.parametrize("role_fixture", ["accounting_user", "staff_user"])
def test_accounting_and_admins_download_any_invoice(client, request, issued, role_fixture: str) -> None:
    client.force_login(request.getfixturevalue(role_fixture))
    for invoice in issued:
        response = client.get(reverse("billing:invoice_pdf", args=[invoice.number]))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
        assert response["Cache-Control"] == "no-store"
        assert invoice.number in pdf_strings(response.content)


def test_a_client_downloads_its_own_invoice_only(client, client_a, issued) -> None:
    own, other = issued
    client.force_login(client_a)
    for name in ("billing:invoice_pdf", "selfservice:invoice_pdf"):
        response = client.get(reverse(name, args=[own.number]))
        assert response.status_code == 200, name
        assert own.number in pdf_strings(response.content)
        assert client.get(reverse(name, args=[other.number])).status_code == 404, name
    assert client.get(reverse("selfservice:invoice_pdf", args=["INV-1999-000001"])).status_code == 404


def test_a_client_downloads_its_own_credit_note_only(client, client_a, client_b, issued) -> None:
    own, _ = issued
    credit = invoice_correct(invoice=own, reason="Cancelled", actor=None, reissue=False).credit_note
    client.force_login(client_a)
    for name in ("billing:credit_note_pdf", "selfservice:credit_note_pdf"):
        response = client.get(reverse(name, args=[credit.number]))
        assert response.status_code == 200, name
        assert "Credited amount: 24.50 EUR" in pdf_strings(response.content)
    client.force_login(client_b)
    for name in ("billing:credit_note_pdf", "selfservice:credit_note_pdf"):
        assert client.get(reverse(name, args=[credit.number])).status_code == 404, name


def test_operators_are_refused_and_anonymous_users_sent_to_sign_in(client, operator_user, issued) -> None:
    invoice, _ = issued
    url = reverse("billing:invoice_pdf", args=[invoice.number])
    response = client.get(url)
    assert response.status_code == 302
    assert "login" in response["Location"]
    client.force_login(operator_user)
    assert client.get(url).status_code == 403
    assert client.get(reverse("selfservice:invoice_pdf", args=[invoice.number])).status_code in (302, 403)


def test_invoice_pages_link_the_pdf(client, accounting_user, client_a, issued) -> None:
    invoice, _ = issued
    client.force_login(accounting_user)
    page = client.get(reverse("billing:invoice", args=[invoice.number])).content.decode()
    assert reverse("billing:invoice_pdf", args=[invoice.number]) in page
    client.force_login(client_a)
    home = client.get(reverse("selfservice:home")).content.decode()
    assert reverse("selfservice:invoice_pdf", args=[invoice.number]) in home


def test_a_chunk_metric_invoice_pdf_states_its_method_estimate_days_and_chunk_averages(tenant_a) -> None:
    plan = make_plan(name="Chunk", metric="chunk", price_per_gib="0.05", currency="EUR")
    tenant_a.plan = plan
    tenant_a.activated_at = dt.datetime(2024, 12, 1, tzinfo=dt.UTC)
    tenant_a.save()
    for day in days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31)):
        sample = make_sample(tenant=tenant_a, day=day, logical=9 * GIB, physical=3 * GIB)
        if day.day > 3:  # the first three days have no chunk-exact figure: billed on the estimate
            sample.referenced_bytes, sample.exclusive_bytes = 5 * GIB, 2 * GIB
            sample.share_bytes, sample.physical_share_bytes = 4 * GIB, 2 * GIB
            sample.chunk_day = day
            sample.save()
    billing_period_close(period="2025-01")
    invoice = Invoice.objects.get(tenant=tenant_a)

    text = pdf_strings(invoice_pdf(invoice))

    assert invoice.method in text
    assert "physical estimate on 3 of 31 days" in text
    assert f"referenced {invoice.referenced_gib:,.2f} GiB" in text
    assert f"share {invoice.share_gib:,.2f} GiB" in text
