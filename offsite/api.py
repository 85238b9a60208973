"""REST API for offsite replication (/api/v1/offsite/...): MSP staff only, one view per
operation; writes go through offsite.services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsMspStaff
from offsite import selectors, services
from offsite.models import OffsitePolicy, Remote, SyncJobRecord
from offsite.services import requests
from pbsclient.errors import PbsError
from tenants.models import Datastore, PbsHost, Tenant


def _call(func: Any, **kwargs: Any) -> Any:
    """Run a service; its validation and PBS errors become 400s with the message."""
    try:
        return func(**kwargs)
    except DjangoValidationError as exc:
        raise ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        ) from exc
    except services.OffsiteError as exc:
        raise ValidationError({"detail": exc.hint()}) from exc
    except PbsError as exc:
        raise ValidationError({"detail": f"PBS refused: {exc}"}) from exc


_QUEUED = inline_serializer("OffsiteQueued", {"queued": serializers.BooleanField()})
_UPID = inline_serializer("OffsiteRunStarted", {"upid": serializers.CharField()})
_REMOVED = inline_serializer("OffsiteTenantRemoved", {"removed": serializers.BooleanField()})


@extend_schema_serializer(component_name="OffsiteRemote")
class RemoteOut(serializers.ModelSerializer):
    pulling_host = serializers.CharField(source="pulling_host.name")
    source_host = serializers.CharField(source="source_host.name", allow_null=True, default=None)

    class Meta:
        model = Remote
        fields = [
            "id", "name", "kind", "pulling_host", "source_host", "host", "port",
            "fingerprint", "auth_id", "state", "last_error", "ensured_at",
        ]  # fmt: skip


class RemoteListApi(generics.ListAPIView):
    permission_classes = [IsMspStaff]
    serializer_class = RemoteOut

    def get_queryset(self) -> Any:
        return selectors.remote_list()


class RemoteCreateApi(APIView):
    """Managed (source_host given) or external (host, fingerprint, auth_id, secret)."""

    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="OffsiteRemoteCreateInput")
    class In(serializers.Serializer):
        pulling_host = serializers.SlugRelatedField(slug_field="name", queryset=PbsHost.objects.all())
        source_host = serializers.SlugRelatedField(
            slug_field="name", queryset=PbsHost.objects.all(), required=False, allow_null=True
        )
        name = serializers.CharField(required=False, default="")
        host = serializers.CharField(required=False, default="")
        port = serializers.IntegerField(required=False, default=8007)
        fingerprint = serializers.CharField(required=False, default="")
        auth_id = serializers.CharField(required=False, default="")
        secret = serializers.CharField(required=False, default="", write_only=True)
        comment = serializers.CharField(required=False, default="")

    @extend_schema(request=In, responses={201: RemoteOut})
    def post(self, request: Request) -> Response:
        data = self.In(data=request.data)
        data.is_valid(raise_exception=True)
        remote = _call(services.remote_create, actor=request.user, **data.validated_data)
        return Response(RemoteOut(remote).data, status=status.HTTP_201_CREATED)


@extend_schema_serializer(component_name="OffsitePolicy")
class PolicyOut(serializers.ModelSerializer):
    source = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()
    remote = serializers.CharField(source="remote.name")

    class Meta:
        model = OffsitePolicy
        fields = [
            "id", "source", "target", "remote", "source_store", "scope", "auto_include_tenants",
            "target_ns", "enabled", "schedule", "rate_in", "burst_in", "remove_vanished",
            "encrypted_only", "verified_only", "transfer_last", "group_filters", "owner",
            "max_depth", "stale_after_hours", "comment",
        ]  # fmt: skip

    def get_source(self, obj: OffsitePolicy) -> str:
        if obj.source_datastore_id:
            return f"{obj.source_datastore.host.name}/{obj.source_datastore.name}"
        return f"{obj.remote.name}:{obj.source_store}"

    def get_target(self, obj: OffsitePolicy) -> str:
        return f"{obj.target_datastore.host.name}/{obj.target_datastore.name}"


class _Options(serializers.Serializer):
    schedule = serializers.CharField(required=False, allow_blank=True)
    rate_in = serializers.CharField(required=False, allow_blank=True)
    burst_in = serializers.CharField(required=False, allow_blank=True)
    remove_vanished = serializers.BooleanField(required=False)
    encrypted_only = serializers.BooleanField(required=False)
    verified_only = serializers.BooleanField(required=False)
    transfer_last = serializers.IntegerField(required=False, allow_null=True)
    group_filters = serializers.ListField(child=serializers.CharField(), required=False)
    owner = serializers.CharField(required=False, allow_blank=True)
    max_depth = serializers.IntegerField(required=False, allow_null=True)
    stale_after_hours = serializers.IntegerField(required=False, min_value=1)
    comment = serializers.CharField(required=False, allow_blank=True)
    auto_include_tenants = serializers.BooleanField(required=False)
    target_ns = serializers.CharField(required=False, allow_blank=True)


class PolicyListApi(generics.ListAPIView):
    permission_classes = [IsMspStaff]
    serializer_class = PolicyOut

    def get_queryset(self) -> Any:
        return selectors.policy_list()


class PolicyCreateApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="OffsitePolicyCreateInput")
    class In(_Options):
        source_datastore = serializers.PrimaryKeyRelatedField(
            queryset=Datastore.objects.all(), required=False, allow_null=True
        )
        target_datastore = serializers.PrimaryKeyRelatedField(queryset=Datastore.objects.all())
        remote = serializers.PrimaryKeyRelatedField(
            queryset=Remote.objects.all(), required=False, allow_null=True
        )
        source_store = serializers.CharField(required=False, default="")
        scope = serializers.ChoiceField(
            choices=OffsitePolicy.Scope.choices, default=OffsitePolicy.Scope.DATASTORE
        )

    @extend_schema(request=In, responses={201: PolicyOut})
    def post(self, request: Request) -> Response:
        data = self.In(data=request.data)
        data.is_valid(raise_exception=True)
        policy = _call(services.policy_create, actor=request.user, **data.validated_data)
        return Response(PolicyOut(policy).data, status=status.HTTP_201_CREATED)


class PolicyUpdateApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="OffsitePolicyUpdateInput")
    class In(_Options):
        enabled = serializers.BooleanField(required=False)

    @extend_schema(request=In, responses=PolicyOut)
    def patch(self, request: Request, pk: int) -> Response:
        policy = get_object_or_404(selectors.policy_list(), pk=pk)
        data = self.In(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        policy = _call(
            services.policy_update, policy=policy, actor=request.user, **data.validated_data
        )
        return Response(PolicyOut(policy).data)


class PolicyApplyApi(APIView):
    """Queue a converge of the policy's remote, grants and jobs on PBS."""

    permission_classes = [IsMspStaff]

    @extend_schema(request=None, responses={202: _QUEUED})
    def post(self, request: Request, pk: int) -> Response:
        policy = get_object_or_404(OffsitePolicy, pk=pk)
        requests.policy_apply_request(policy=policy, actor=request.user)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


