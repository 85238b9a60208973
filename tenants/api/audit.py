"""REST API of the audit trail (staff)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsMspStaff
from audit.models import AuditEvent
from core.pagination import BoundedLimitOffsetPagination


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_label")
    action = serializers.CharField()
    tenant = serializers.CharField(source="tenant.slug", allow_null=True, default=None)
    target = serializers.CharField()
    result = serializers.CharField()
    detail = serializers.DictField()


class AuditEventListApi(APIView):
    """The audit trail, newest first: every staff action and PBS mutation (never a secret)."""

    permission_classes = [IsMspStaff]

    class AuditEventListFilterSerializer(serializers.Serializer):
        tenant = serializers.CharField(required=False, default="", allow_blank=True)
        action = serializers.CharField(required=False, default="", allow_blank=True)
        actor = serializers.CharField(required=False, default="", allow_blank=True)
        result = serializers.ChoiceField(
            choices=AuditEvent.Result.choices, required=False, allow_blank=True, default=""
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("tenant", str, description="Tenant slug"),
            OpenApiParameter("action", str, description="Action, or a prefix ending in '.' (e.g. 'pbs.')"),
            OpenApiParameter("actor", str), OpenApiParameter("result", str, enum=AuditEvent.Result.values),
            OpenApiParameter("limit", int), OpenApiParameter("offset", int),
        ],
        responses=AuditEventOutput(many=True),
        operation_id="audit_list",
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        filters = self.AuditEventListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = AuditEvent.objects.select_related("tenant").order_by("-created_at", "-id")
        if f["tenant"]:
            qs = qs.filter(tenant__slug=f["tenant"])
        if f["action"]:
            qs = (
                qs.filter(action__startswith=f["action"])
                if f["action"].endswith(".")
                else qs.filter(action=f["action"])
            )
        if f["actor"]:
            qs = qs.filter(actor_label=f["actor"])
        if f["result"]:
            qs = qs.filter(result=f["result"])
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AuditEventOutput(page, many=True).data)
