"""REST API of a tenant's lifecycle and tokens: suspend, resume, retention, rotate, drift,
repair, offboard, restore tokens, reveal, revoke."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import client_ip
from accounts.permissions import IsMspAdmin, IsMspStaff
from tenants import services
from tenants.api.common import (
    ERRORS,
    RetentionFields,
    RunOutput,
    TenantDetailOutput,
    TokenOutput,
    _lifecycle_response,
    _run_data,
    _tenant,
    _tenant_detail,
    _validation_response,
)
from tenants.models import TenantToken


class _LifecycleApi(APIView):
    permission_classes = [IsMspStaff]

    def act(self, request: Request, slug: str) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def post(self, request: Request, slug: str) -> Response:
        try:
            result = self.act(request, slug)
        except ValidationError as exc:
            return _validation_response(exc)
        except services.LifecycleError as exc:
            return _lifecycle_response(exc)
        if isinstance(result, Response):
            return result
        return Response(_tenant_detail(slug))


class TenantSuspendApi(_LifecycleApi):
    class TenantSuspendInputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)

    @extend_schema(
        request=TenantSuspendInputSerializer,
        responses={200: TenantDetailOutput, **ERRORS},
        operation_id="tenants_suspend",
    )
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        data = self.TenantSuspendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return services.tenant_suspend(
            tenant_id=_tenant(slug).pk, actor=request.user, reason=data.validated_data["reason"]
        )


class TenantResumeApi(_LifecycleApi):
    @extend_schema(request=None, responses={200: TenantDetailOutput, **ERRORS}, operation_id="tenants_resume")
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        return services.tenant_resume(tenant_id=_tenant(slug).pk, actor=request.user)


class TenantRetentionApi(_LifecycleApi):
    """Replace the retention (all keep-* and schedule; omitted keep = not limited)."""

    @extend_schema(
        request=RetentionFields, responses={200: TenantDetailOutput, **ERRORS}, operation_id="tenants_retention"
    )
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        data = RetentionFields(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        retention = services.Retention(
            **{k: v.get(k) for k in services.KEEP_FIELDS}, schedule=v.get("schedule") or "daily"
        )
        return services.tenant_retention_update(tenant_id=_tenant(slug).pk, retention=retention, actor=request.user)


class TenantRotateApi(_LifecycleApi):
    """New backup token secret; reveal it once with the token's reveal endpoint."""

    @extend_schema(request=None, responses={201: TokenOutput, **ERRORS}, operation_id="tenants_rotate")
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        token = services.tenant_token_rotate(tenant_id=_tenant(slug).pk, actor=request.user)
        return Response(TokenOutput(token).data, status=status.HTTP_201_CREATED)


class TenantDriftApi(_LifecycleApi):
    @extend_schema(request=None, responses={200: serializers.ListSerializer(child=serializers.DictField()), **ERRORS},
                   operation_id="tenants_drift")  # fmt: skip
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        return Response(services.tenant_drift_check(tenant_id=_tenant(slug).pk, actor=request.user))


class TenantRepairApi(_LifecycleApi):
    @extend_schema(request=None, responses={201: RunOutput, 200: RunOutput, **ERRORS}, operation_id="tenants_repair")
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        run, created = services.tenant_repair(tenant_id=_tenant(slug).pk, actor=request.user)
        return Response(_run_data(run), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TenantOffboardApi(_LifecycleApi):
    """Offboard; ``confirm_slug`` must repeat the slug. The namespace and its backups are
    kept unless ``delete_data`` is true."""

    permission_classes = [IsMspAdmin]

    class TenantOffboardInputSerializer(serializers.Serializer):
        confirm_slug = serializers.CharField()
        delete_data = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        request=TenantOffboardInputSerializer,
        responses={201: RunOutput, 200: RunOutput, **ERRORS},
        operation_id="tenants_offboard",
    )
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        data = self.TenantOffboardInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run, created = services.tenant_offboard(tenant_id=_tenant(slug).pk, actor=request.user, **data.validated_data)
        return Response(_run_data(run), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RestoreTokenCreateApi(_LifecycleApi):
    class RestoreTokenCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=40)
        days = serializers.IntegerField(required=False, min_value=1, allow_null=True, default=None)

    @extend_schema(
        request=RestoreTokenCreateInputSerializer,
        responses={201: TokenOutput, **ERRORS},
        operation_id="tenants_restore_token_create",
    )
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)

    def act(self, request: Request, slug: str) -> Any:
        data = self.RestoreTokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = services.restore_token_create(
            tenant=_tenant(slug), actor=request.user, keep_secret=True, ip=client_ip(request), **data.validated_data
        ).token
        return Response(TokenOutput(token).data, status=status.HTTP_201_CREATED)


class TokenRevealApi(APIView):
    """The secret, once (POST only); a second reveal is 409 with who revealed it and when."""

    permission_classes = [IsMspStaff]

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "RevealedSecret", {"tokenid": serializers.CharField(), "secret": serializers.CharField()}
            ),
            **ERRORS,
        },
        operation_id="tokens_reveal",
    )
    def post(self, request: Request, slug: str, token_id: int) -> Response:
        token = get_object_or_404(TenantToken, pk=token_id, tenant__slug=slug)
        try:
            secret = services.token_reveal(token_id=token.pk, actor=request.user, via="api")
        except services.TokenAlreadyRevealed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        except ValidationError as exc:
            return _validation_response(exc)
        response = Response({"tokenid": token.tokenid, "secret": secret})
        response["Cache-Control"] = "no-store"
        return response


class TokenRevokeApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema(request=None, responses={200: TokenOutput, **ERRORS}, operation_id="tokens_revoke")
    def post(self, request: Request, slug: str, token_id: int) -> Response:
        token = get_object_or_404(TenantToken, pk=token_id, tenant__slug=slug)
        try:
            token = services.token_revoke(token_id=token.pk, actor=request.user)
        except services.LifecycleError as exc:
            return _lifecycle_response(exc)
        return Response(TokenOutput(token).data)
