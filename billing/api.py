"""Billing REST API (/api/v1/billing/...): one view per operation, thin.

Accounting and MSP admins use all of it; a client may read its own tenant's invoices and
usage. Money is serialised as decimal strings, never floats.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CLIENT, IsAccounting, can_view_tenant, has_role
from billing.models import Invoice
from billing.selectors.export import export_metric
from billing.selectors.invoices import invoice_get, tenant_invoices
from billing.selectors.metering import last_collection
from billing.selectors.periods import period_get, period_invoices, period_list
from billing.selectors.usage import usage_series
from billing.services.base import BillingError
from billing.services.corrections import invoice_correct
from billing.services.requests import billing_period_close_request, metering_collect_request
from core.pagination import BoundedLimitOffsetPagination
from plans.models import Plan
from tenants.models import Tenant


class IsAccountingOrClient(BasePermission):
    """Accounting/admin, or a client (object checks narrow a client to its own tenant)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return IsAccounting().has_permission(request, view) or has_role(request.user, CLIENT)


def _period_or_404(period: str) -> Any:
    try:
        row = period_get(period=period)
    except ValueError as exc:
        raise Http404(str(exc)) from exc
    if row is None:
        raise Http404("no such period")
    return row


class PeriodListApi(APIView):
    permission_classes = [IsAccounting]

    @extend_schema_serializer(component_name="BillingPeriod")
    class OutputSerializer(serializers.Serializer):
        period = serializers.CharField(source="label")
        start = serializers.DateField()
        end = serializers.DateField()
        status = serializers.CharField()
        closed_at = serializers.DateTimeField(allow_null=True)
        invoices = serializers.IntegerField()
        credit_notes = serializers.IntegerField()
        gaps = serializers.IntegerField()
        totals = serializers.DictField(child=serializers.DecimalField(max_digits=16, decimal_places=2))
        skipped_no_plan = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(period_list(), many=True).data)


class PeriodCloseApi(APIView):
    permission_classes = [IsAccounting]

    @extend_schema(request=None, responses={202: None})
    def post(self, request: Request, period: str) -> Response:
        try:
            billing_period_close_request(period=period, actor=request.user)
        except (BillingError, ValueError) as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"detail": f"closing {period}"}, status=status.HTTP_202_ACCEPTED)


class PeriodRowsApi(APIView):
    """The accounting export as JSON: one row per tenant, the CSV's columns as keys."""

    permission_classes = [IsAccounting]

    @extend_schema_serializer(component_name="BillingExportRow")
    class OutputSerializer(serializers.Serializer):
        client = serializers.CharField(source="client_name")
        datastore = serializers.CharField()
        namespace = serializers.CharField()
        size_gb = serializers.DecimalField(source="billed_gib", max_digits=20, decimal_places=2)
        month = serializers.SerializerMethodField()
        host = serializers.CharField(source="host_name")
        tenant_slug = serializers.CharField()
        metric = serializers.SerializerMethodField()
        avg_gib = serializers.DecimalField(max_digits=20, decimal_places=6)
        peak_gib = serializers.DecimalField(max_digits=20, decimal_places=6)
        samples = serializers.IntegerField()
        gaps = serializers.IntegerField()
        snapshots = serializers.IntegerField()
        groups = serializers.IntegerField()
        included_gib = serializers.DecimalField(max_digits=12, decimal_places=2)
        billable_gib = serializers.DecimalField(max_digits=20, decimal_places=2)
        unit_price = serializers.DecimalField(max_digits=12, decimal_places=6)
        base_fee = serializers.DecimalField(max_digits=12, decimal_places=2)
        amount = serializers.DecimalField(source="total", max_digits=14, decimal_places=2)
        currency = serializers.CharField()
        invoice_number = serializers.CharField(source="number")

        def get_month(self, obj: Invoice) -> str:
            return obj.period.label

        def get_metric(self, obj: Invoice) -> str:
            return export_metric(obj.metric)

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request, period: str) -> Response:
        row = _period_or_404(period)
        qs = period_invoices(period=row, include_credited=False).select_related("period")
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


