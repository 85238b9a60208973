"""REST API v1 for PBS hosts, tenants, onboarding runs, lifecycle actions and the audit log.

One view per operation (a class whose methods are the operation's HTTP verbs), nested
input/output serializers, no logic in serializers: views parse, check the role, call one
service or selector, serialize. Errors: field problems are 400 ``{"errors": {field: [..]}}``;
a PBS failure is 502 ``{"detail", "hint"}``; a secret is only ever in the body of the POST
that reveals it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import client_ip
from accounts.permissions import IsMspAdmin, IsMspStaff, IsStaffOrAccounting
from audit.models import AuditEvent
from plans.models import Plan
from tenants import selectors, services
from tenants.models import Datastore, OnboardingRun, PbsHost, Tenant, TenantToken

# --- shared output serializers --------------------------------------------------------------


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


# --- shared bits -------------------------------------------------------------------------------------


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


# --- hosts -----------------------------------------------------------------------------------


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


# --- tenants -------------------------------------------------------------------------------------


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
        paginator = LimitOffsetPagination()
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
        host = datastore = plan = None
        errors: dict[str, list[str]] = {}
        if v["host"]:
            host = PbsHost.objects.filter(name=v["host"]).first()
            if host is None:
                errors["host"] = [f"No host named '{v['host']}'."]
        if v["datastore"]:
            datastore = (
                Datastore.objects.select_related("host")
                .filter(name=v["datastore"], **({"host": host} if host else {}))
                .first()
            )
            if datastore is None:
                errors["datastore"] = [f"No datastore '{v['datastore']}'{' on ' + v['host'] if host else ''}."]
        if v["plan"]:
            plan = Plan.objects.filter(name=v["plan"]).first()
            if plan is None:
                errors["plan"] = [f"No plan named '{v['plan']}'."]
        if errors:
            return Response({"detail": "invalid input", "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        defaults = services.Retention()
        retention = services.Retention(
            **{k: v.get(k, getattr(defaults, k)) for k in services.KEEP_FIELDS},
            schedule=v.get("schedule") or defaults.schedule,
        )
        try:
            tenant = services.tenant_create(
                slug=v["slug"], name=v["name"], contact_name=v["contact_name"], contact_email=v["contact_email"],
                plan=plan, host=host, datastore=datastore, retention=retention, actor=request.user,
            )  # fmt: skip
            run = services.tenant_onboard(tenant_id=tenant.pk, actor=request.user)[0] if v["onboard"] else None
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
        store = None
        if v["datastore"]:
            store = Datastore.objects.filter(
                name=v["datastore"], **({"host__name": v["host"]} if v["host"] else {})
            ).first()
        errors = services.tenant_validate(slug=v["slug"], name=None, datastore=store)
        names: dict[str, str] = {}
        if not errors:
            from tenants.naming import tenant_names

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
        kind = (
            OnboardingRun.Kind.REPAIR
            if tenant.status in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)
            else OnboardingRun.Kind.ONBOARD
        )
        try:
            run, created = services.tenant_onboard(tenant_id=tenant.pk, actor=request.user, kind=kind)
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


# --- audit log ----------------------------------------------------------------------------------


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
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AuditEventOutput(page, many=True).data)
