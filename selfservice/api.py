"""REST API for clients (/api/v1/my/): restore tokens, backups, usage, connection details.

One view per operation; every view is client-only (IsClient sets ``request.tenant``) and
only ever reads or writes the caller's own tenant. Token ids in URLs are looked up within
that tenant, so another tenant's id is a 404.
"""

from __future__ import annotations

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import client_ip
from accounts.permissions import IsClient
from billing.selectors import usage_series
from selfservice import selectors
from tenants.models import TenantToken
from tenants.services import restore_tokens


class _ClientApi(APIView):
    permission_classes = [IsClient]


class MyRestoreTokenOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField(source="label")
    tokenid = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    state = serializers.CharField()


class RestoreTokenListApi(_ClientApi):
    @extend_schema(responses=MyRestoreTokenOutput(many=True))
    def get(self, request: Request) -> Response:
        rows = selectors.restore_token_rows(tenant_id=request.tenant.pk)
        return Response(MyRestoreTokenOutput(rows, many=True).data)


class RestoreTokenCreateApi(_ClientApi):
    class MyRestoreTokenCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=48)
        days = serializers.IntegerField(min_value=1)

    class MyRestoreTokenSecretOutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        tokenid = serializers.CharField()
        secret = serializers.CharField(help_text="Shown in this response only; never again.")
        expires_at = serializers.DateTimeField()
        effective_privileges = serializers.DictField()

    InputSerializer = MyRestoreTokenCreateInputSerializer
    OutputSerializer = MyRestoreTokenSecretOutputSerializer

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    @method_decorator(sensitive_variables("created", "body"))
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            created = restore_tokens.restore_token_create(
                tenant=request.tenant,
                name=data.validated_data["name"],
                days=data.validated_data["days"],
                actor=request.user,
                ip=client_ip(request),
            )
        except restore_tokens.RestoreTokenError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        token = created.token
        body = self.OutputSerializer(
            {
                "id": token.pk,
                "tokenid": token.tokenid,
                "secret": created.secret,
                "expires_at": token.expires_at,
                "effective_privileges": token.effective_privileges,
            }
        ).data
        response = Response(body, status=status.HTTP_201_CREATED)
        add_never_cache_headers(response)
        return response


class RestoreTokenRevokeApi(_ClientApi):
    @extend_schema(request=None, responses=MyRestoreTokenOutput)
    def post(self, request: Request, token_id: int) -> Response:
        token = get_object_or_404(
            TenantToken.objects.select_related("tenant__host"),
            pk=token_id,
            tenant=request.tenant,
            purpose=TenantToken.Purpose.RESTORE,
        )
        try:
            restore_tokens.restore_token_revoke(token=token, actor=request.user, ip=client_ip(request))
        except restore_tokens.RestoreTokenError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        row = next(r for r in selectors.restore_token_rows(tenant_id=request.tenant.pk) if r.pk == token.pk)
        return Response(MyRestoreTokenOutput(row).data)


class MyBackupGroupOutput(serializers.Serializer):
    namespace = serializers.CharField()
    backup_type = serializers.CharField()
    backup_id = serializers.CharField()
    last_backup = serializers.DateTimeField()
    snapshot_count = serializers.IntegerField()
    newest_size = serializers.IntegerField(allow_null=True)
    last_verification = serializers.CharField(allow_null=True)
    last_verified_at = serializers.DateTimeField(allow_null=True)
    newest_verified = serializers.BooleanField()


class BackupListApi(_ClientApi):
    class MyBackupsOutputSerializer(serializers.Serializer):
        fetched_at = serializers.DateTimeField()
        cached = serializers.BooleanField()
        groups = MyBackupGroupOutput(many=True)

    OutputSerializer = MyBackupsOutputSerializer

    @extend_schema(responses={200: OutputSerializer, 503: None})
    def get(self, request: Request) -> Response:
        backups = selectors.tenant_backups(tenant=request.tenant)
        if backups.error:
            return Response({"detail": backups.error}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(self.OutputSerializer(backups).data)


class UsageApi(_ClientApi):
    class MyUsagePointSerializer(serializers.Serializer):
        day = serializers.DateField()
        logical = serializers.IntegerField(allow_null=True)
        latest = serializers.IntegerField(allow_null=True)
        physical = serializers.IntegerField(allow_null=True)
        snapshots = serializers.IntegerField(allow_null=True)

    PointSerializer = MyUsagePointSerializer

    @extend_schema(responses=PointSerializer(many=True))
    def get(self, request: Request) -> Response:
        series = usage_series(request.tenant.pk, days=90)
        return Response(self.PointSerializer(series.points, many=True).data)


class ConnectionApi(_ClientApi):
    class MyConnectionOutputSerializer(serializers.Serializer):
        url = serializers.CharField()
        server = serializers.CharField()
        port = serializers.IntegerField()
        fingerprint = serializers.CharField(allow_blank=True)
        datastore = serializers.CharField()
        namespace = serializers.CharField()
        auth_id = serializers.CharField()
        repository = serializers.CharField()
        client_commands = serializers.CharField()
        pvesm_command = serializers.CharField()

    OutputSerializer = MyConnectionOutputSerializer

    @extend_schema(responses={200: OutputSerializer, 404: None})
    def get(self, request: Request) -> Response:
        details = selectors.connection_details(tenant=request.tenant)
        if details is None:
            return Response({"detail": "Not set up yet."}, status=status.HTTP_404_NOT_FOUND)
        return Response(self.OutputSerializer(asdict(details)).data)