@extend_schema_serializer(component_name="BillingInvoiceLine")
class InvoiceLineSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=2)
    unit = serializers.CharField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=6)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)


@extend_schema_serializer(component_name="BillingInvoice")
class InvoiceOutputSerializer(serializers.Serializer):
    number = serializers.CharField()
    period = serializers.CharField(source="period.label")
    status = serializers.CharField()
    issued_at = serializers.DateTimeField()
    tenant_id = serializers.IntegerField()
    tenant_slug = serializers.CharField()
    client = serializers.CharField(source="client_name")
    host = serializers.CharField(source="host_name")
    datastore = serializers.CharField()
    namespace = serializers.CharField()
    plan = serializers.CharField(source="plan_name")
    metric = serializers.CharField()
    currency = serializers.CharField()
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    active_days = serializers.IntegerField()
    samples = serializers.IntegerField()
    gaps = serializers.IntegerField()
    avg_gib = serializers.DecimalField(max_digits=20, decimal_places=6)
    peak_gib = serializers.DecimalField(max_digits=20, decimal_places=6)
    billed_gib = serializers.DecimalField(max_digits=20, decimal_places=2)
    billable_gib = serializers.DecimalField(max_digits=20, decimal_places=2)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    replaces = serializers.CharField(source="replaces.number", allow_null=True, default=None)
    credit_note = serializers.SerializerMethodField()
    lines = InvoiceLineSerializer(many=True, source="lines.all")

    def get_credit_note(self, obj: Invoice) -> dict[str, str] | None:
        note = getattr(obj, "credit_note", None)
        if note is None:
            return None
        return {"number": note.number, "amount": str(note.amount), "reason": note.reason}


def _invoice_for(request: Request, number: str) -> Invoice:
    invoice = invoice_get(number=number)
    # A client asking for another tenant's invoice gets the same 404 as for a missing one.
    if invoice is None or not (
        IsAccounting().has_permission(request, None) or can_view_tenant(request.user, invoice.tenant_id)
    ):
        raise Http404("no such invoice")
    return invoice


class InvoiceDetailApi(APIView):
    permission_classes = [IsAccountingOrClient]

    @extend_schema(responses=InvoiceOutputSerializer)
    def get(self, request: Request, number: str) -> Response:
        return Response(InvoiceOutputSerializer(_invoice_for(request, number)).data)


class InvoiceCorrectApi(APIView):
    permission_classes = [IsAccounting]

    @extend_schema_serializer(component_name="BillingCorrectionInput")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)
        plan = serializers.CharField(required=False, allow_blank=True, help_text="Plan name.")
        reissue = serializers.BooleanField(default=True)

    @extend_schema_serializer(component_name="BillingCorrection")
    class OutputSerializer(serializers.Serializer):
        credit_note = serializers.CharField(source="credit_note.number")
        credited = serializers.DecimalField(source="credit_note.amount", max_digits=14, decimal_places=2)
        invoice = serializers.CharField(source="invoice.number", allow_null=True, default=None)
        total = serializers.DecimalField(source="invoice.total", max_digits=14, decimal_places=2, default=None)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, number: str) -> Response:
        invoice = _invoice_for(request, number)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        plan = None
        if data.validated_data.get("plan"):
            plan = get_object_or_404(Plan, name=data.validated_data["plan"])
        try:
            result = invoice_correct(
                invoice=invoice,
                reason=data.validated_data["reason"],
                actor=request.user,
                plan=plan,
                reissue=data.validated_data["reissue"],
            )
        except BillingError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(self.OutputSerializer(result).data, status=status.HTTP_201_CREATED)


