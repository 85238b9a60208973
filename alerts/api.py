"""REST API for quotas, alerts and webhooks: one view per operation, logic in services."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import (
    CLIENT,
    CanViewTenantObject,
    IsMspAdmin,
    IsMspStaff,
    ensure_can_view_tenant,
    has_role,
    scope_to_user,
)
from alerts import selectors, services
from alerts.models import Alert, QuotaAction, QuotaState
from core.pagination import BoundedLimitOffsetPagination
from plans.models import Plan
from tenants.models import Tenant


class QuotaStateOutput(serializers.ModelSerializer):
    tenant_slug = serializers.CharField(source="tenant.slug")
    usage_percent_of_soft = serializers.IntegerField(allow_null=True)

    class Meta:
        model = QuotaState
        fields = [
            "tenant_id", "tenant_slug", "state", "metric", "usage_bytes", "soft_limit_bytes",
            "hard_limit_bytes", "warning_bytes", "usage_percent_of_soft", "action", "over_since",
            "grace_ends_at", "enforced_at", "exempt", "exempt_reason", "grace_extension_reason",
            "writes_blocked", "pbs_verified_at", "pbs_error", "evaluated_at",
        ]


class ClientQuotaStateOutput(serializers.ModelSerializer):
    """A client's own quota: its figures and limits only. Staff-internal text (PBS error text
    naming internal hosts, exemption and grace reasons, enforcement details) stays out."""

    tenant_slug = serializers.CharField(source="tenant.slug")
    usage_percent_of_soft = serializers.IntegerField(allow_null=True)

    class Meta:
        model = QuotaState
        fields = [
            "tenant_id", "tenant_slug", "state", "metric", "usage_bytes", "soft_limit_bytes",
            "hard_limit_bytes", "warning_bytes", "usage_percent_of_soft", "over_since",
            "grace_ends_at", "writes_blocked", "evaluated_at",
        ]


def _quota_output(user: Any) -> type[serializers.ModelSerializer]:
    return ClientQuotaStateOutput if has_role(user, CLIENT) else QuotaStateOutput


class AlertOutput(serializers.ModelSerializer):
    tenant_slug = serializers.CharField(source="tenant.slug")

    class Meta:
        model = Alert
        fields = [
            "id", "tenant_id", "tenant_slug", "kind", "key", "severity", "status", "title",
            "message", "detail", "opened_at", "last_seen_at", "last_notified_at", "resolved_at",
            "resolution",
        ]


def _reason_error(exc: services.QuotaError) -> ValidationError:
    return ValidationError({"detail": str(exc)})


class QuotaStateListApi(APIView):
    """Quota states: staff and accounting see all tenants, a client its own."""

    permission_classes = [CanViewTenantObject]

    @extend_schema_serializer(component_name="AlertsQuotaStateListFilter")
    class FilterSerializer(serializers.Serializer):
        state = serializers.MultipleChoiceField(choices=QuotaState.State.choices, required=False)

    @extend_schema(responses=QuotaStateOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        states = list(filters.validated_data.get("state", []))
        qs = scope_to_user(selectors.quota_states_list(states=states or None), request.user)
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(_quota_output(request.user)(page, many=True).data)


class QuotaStateDetailApi(APIView):
    permission_classes = [CanViewTenantObject]

    @extend_schema(responses=QuotaStateOutput)
    def get(self, request: Request, tenant_id: int) -> Response:
        if has_role(request.user, CLIENT) and request.user.tenant_id != tenant_id:
            raise Http404  # another tenant's row does not exist for a client
        ensure_can_view_tenant(request.user, tenant_id)
        state = get_object_or_404(QuotaState.objects.select_related("tenant"), tenant_id=tenant_id)
        return Response(_quota_output(request.user)(state).data)


class QuotaGraceExtendApi(APIView):
    """Staff: move the end of the grace period (with a reason, audited)."""

    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="AlertsQuotaGraceExtendInput")
    class InputSerializer(serializers.Serializer):
        until = serializers.DateTimeField()
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses=QuotaStateOutput)
    def post(self, request: Request, tenant_id: int) -> Response:
        get_object_or_404(Tenant, pk=tenant_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            state = services.quota_grace_extend(tenant_id=tenant_id, actor=request.user, **data.validated_data)
        except services.QuotaError as exc:
            raise _reason_error(exc) from exc
        return Response(QuotaStateOutput(state).data)


class QuotaExemptApi(APIView):
    """Staff: exempt a tenant from enforcement, or end the exemption (with a reason, audited)."""

    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="AlertsQuotaExemptInput")
    class InputSerializer(serializers.Serializer):
        exempt = serializers.BooleanField()
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses=QuotaStateOutput)
    def post(self, request: Request, tenant_id: int) -> Response:
        get_object_or_404(Tenant, pk=tenant_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            state = services.quota_exempt_set(tenant_id=tenant_id, actor=request.user, **data.validated_data)
        except services.QuotaError as exc:
            raise _reason_error(exc) from exc
        return Response(QuotaStateOutput(state).data)


class _PolicyInput(serializers.Serializer):
    soft_limit_gib = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    hard_limit_gib = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    warning_percent = serializers.IntegerField(allow_null=True, required=False, default=None)
    grace_days = serializers.IntegerField(allow_null=True, required=False, default=None)
    action = serializers.ChoiceField(
        choices=QuotaAction.choices, allow_null=True, required=False, default=None
    )


class TenantQuotaOverrideApi(APIView):
    """Staff: set (PUT) or drop (DELETE) a tenant's quota override; re-evaluates at once."""

    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="AlertsTenantQuotaOverrideInput")
    class InputSerializer(_PolicyInput):
        pass

    @extend_schema(request=InputSerializer, responses=QuotaStateOutput)
    def put(self, request: Request, tenant_id: int) -> Response:
        get_object_or_404(Tenant, pk=tenant_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            state = services.tenant_quota_set(tenant_id=tenant_id, actor=request.user, **data.validated_data)
        except services.QuotaError as exc:
            raise _reason_error(exc) from exc
        return Response(QuotaStateOutput(state).data)

    @extend_schema(responses=QuotaStateOutput)
    def delete(self, request: Request, tenant_id: int) -> Response:
        get_object_or_404(Tenant, pk=tenant_id)
        state = services.tenant_quota_clear(tenant_id=tenant_id, actor=request.user)
        return Response(QuotaStateOutput(state).data)


class PlanQuotaApi(APIView):
    """MSP admin: a plan's quota (plans are admin business)."""

    permission_classes = [IsMspAdmin]

    @extend_schema_serializer(component_name="AlertsPlanQuotaInput")
    class InputSerializer(_PolicyInput):
        pass

    @extend_schema_serializer(component_name="AlertsPlanQuotaOutput")
    class OutputSerializer(serializers.Serializer):
        plan_id = serializers.IntegerField()
        soft_limit_gib = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
        hard_limit_gib = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
        warning_percent = serializers.IntegerField(allow_null=True)
        grace_days = serializers.IntegerField(allow_null=True)
        action = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def put(self, request: Request, plan_id: int) -> Response:
        get_object_or_404(Plan, pk=plan_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row = services.plan_quota_set(plan_id=plan_id, actor=request.user, **data.validated_data)
        except services.QuotaError as exc:
            raise _reason_error(exc) from exc
        return Response(self.OutputSerializer(row).data)


class AlertListApi(APIView):
    """Alerts: staff and accounting see all, a client its own tenant's."""

    permission_classes = [CanViewTenantObject]

    @extend_schema_serializer(component_name="AlertsAlertListFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Alert.Status.choices, required=False)
        kind = serializers.ChoiceField(choices=Alert.Kind.choices, required=False)
        tenant = serializers.IntegerField(required=False)

    @extend_schema(parameters=[FilterSerializer], responses=AlertOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data: dict[str, Any] = filters.validated_data
        qs = selectors.alerts_list(
            status=data.get("status"), tenant_id=data.get("tenant"), kind=data.get("kind")
        )
        qs = scope_to_user(qs, request.user)
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AlertOutput(page, many=True).data)


class TenantWebhookApi(APIView):
    """Staff: configure a tenant's outgoing webhook. A newly generated signing secret is in
    the response once and never again."""

    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="AlertsTenantWebhookInput")
    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=500, allow_blank=True)
        enabled = serializers.BooleanField(default=True)
        secret = serializers.CharField(
            required=False, allow_blank=True, write_only=True, min_length=16, max_length=200
        )
        regenerate_secret = serializers.BooleanField(default=False)

    @extend_schema_serializer(component_name="AlertsTenantWebhookOutput")
    class OutputSerializer(serializers.Serializer):
        tenant_id = serializers.IntegerField()
        url = serializers.CharField(source="webhook_url")
        enabled = serializers.BooleanField(source="webhook_enabled")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def put(self, request: Request, tenant_id: int) -> Response:
        get_object_or_404(Tenant, pk=tenant_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row, new_secret = services.tenant_webhook_set(
                tenant_id=tenant_id, actor=request.user, **data.validated_data
            )
        except services.QuotaError as exc:
            raise _reason_error(exc) from exc
        body = dict(self.OutputSerializer(row).data)
        if new_secret:
            body["secret"] = new_secret
        response = Response(body, status=status.HTTP_200_OK)
        response["Cache-Control"] = "no-store"
        return response


class WebhookDeliveryListApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="AlertsWebhookDeliveryListOutput")
    class OutputSerializer(serializers.Serializer):
        uuid = serializers.UUIDField()
        target = serializers.CharField()
        tenant_id = serializers.IntegerField(allow_null=True)
        alert_id = serializers.IntegerField(allow_null=True)
        event = serializers.CharField()
        status = serializers.CharField()
        attempts = serializers.IntegerField()
        last_status_code = serializers.IntegerField(allow_null=True)
        last_error = serializers.CharField()
        last_attempt_at = serializers.DateTimeField(allow_null=True)
        next_attempt_at = serializers.DateTimeField(allow_null=True)
        delivered_at = serializers.DateTimeField(allow_null=True)
        created_at = serializers.DateTimeField()

    @extend_schema_serializer(component_name="AlertsWebhookDeliveryListFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.CharField(required=False)
        tenant = serializers.IntegerField(required=False)

    @extend_schema(parameters=[FilterSerializer], responses=OutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.webhook_deliveries_list(
            tenant_id=filters.validated_data.get("tenant"), status=filters.validated_data.get("status")
        )
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
