"""The tenants REST API: serializers and error answers shared by its views."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.permissions import IsMspStaff, IsStaffOrAccounting
from tenants import selectors, services
from tenants.models import OnboardingRun, Tenant, TenantToken


class DatastoreOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    enabled = serializers.BooleanField()
    placement_weight = serializers.IntegerField()
    total_bytes = serializers.IntegerField(allow_null=True)
    used_bytes = serializers.IntegerField(allow_null=True)
    avail_bytes = serializers.IntegerField(allow_null=True)
    last_seen_at = serializers.DateTimeField(allow_null=True)


class HostOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    url = serializers.CharField()
    public_address = serializers.CharField()
    fingerprint = serializers.CharField()
    token_id = serializers.CharField()
    metering_token_id = serializers.CharField()
    enabled = serializers.BooleanField()
    reachable = serializers.BooleanField(allow_null=True)
    fingerprint_ok = serializers.BooleanField(allow_null=True)
    pbs_version = serializers.CharField()
    supports_regenerate = serializers.BooleanField(allow_null=True)
    last_check_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    permission_warnings = serializers.ListField(child=serializers.CharField())
    datastores = DatastoreOutput(many=True)


class HostDetailOutput(HostOutput):
    drift_checked_at = serializers.DateTimeField(allow_null=True)
    drift_findings = serializers.ListField(child=serializers.DictField())


class TenantOutput(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    writes_blocked = serializers.BooleanField()
    host = serializers.CharField(source="host.name", allow_null=True, default=None)
    datastore = serializers.CharField(source="datastore.name", allow_null=True, default=None)
    namespace = serializers.CharField()
    plan = serializers.CharField(source="plan.name", allow_null=True, default=None)
    contact_email = serializers.CharField()
    created_at = serializers.DateTimeField()


class RetentionFields(serializers.Serializer):
    keep_last = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    keep_hourly = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    keep_daily = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    keep_weekly = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    keep_monthly = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    keep_yearly = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    schedule = serializers.CharField(required=False, max_length=128)


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    tokenid = serializers.CharField()
    purpose = serializers.CharField()
    enabled = serializers.BooleanField()
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revealed_at = serializers.DateTimeField(allow_null=True)
    revealed_by = serializers.CharField(source="revealed_by.username", allow_null=True, default=None)
    secret_available = serializers.SerializerMethodField()
    effective_privileges = serializers.DictField()

    def get_secret_available(self, token: TenantToken) -> bool:
        return bool(token.secret_enc)


class StepOutput(serializers.Serializer):
    position = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()
    outcome = serializers.CharField()
    attempts = serializers.IntegerField()
    detail = serializers.CharField()
    last_error = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class RunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    tenant = serializers.CharField(source="tenant.slug")
    kind = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    options = serializers.DictField()
    error = serializers.CharField()
    error_hint = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    steps = StepOutput(many=True)


class TenantDetailOutput(TenantOutput, RetentionFields):
    contact_name = serializers.CharField()
    pbs_userid = serializers.CharField()
    prune_job_id = serializers.CharField()
    acl_path = serializers.CharField()
    writes_blocked_reason = serializers.CharField()
    activated_at = serializers.DateTimeField(allow_null=True)
    suspended_at = serializers.DateTimeField(allow_null=True)
    offboarded_at = serializers.DateTimeField(allow_null=True)
    user_privileges = serializers.DictField()
    privileges_checked_at = serializers.DateTimeField(allow_null=True)
    drift_checked_at = serializers.DateTimeField(allow_null=True)
    drift_findings = serializers.ListField(child=serializers.DictField())
    tokens = serializers.SerializerMethodField()
    connection = serializers.SerializerMethodField()

    # The view passes tokens and connection details in the context (read by selectors).
    @extend_schema_field(TokenOutput(many=True))
    def get_tokens(self, tenant: Tenant) -> Any:
        return TokenOutput(self.context.get("tokens", []), many=True).data

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_connection(self, tenant: Tenant) -> Any:
        return self.context.get("connection")


class ErrorOutput(serializers.Serializer):
    detail = serializers.CharField()
    hint = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)


def _validation_response(exc: ValidationError) -> Response:
    if hasattr(exc, "message_dict"):
        return Response({"detail": "invalid input", "errors": exc.message_dict}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)


def _lifecycle_response(exc: services.LifecycleError) -> Response:
    return Response({"detail": exc.message, "hint": exc.hint}, status=status.HTTP_502_BAD_GATEWAY)


def _tenant(slug: str) -> Tenant:
    return get_object_or_404(Tenant.objects.select_related("host", "datastore", "plan"), slug=slug)


def _tenant_detail(slug: str) -> dict[str, Any]:
    tenant = _tenant(slug)
    context = {
        "tokens": selectors.tenant_tokens(tenant=tenant),
        "connection": selectors.connection_details(tenant=tenant),
    }
    return TenantDetailOutput(tenant, context=context).data


def _run_data(run: OnboardingRun) -> dict[str, Any]:
    return RunOutput(selectors.onboarding_run_get(run_id=run.pk)).data


ERRORS = {400: ErrorOutput, 409: ErrorOutput, 502: ErrorOutput}


class StaffWriteMixin:
    """Reads for staff and accounting, writes for staff."""

    def get_permissions(self) -> list[Any]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):  # type: ignore[attr-defined]
            return [IsStaffOrAccounting()]
        return [IsMspStaff()]