class TenantInvoicesApi(APIView):
    permission_classes = [IsAccountingOrClient]

    @extend_schema_serializer(component_name="BillingTenantInvoice")
    class OutputSerializer(serializers.Serializer):
        number = serializers.CharField()
        period = serializers.CharField(source="period.label")
        status = serializers.CharField()
        billed_gib = serializers.DecimalField(max_digits=20, decimal_places=2)
        total = serializers.DecimalField(max_digits=14, decimal_places=2)
        currency = serializers.CharField()

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request, tenant_id: int) -> Response:
        if not IsAccounting().has_permission(request, self) and not can_view_tenant(request.user, tenant_id):
            raise Http404("no such tenant")
        get_object_or_404(Tenant, pk=tenant_id)
        return Response(self.OutputSerializer(tenant_invoices(tenant_id=tenant_id), many=True).data)


class TenantUsageApi(APIView):
    """Daily samples of the last ``days`` (1..366, default 90) days; null where none."""

    permission_classes = [IsAccountingOrClient]

    @extend_schema_serializer(component_name="BillingUsagePoint")
    class PointSerializer(serializers.Serializer):
        day = serializers.DateField()
        logical_bytes = serializers.IntegerField(source="logical", allow_null=True)
        latest_bytes = serializers.IntegerField(source="latest", allow_null=True)
        physical_estimate_bytes = serializers.IntegerField(source="physical", allow_null=True)
        snapshots = serializers.IntegerField(allow_null=True)

    @extend_schema(responses=PointSerializer(many=True))
    def get(self, request: Request, tenant_id: int) -> Response:
        if not IsAccounting().has_permission(request, self) and not can_view_tenant(request.user, tenant_id):
            raise Http404("no such tenant")
        get_object_or_404(Tenant, pk=tenant_id)
        try:
            days = min(366, max(1, int(request.query_params.get("days", 90))))
        except ValueError:
            return Response({"days": "an integer 1..366"}, status=status.HTTP_400_BAD_REQUEST)
        series = usage_series(tenant_id, days=days)
        return Response(self.PointSerializer(series.points, many=True).data)


class MeteringLatestApi(APIView):
    permission_classes = [IsAccounting]

    @extend_schema_serializer(component_name="BillingMeteringHost")
    class HostSerializer(serializers.Serializer):
        host = serializers.CharField(source="host.name")
        status = serializers.CharField()
        tenants = serializers.IntegerField()
        sampled = serializers.IntegerField()
        gaps = serializers.IntegerField()
        attempts = serializers.IntegerField()
        requests = serializers.IntegerField()
        duration_ms = serializers.IntegerField(allow_null=True)
        error = serializers.CharField()

    @extend_schema_serializer(component_name="BillingMeteringGap")
    class GapSerializer(serializers.Serializer):
        tenant_slug = serializers.CharField(source="tenant.slug")
        host = serializers.CharField(source="host_name")
        reason = serializers.CharField()

    @extend_schema(
        responses=inline_serializer(
            "BillingMeteringLatest",
            {
                "run": serializers.DictField(allow_null=True),
                "hosts": HostSerializer(many=True),
                "gaps": GapSerializer(many=True),
            },
        )
    )
    def get(self, request: Request) -> Response:
        status_ = last_collection(gap_limit=1000)
        if status_.run is None:
            return Response({"run": None})
        run = status_.run
        return Response(
            {
                "run": {
                    "id": run.pk,
                    "day": run.day,
                    "status": run.status,
                    "started_at": run.started_at,
                    "finished_at": run.finished_at,
                    "tenants_total": run.tenants_total,
                    "tenants_sampled": run.tenants_sampled,
                    "tenants_gap": run.tenants_gap,
                    "hosts_total": run.hosts_total,
                    "hosts_failed": run.hosts_failed,
                },
                "hosts": self.HostSerializer(status_.results, many=True).data,
                "gaps": self.GapSerializer(status_.gaps, many=True).data,
            }
        )


class MeteringCollectApi(APIView):
    permission_classes = [IsAccounting]

    @extend_schema(request=None, responses={202: None})
    def post(self, request: Request) -> Response:
        metering_collect_request(actor=request.user)
        return Response({"detail": "collection started"}, status=status.HTTP_202_ACCEPTED)
