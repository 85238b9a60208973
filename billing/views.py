"""Accounting pages: periods and totals, invoices, CSV download, metering status, plans.

Thin views: check access, call one selector or service, render. Every list costs a fixed
number of queries. Accounting and MSP admins see everything here; a client may open only
its own tenant's invoices; everyone else gets 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import ACCOUNTING as ACCOUNTING_ROLES
from accounts.permissions import accounting_required, has_role
from billing.document_views import document_tenant_scope
from billing.export import csv_chunks
from billing.forms import CorrectionForm, PlanForm
from billing.models import BillingPeriod, MeteringRun
from billing.selectors.export import EXPORT_COLUMNS, export_rows
from billing.selectors.invoices import invoice_get, invoice_replacement, plan_list, tenant_invoices
from billing.selectors.metering import last_collection, metering_run_list
from billing.selectors.periods import period_get, period_invoices, period_list, period_totals
from billing.selectors.usage import usage_series
from billing.services import corrections
from billing.services.base import BillingError
from billing.services.requests import billing_period_close_request, metering_collect_request, plan_save
from core.htmx import wants_partial
from plans.models import Plan
from tenants.models import Tenant

INVOICES_PER_PAGE = 100


def _period_or_404(period: str) -> BillingPeriod:
    try:
        row = period_get(period=period)
    except ValueError as exc:
        raise Http404(str(exc)) from exc
    if row is None:
        raise Http404("no such period")
    return row


@accounting_required
def periods(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "billing/periods.html",
        {"periods": period_list(), "collection": last_collection(gap_limit=20)},
    )


@accounting_required
def period_detail(request: HttpRequest, period: str) -> HttpResponse:
    row = _period_or_404(period)
    page = Paginator(period_invoices(period=row), INVOICES_PER_PAGE).get_page(request.GET.get("page"))
    context = {"period": row, "page": page, "totals": period_totals(period=row)}
    if wants_partial(request):
        return render(request, "billing/period.html#invoice_table", context)
    return render(request, "billing/period.html", context)


@accounting_required
def period_export(request: HttpRequest, period: str) -> StreamingHttpResponse:
    row = _period_or_404(period)
    if row.status != BillingPeriod.Status.CLOSED:
        raise Http404("the period is not closed")
    response = StreamingHttpResponse(
        csv_chunks(EXPORT_COLUMNS, export_rows(period=row)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="billing-{row.label}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@accounting_required
def period_close(request: HttpRequest, period: str) -> HttpResponse:
    try:
        billing_period_close_request(period=period, actor=request.user)
    except (BillingError, ValueError) as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"Closing {period} on a worker; the invoices appear here when done.")
    return redirect("billing:periods")


def invoice_detail(request: HttpRequest, number: str) -> HttpResponse:
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    invoice = invoice_get(number=number)
    if invoice is None:
        raise Http404("no such invoice")
    scope = document_tenant_scope(request.user)  # other roles: 403
    if scope is not None and invoice.tenant_id != scope:
        raise Http404("no such invoice")  # a client asking for another tenant's learns nothing of it
    return render(
        request,
        "billing/invoice.html",
        {
            "invoice": invoice,
            "replacement": invoice_replacement(invoice=invoice),
            "can_correct": has_role(request.user, ACCOUNTING_ROLES),
        },
    )


@accounting_required
def invoice_correct(request: HttpRequest, number: str) -> HttpResponse:
    invoice = invoice_get(number=number)
    if invoice is None:
        raise Http404("no such invoice")
    form = CorrectionForm(request.POST or None, initial={"reissue": True})
    if request.method == "POST" and form.is_valid():
        try:
            result = corrections.invoice_correct(
                invoice=invoice,
                reason=form.cleaned_data["reason"],
                actor=request.user,
                plan=form.cleaned_data["plan"],
                reissue=form.cleaned_data["reissue"],
            )
        except BillingError as exc:
            form.add_error(None, str(exc))
        else:
            messages.info(request, f"Credit note {result.credit_note.number} issued.")
            target = result.invoice or invoice
            return redirect("billing:invoice", number=target.number)
    return render(request, "billing/invoice_correct.html", {"invoice": invoice, "form": form})


@accounting_required
def metering(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "billing/metering.html",
        {"runs": metering_run_list(), "collection": last_collection(gap_limit=200)},
    )


@accounting_required
def metering_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(MeteringRun, pk=run_id)
    results = list(run.host_results.select_related("host").order_by("host__name", "first_tenant_id"))
    gaps = list(run.gaps.select_related("tenant").order_by("tenant__slug")[:500])
    return render(request, "billing/metering_run.html", {"run": run, "results": results, "gaps": gaps})


@require_POST
@accounting_required
def metering_collect(request: HttpRequest) -> HttpResponse:
    metering_collect_request(actor=request.user)
    messages.info(request, "Collection started on the workers.")
    return redirect("billing:metering")


@accounting_required
def plans(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/plans.html", {"plans": plan_list()})


@accounting_required
def plan_edit(request: HttpRequest, plan_id: int | None = None) -> HttpResponse:
    plan = get_object_or_404(Plan, pk=plan_id) if plan_id else Plan()
    form = PlanForm(request.POST or None, instance=plan)
    if request.method == "POST" and form.is_valid():
        plan_save(plan=form.save(commit=False), actor=request.user)
        messages.info(request, f"Plan {plan.name} saved; issued invoices keep their prices.")
        return redirect("billing:plans")
    return render(request, "billing/plan_form.html", {"form": form, "plan": plan})


@accounting_required
def tenant_usage(request: HttpRequest, tenant_id: int) -> HttpResponse:
    tenant = get_object_or_404(Tenant.objects.select_related("plan", "host", "datastore"), pk=tenant_id)
    return render(
        request,
        "billing/tenant_usage.html",
        {
            "tenant": tenant,
            "series": usage_series(tenant.pk),
            "invoices": tenant_invoices(tenant_id=tenant.pk),
        },
    )
