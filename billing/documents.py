"""Invoices and credit notes as PDF files an accountant can file.

Built with fpdf2 from the frozen document rows only (``Invoice``, its lines, ``CreditNote``),
so a PDF made today and one made in five years are the same apart from the creation date.
The issuer comes from ``PORTAL_COMPANY_NAME`` and ``PORTAL_COMPANY_ADDRESS``. The PDF core
fonts cover Latin-1; other characters are transliterated (``Łódź`` -> ``Lódz``) or replaced.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from billing.models import CreditNote, Invoice
from billing.selectors.invoices import invoice_replacement

PDF_CONTENT_TYPE = "application/pdf"

# Characters the Latin-1 core fonts lack, with what an accountant would write instead.
_REPLACEMENTS = str.maketrans(
    {
        "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
        "\u2026": "...", "\u20ac": "EUR", "\u2022": "-", "\u00a0": " ",
        "\u0141": "L", "\u0142": "l", "\u0110": "D", "\u0111": "d", "\u0152": "OE", "\u0153": "oe",
    }
)  # fmt: skip

_MARGIN = 18
_LINE_WIDTHS = (10, 78, 22, 14, 26, 24)  # #, description, quantity, unit, unit price, amount


def pdf_text(value: object) -> str:
    """``value`` as text the core fonts can print."""
    text = str(value).translate(_REPLACEMENTS)
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        text = "".join(
            ch if ord(ch) < 256 else (unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?")
            for ch in text
        )
    return text


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _price(value: Decimal) -> str:
    """A unit price: at least the cents, more decimals only where the price has them."""
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return f"{value.normalize():,f}"
    return f"{value:,.2f}"


def company_lines() -> list[str]:
    address = str(settings.PORTAL_COMPANY_ADDRESS or "").replace("|", "\n")
    return [settings.PORTAL_COMPANY_NAME, *(line.strip() for line in address.splitlines() if line.strip())]


class _Document(FPDF):
    def __init__(self, *, title: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.document_title = title
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=20)
        self.set_title(title)
        self.set_author(pdf_text(settings.PORTAL_COMPANY_NAME))
        self.set_creator("PBS portal")
        self.add_page()

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110)
        self.cell(0, 5, pdf_text(f"{self.document_title} - page {self.page_no()}/{{nb}}"), align="C")
        self.set_text_color(0)

    def text_line(self, text: str, *, size: float = 10, style: str = "", height: float = 5.0) -> None:
        self.set_font("Helvetica", style=style, size=size)
        self.cell(0, height, pdf_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def paragraph(self, text: str, *, size: float = 9) -> None:
        self.set_font("Helvetica", size=size)
        self.multi_cell(0, 4.5, pdf_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, kind: str, number: str, facts: list[tuple[str, str]]) -> None:
        """Issuer top left, the document kind, number and dates top right, then a rule."""
        top = self.get_y()
        for index, line in enumerate(company_lines()):
            self.text_line(line, size=13 if index == 0 else 9, style="B" if index == 0 else "")
        left_bottom = self.get_y()
        self.set_xy(110, top)
        self.set_font("Helvetica", style="B", size=16)
        self.cell(0, 8, pdf_text(kind), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        self.set_font("Helvetica", size=9)
        for label, value in [("Number", number), *facts]:
            self.set_x(110)
            self.cell(0, 5, pdf_text(f"{label}: {value}"), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
        self.set_y(max(left_bottom, self.get_y()) + 4)
        self.line(_MARGIN, self.get_y(), self.w - _MARGIN, self.get_y())
        self.ln(4)

    def key_values(self, rows: list[tuple[str, str]], *, label_width: float = 42) -> None:
        for label, value in rows:
            self.set_font("Helvetica", style="B", size=9)
            self.cell(label_width, 5, pdf_text(label))
            self.set_font("Helvetica", size=9)
            self.multi_cell(0, 5, pdf_text(value), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _customer(invoice: Invoice) -> list[tuple[str, str]]:
    return [
        ("Customer", invoice.client_name),
        ("Customer reference", invoice.tenant_slug),
        ("Storage", " / ".join(part for part in (invoice.host_name, invoice.datastore, invoice.namespace) if part)),
    ]


def _lines_table(pdf: _Document, invoice: Invoice) -> None:
    headers = ("#", "Description", "Quantity", "Unit", "Unit price", "Amount")
    aligns = ("R", "L", "R", "L", "R", "R")
    pdf.set_font("Helvetica", style="B", size=9)
    pdf.set_fill_color(235)
    for width, header, align in zip(_LINE_WIDTHS, headers, aligns, strict=True):
        pdf.cell(width, 7, header, border="B", align=align, fill=True)
    pdf.ln()
    pdf.set_font("Helvetica", size=9)
    for line in invoice.lines.all():
        values = (
            str(line.position), line.description, f"{line.quantity:,.2f}", line.unit,
            _price(line.unit_price), f"{line.amount:,.2f}",
        )  # fmt: skip
        # The description may wrap; the row is as tall as its lines.
        wrapped = pdf.multi_cell(_LINE_WIDTHS[1], 5, pdf_text(values[1]), dry_run=True, output="LINES")
        if pdf.will_page_break(5 * len(wrapped) + 1):
            pdf.add_page()
        top = pdf.get_y()
        pdf.set_xy(_MARGIN + _LINE_WIDTHS[0], top)
        pdf.multi_cell(_LINE_WIDTHS[1], 5, pdf_text(values[1]), align="L", new_x=XPos.RIGHT, new_y=YPos.TOP)
        bottom = top + 5 * len(wrapped) + 1
        x = _MARGIN
        for index, (width, value, align) in enumerate(zip(_LINE_WIDTHS, values, aligns, strict=True)):
            if index != 1:
                pdf.set_xy(x, top)
                pdf.cell(width, 5, pdf_text(value), align=align)
            x += width
        pdf.set_xy(_MARGIN, bottom)
        pdf.line(_MARGIN, pdf.get_y(), pdf.w - _MARGIN, pdf.get_y())
    pdf.ln(1)
    pdf.set_font("Helvetica", style="B", size=10)
    pdf.cell(sum(_LINE_WIDTHS[:-1]), 7, "Total", align="R")
    pdf.cell(_LINE_WIDTHS[-1], 7, pdf_text(money(invoice.total, invoice.currency)), align="R",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.set_font("Helvetica", size=8)
    pdf.cell(0, 4, "Net amounts; no tax is added.", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _method(invoice: Invoice) -> str:
    text = (
        # The method in the words of the invoice page (billing.methods owns them).
        f"Billed measure: {invoice.method}. The portal measures the storage once a "
        f"day; the billed quantity is the average over the {invoice.active_days} active "
        f"day{'' if invoice.active_days == 1 else 's'} from {invoice.first_day:%Y-%m-%d} to "
        f"{invoice.last_day:%Y-%m-%d}: {invoice.samples} measured, {invoice.gaps} without a measurement "
        "(those count the last value measured before them). "
        f"Average {invoice.avg_gib:,.6f} GiB, rounded half-up to {invoice.billed_gib:,.2f} GiB; peak "
        f"{invoice.peak_gib:,.2f} GiB. Plan {invoice.plan_name}: {invoice.included_gib:,.2f} GiB included, "
        f"then {_price(invoice.unit_price)} {invoice.currency} per GiB-month. 1 GiB = 2^30 bytes "
        "(1,073,741,824). Each line is rounded half-up to the cent; the total is the sum of the lines."
    )
    if invoice.share_gib is not None:
        text += (
            f" Chunk-exact averages (uncompressed chunk sizes): referenced {invoice.referenced_gib:,.2f} GiB, "
            f"exclusive {invoice.exclusive_gib:,.2f} GiB, share {invoice.share_gib:,.2f} GiB."
        )
    if invoice.snapshots or invoice.groups:
        text += (
            f" At the end of the period: {_count(invoice.snapshots, 'snapshot')} in "
            f"{_count(invoice.groups, 'backup group')}."
        )
    return text


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF: issuer, customer, period, lines, total, method of measurement."""
    issued = timezone.localtime(invoice.issued_at)
    pdf = _Document(title=f"Invoice {invoice.number}")
    pdf.heading(
        "INVOICE",
        invoice.number,
        [("Date", f"{issued:%Y-%m-%d}"), ("Period", invoice.period.label), ("Currency", invoice.currency)],
    )
    pdf.key_values(_customer(invoice))
    pdf.ln(2)
    if invoice.replaces_id:
        pdf.paragraph(f"This invoice corrects and replaces invoice {invoice.replaces.number}: {invoice.note}")
        pdf.ln(1)
    credit = getattr(invoice, "credit_note", None)
    if credit is not None:
        pdf.set_text_color(160, 0, 0)
        pdf.paragraph(
            f"Cancelled in full by credit note {credit.number} of {timezone.localtime(credit.issued_at):%Y-%m-%d}: "
            f"{credit.reason}"
        )
        pdf.set_text_color(0)
        pdf.ln(1)
    _lines_table(pdf, invoice)
    pdf.ln(5)
    pdf.text_line("Method of measurement", size=10, style="B")
    pdf.paragraph(_method(invoice))
    return bytes(pdf.output())