@extend_schema_serializer(component_name="OffsiteSyncJob")
class JobOut(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name")
    tenant = serializers.CharField(source="membership.tenant.slug", default=None)

    class Meta:
        model = SyncJobRecord
        fields = [
            "id", "job_id", "host", "policy", "tenant", "store", "ns", "remote_name",
            "remote_store", "remote_ns", "state", "last_error", "last_run_state", "last_run_at",
            "last_run_upid", "next_run_at", "status_checked_at",
        ]  # fmt: skip


class JobListApi(generics.ListAPIView):
    permission_classes = [IsMspStaff]
    serializer_class = JobOut

    def get_queryset(self) -> Any:
        return selectors.job_list()


class JobRunApi(APIView):
    """Run a job now (synchronously on PBS's side it is a task: the UPID comes back)."""

    permission_classes = [IsMspStaff]

    @extend_schema(request=None, responses={202: _UPID})
    def post(self, request: Request, pk: int) -> Response:
        record = get_object_or_404(selectors.job_list(), pk=pk)
        upid = _call(services.sync_job_run, record=record, actor=request.user)
        return Response({"upid": upid}, status=status.HTTP_202_ACCEPTED)


@extend_schema_serializer(component_name="OffsiteMembership")
class MembershipOut(serializers.Serializer):
    policy = serializers.IntegerField(source="policy_id")
    target = serializers.SerializerMethodField()
    stale = serializers.BooleanField()
    stale_reason = serializers.CharField()
    checked_at = serializers.DateTimeField()
    source_newest_at = serializers.DateTimeField()
    target_newest_at = serializers.DateTimeField()
    lag_seconds = serializers.IntegerField()
    target_logical_bytes = serializers.IntegerField()
    job_id = serializers.SerializerMethodField()

    def get_target(self, obj: Any) -> str:
        return str(obj.policy.target_datastore)

    def get_job_id(self, obj: Any) -> str | None:
        job = getattr(obj, "job", None)
        return job.job_id if job else None


_TENANT_STATUS = inline_serializer(
    "OffsiteTenantStatus",
    {
        "tenant": serializers.CharField(),
        "enabled": serializers.BooleanField(),
        "stale": serializers.BooleanField(),
        "offsite_usage_bytes": serializers.IntegerField(allow_null=True),
        "memberships": MembershipOut(many=True),
    },
)


class TenantStatusApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema(responses=_TENANT_STATUS)
    def get(self, request: Request, tenant_id: int) -> Response:
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        summary = selectors.tenant_offsite_status(tenant)
        return Response(
            {
                "tenant": tenant.slug,
                "enabled": summary.enabled,
                "stale": summary.stale,
                "offsite_usage_bytes": selectors.offsite_usage_bytes(tenant),
                "memberships": MembershipOut(summary.memberships, many=True).data,
            }
        )


class TenantEnableApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="OffsiteTenantEnableInput")
    class In(serializers.Serializer):
        policy = serializers.PrimaryKeyRelatedField(queryset=OffsitePolicy.objects.all())
        max_depth = serializers.IntegerField(required=False, allow_null=True, default=None)

    @extend_schema(request=In, responses={201: MembershipOut})
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        data = self.In(data=request.data)
        data.is_valid(raise_exception=True)
        membership = _call(
            services.tenant_offsite_enable,
            tenant=tenant,
            policy=data.validated_data["policy"],
            max_depth=data.validated_data["max_depth"],
            actor=request.user,
        )
        return Response(MembershipOut(membership).data, status=status.HTTP_201_CREATED)


class TenantDisableApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema_serializer(component_name="OffsiteTenantDisableInput")
    class In(serializers.Serializer):
        policy = serializers.PrimaryKeyRelatedField(queryset=OffsitePolicy.objects.all())

    @extend_schema(request=In, responses=_REMOVED)
    def post(self, request: Request, tenant_id: int) -> Response:
        tenant = get_object_or_404(Tenant, pk=tenant_id)
        data = self.In(data=request.data)
        data.is_valid(raise_exception=True)
        removed = _call(
            services.tenant_offsite_disable,
            tenant=tenant,
            policy=data.validated_data["policy"],
            actor=request.user,
        )
        return Response({"removed": removed})


class StatusRefreshApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema(request=None, responses={202: _QUEUED})
    def post(self, request: Request) -> Response:
        requests.status_refresh_request(actor=request.user)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
