"""REST API of tenants: list, create, validate, onboard (one or many), runs."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsMspStaff
from core.pagination import BoundedLimitOffsetPagination
from plans.models import Plan
from tenants import selectors, services
from tenants.api.common import (
    ERRORS,
    RetentionFields,
    RunOutput,
    StaffWriteMixin,
    TenantDetailOutput,
    TenantOutput,
    _run_data,
    _tenant,
    _tenant_detail,
    _validation_response,
)
from tenants.models import OnboardingRun, PbsHost, Tenant
from tenants.naming import tenant_names


class TenantListApi(StaffWriteMixin, APIView):
    """Tenants: list with filters (staff and accounting), create (staff)."""

    class TenantListFilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, default="", allow_blank=True)
        host = serializers.CharField(required=False, default="", allow_blank=True)
        status = serializers.ChoiceField(choices=Tenant.Status.choices, required=False, allow_blank=True, default="")
        plan = serializers.CharField(required=False, default="", allow_blank=True)

    class TenantListInputSerializer(RetentionFields):
        slug = serializers.CharField(max_length=32)
        name = serializers.CharField(max_length=200)
        contact_name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
        contact_email = serializers.EmailField(required=False, default="", allow_blank=True)
        plan = serializers.CharField(required=False, allow_blank=True, default="", help_text="Plan name")
        host = serializers.CharField(required=False, allow_blank=True, default="", help_text="Host name")
        datastore = serializers.CharField(
            required=False, allow_blank=True, default="", help_text="Datastore name (needs host)"
        )
        onboard = serializers.BooleanField(required=False, default=True, help_text="Start onboarding at once")

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Search slug, name or e-mail"),
            OpenApiParameter("host", str, description="Host name"),
            OpenApiParameter("status", str, enum=Tenant.Status.values),
            OpenApiParameter("plan", str, description="Plan name"),
            OpenApiParameter("limit", int), OpenApiParameter("offset", int),
        ],
        responses=TenantOutput(many=True),
        operation_id="tenants_list",
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        filters = self.TenantListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        host_id = PbsHost.objects.filter(name=f["host"]).values_list("pk", flat=True).first() if f["host"] else None
        plan_id = Plan.objects.filter(name=f["plan"]).values_list("pk", flat=True).first() if f["plan"] else None
        if (f["host"] and host_id is None) or (f["plan"] and plan_id is None):
            qs: QuerySet[Tenant] = Tenant.objects.none()
        else:
            qs = selectors.tenant_list(search=f["q"], host_id=host_id, status=f["status"], plan_id=plan_id)
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TenantOutput(page, many=True).data)

    @extend_schema(
        request=TenantListInputSerializer,
        responses={
            201: inline_serializer("TenantCreated", {"tenant": TenantOutput(), "run": RunOutput(allow_null=True)}),
            **ERRORS,
        },
        operation_id="tenants_create",
    )
    def post(self, request: Request) -> Response:
        data = self.TenantListInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            tenant, run = services.tenant_create_request(
                slug=v["slug"], name=v["name"], contact_name=v["contact_name"], contact_email=v["contact_email"],
                host=v["host"] or None, datastore=v["datastore"] or None, plan=v["plan"] or None,
                retention=v, onboard=v["onboard"], actor=request.user,
            )  # fmt: skip
        except ValidationError as exc:
            return _validation_response(exc)
        tenant = _tenant(tenant.slug)
        return Response(
            {"tenant": TenantOutput(tenant).data, "run": _run_data(run) if run else None},
            status=status.HTTP_201_CREATED,
        )


class TenantValidateApi(APIView):
    """Check a slug (and placement) against PBS's naming rules without creating anything."""

    permission_classes = [IsMspStaff]

    class TenantValidateInputSerializer(serializers.Serializer):
        slug = serializers.CharField(max_length=64, allow_blank=True)
        datastore = serializers.CharField(required=False, allow_blank=True, default="")
        host = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        request=TenantValidateInputSerializer,
        responses=inline_serializer(
            "SlugCheck",
            {"valid": serializers.BooleanField(), "errors": serializers.DictField(), "names": serializers.DictField()},
        ),
        operation_id="tenants_validate",
    )
    def post(self, request: Request) -> Response:
        data = self.TenantValidateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:  # the placement is resolved by the rule creation uses (one owner)
            _host, store, _plan = services.tenant_placement_resolve(
                host=v["host"] or None, datastore=v["datastore"] or None
            )
            placement_errors: dict[str, list[str]] = {}
        except ValidationError as exc:
            store, placement_errors = None, exc.message_dict
        errors = {**services.tenant_validate(slug=v["slug"], name=None, datastore=store), **placement_errors}
        names: dict[str, str] = {}
        if not errors:
            n = tenant_names(v["slug"])
            names = {
                "userid": n.userid,
                "backup_tokenid": n.backup_tokenid,
                "namespace": n.namespace,
                "prune_job_id": n.prune_job_id,
                "acl_path": n.acl_path(store.name if store else "<store>"),
            }
        return Response({"valid": not errors, "errors": errors, "names": names})


class TenantDetailApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema(responses=TenantDetailOutput, operation_id="tenants_retrieve")
    def get(self, request: Request, slug: str) -> Response:
        return Response(_tenant_detail(slug))


class TenantOnboardApi(APIView):
    """Start onboarding (or repair, for an onboarded tenant); a second submit returns the
    live run (200) instead of starting another (201)."""

    permission_classes = [IsMspStaff]

    @extend_schema(request=None, responses={201: RunOutput, 200: RunOutput, **ERRORS}, operation_id="tenants_onboard")
    def post(self, request: Request, slug: str) -> Response:
        tenant = _tenant(slug)
        try:
            run, created = services.tenant_onboard(
                tenant_id=tenant.pk, actor=request.user, kind=services.onboard_kind_for(tenant)
            )
        except ValidationError as exc:
            return _validation_response(exc)
        return Response(_run_data(run), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TenantOnboardBulkApi(APIView):
    """Onboard many tenants in per-host batches that share one snapshot of PBS lists."""

    permission_classes = [IsMspStaff]

    class TenantOnboardBulkInputSerializer(serializers.Serializer):
        slugs = serializers.ListField(child=serializers.CharField(), min_length=1, max_length=5000)

    @extend_schema(
        request=TenantOnboardBulkInputSerializer,
        responses=inline_serializer("BulkOnboard", {"runs": serializers.ListField(child=serializers.DictField())}),
        operation_id="tenants_onboard_bulk",
    )  # fmt: skip
    def post(self, request: Request) -> Response:
        data = self.TenantOnboardBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        slugs = data.validated_data["slugs"]
        ids = dict(Tenant.objects.filter(slug__in=slugs).values_list("slug", "pk"))
        missing = sorted(set(slugs) - set(ids))
        if missing:
            return Response(
                {"detail": "unknown tenants", "errors": {"slugs": missing}}, status=status.HTTP_400_BAD_REQUEST
            )
        try:
            runs = services.tenant_onboard_bulk(tenant_ids=[ids[s] for s in slugs], actor=request.user)
        except ValidationError as exc:
            return _validation_response(exc)
        return Response(
            {"runs": [{"id": r.pk, "tenant_id": r.tenant_id, "status": r.status} for r in runs]},
            status=status.HTTP_202_ACCEPTED,
        )


class TenantRunListApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema(responses=RunOutput(many=True), operation_id="tenants_runs")
    def get(self, request: Request, slug: str) -> Response:
        tenant = _tenant(slug)
        return Response(RunOutput(selectors.tenant_runs(tenant=tenant, limit=50), many=True).data)


class OnboardingRunDetailApi(APIView):
    permission_classes = [IsMspStaff]

    @extend_schema(responses=RunOutput, operation_id="onboarding_runs_retrieve")
    def get(self, request: Request, run_id: int) -> Response:
        try:
            run = selectors.onboarding_run_get(run_id=run_id)
        except OnboardingRun.DoesNotExist:
            return Response({"detail": "not found"}, status=status.HTTP_404_NOT_FOUND)
        return Response(RunOutput(run).data)