def credit_note_pdf(credit: CreditNote) -> bytes:
    """The credit note as a PDF: which invoice it cancels, why, and the credited amount."""
    invoice = credit.invoice
    issued = timezone.localtime(credit.issued_at)
    replacement = invoice_replacement(invoice=invoice)
    pdf = _Document(title=f"Credit note {credit.number}")
    pdf.heading(
        "CREDIT NOTE",
        credit.number,
        [("Date", f"{issued:%Y-%m-%d}"), ("Period", credit.period.label), ("Currency", credit.currency)],
    )
    pdf.key_values(
        [
            *_customer(invoice),
            ("Credits invoice", f"{invoice.number} of {timezone.localtime(invoice.issued_at):%Y-%m-%d}, in full"),
            ("Reason", credit.reason),
        ]
    )
    if replacement is not None:
        replaced = f"invoice {replacement.number}, {money(replacement.total, replacement.currency)}"
        pdf.key_values([("Replaced by", replaced)])
    pdf.ln(4)
    pdf.set_font("Helvetica", style="B", size=11)
    pdf.cell(0, 8, pdf_text(f"Credited amount: {money(credit.amount, credit.currency)}"), align="R",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.set_font("Helvetica", size=8)
    pdf.cell(0, 4, "Net amount; the credited invoice's lines are listed on it.", align="R",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    return bytes(pdf.output())


def pdf_filename(number: str) -> str:
    """A safe download name: document numbers are ``<prefix><year>-<digits>``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in number)
    return f"{safe}.pdf"
