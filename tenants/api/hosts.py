"""REST API of PBS hosts and datastores (staff)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsMspAdmin, IsMspStaff
from tenants import selectors, services
from tenants.api.common import (
    ERRORS,
    DatastoreOutput,
    HostDetailOutput,
    HostOutput,
    _lifecycle_response,
    _validation_response,
)
from tenants.models import Datastore, PbsHost


class HostListApi(APIView):
    """PBS hosts (GET: staff) and host registration (POST: admins)."""

    class HostListInputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=64)
        url = serializers.CharField(max_length=200)
        fingerprint = serializers.CharField(max_length=95, required=False, allow_blank=True, default="")
        ca_pem = serializers.CharField(required=False, allow_blank=True, default="")
        public_address = serializers.CharField(required=False, allow_blank=True, default="")
        token_id = serializers.CharField(max_length=64)
        token_secret = serializers.CharField(max_length=200, write_only=True)
        metering_token_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        metering_secret = serializers.CharField(
            max_length=200, required=False, allow_blank=True, default="", write_only=True
        )
        check = serializers.BooleanField(required=False, default=True)

    def get_permissions(self) -> list[Any]:
        return [IsMspStaff()] if self.request.method == "GET" else [IsMspAdmin()]

    @extend_schema(responses=HostOutput(many=True), operation_id="hosts_list")
    def get(self, request: Request) -> Response:
        return Response(HostOutput(selectors.host_list(), many=True).data)

    @extend_schema(
        request=HostListInputSerializer, responses={201: HostOutput, **ERRORS}, operation_id="hosts_register"
    )
    def post(self, request: Request) -> Response:
        data = self.HostListInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            host = services.pbshost_register(actor=request.user, **data.validated_data)
        except ValidationError as exc:
            return _validation_response(exc)
        except services.LifecycleError as exc:
            return _lifecycle_response(exc)
        return Response(HostOutput(selectors.host_get(name=host.name)).data, status=status.HTTP_201_CREATED)


class HostDetailApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema(responses=HostDetailOutput, operation_id="hosts_retrieve")
    def get(self, request: Request, name: str) -> Response:
        host = get_object_or_404(PbsHost.objects.prefetch_related("datastores"), name=name)
        return Response(HostDetailOutput(host).data)


class HostCheckApi(APIView):
    """Run a health check now (version, pin, datastores, token privileges)."""

    permission_classes = [IsMspStaff]

    @extend_schema(request=None, responses=HostDetailOutput, operation_id="hosts_check")
    def post(self, request: Request, name: str) -> Response:
        host = get_object_or_404(PbsHost, name=name)
        services.pbshost_check(host_id=host.pk, actor=request.user)
        return Response(HostDetailOutput(selectors.host_get(name=name)).data)


class HostDriftApi(APIView):
    """Drift check of every tenant on the host, plus tenant-like objects nobody owns."""

    permission_classes = [IsMspStaff]

    @extend_schema(request=None, responses={200: serializers.ListSerializer(child=serializers.DictField()), **ERRORS},
                   operation_id="hosts_drift")  # fmt: skip
    def post(self, request: Request, name: str) -> Response:
        host = get_object_or_404(PbsHost, name=name)
        try:
            return Response(services.pbshost_drift_check(host_id=host.pk, actor=request.user))
        except services.LifecycleError as exc:
            return _lifecycle_response(exc)


class DatastoreUpdateApi(APIView):
    permission_classes = [IsMspAdmin]

    class DatastoreUpdateInputSerializer(serializers.Serializer):
        enabled = serializers.BooleanField(required=False)
        placement_weight = serializers.IntegerField(required=False, min_value=0, max_value=1000)

    @extend_schema(request=DatastoreUpdateInputSerializer, responses=DatastoreOutput, operation_id="datastores_update")
    def patch(self, request: Request, name: str, datastore: str) -> Response:
        store = get_object_or_404(Datastore, host__name=name, name=datastore)
        data = self.DatastoreUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        store = services.datastore_update(datastore_id=store.pk, actor=request.user, **data.validated_data)
        return Response(DatastoreOutput(store).data)
