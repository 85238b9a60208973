"""REST API v1 routes of tenants/ (mounted at /api/v1/)."""

from django.urls import path

from tenants import api

urlpatterns = [
    path("hosts/", api.HostListApi.as_view(), name="api-hosts"),
    path("hosts/<slug:name>/", api.HostDetailApi.as_view(), name="api-host"),
    path("hosts/<slug:name>/check/", api.HostCheckApi.as_view(), name="api-host-check"),
    path("hosts/<slug:name>/drift/", api.HostDriftApi.as_view(), name="api-host-drift"),
    path(
        "hosts/<slug:name>/datastores/<str:datastore>/",
        api.DatastoreUpdateApi.as_view(),
        name="api-datastore",
    ),
    path("tenants/", api.TenantListApi.as_view(), name="api-tenants"),
    path("tenants/validate/", api.TenantValidateApi.as_view(), name="api-tenants-validate"),
    path("tenants/onboard/", api.TenantOnboardBulkApi.as_view(), name="api-tenants-onboard-bulk"),
    path("tenants/<slug:slug>/", api.TenantDetailApi.as_view(), name="api-tenant"),
    path("tenants/<slug:slug>/onboard/", api.TenantOnboardApi.as_view(), name="api-tenant-onboard"),
    path("tenants/<slug:slug>/runs/", api.TenantRunListApi.as_view(), name="api-tenant-runs"),
    path("tenants/<slug:slug>/suspend/", api.TenantSuspendApi.as_view(), name="api-tenant-suspend"),
    path("tenants/<slug:slug>/resume/", api.TenantResumeApi.as_view(), name="api-tenant-resume"),
    path("tenants/<slug:slug>/retention/", api.TenantRetentionApi.as_view(), name="api-tenant-retention"),
    path("tenants/<slug:slug>/rotate/", api.TenantRotateApi.as_view(), name="api-tenant-rotate"),
    path("tenants/<slug:slug>/drift/", api.TenantDriftApi.as_view(), name="api-tenant-drift"),
    path("tenants/<slug:slug>/repair/", api.TenantRepairApi.as_view(), name="api-tenant-repair"),
    path("tenants/<slug:slug>/offboard/", api.TenantOffboardApi.as_view(), name="api-tenant-offboard"),
    path(
        "tenants/<slug:slug>/restore-tokens/",
        api.RestoreTokenCreateApi.as_view(),
        name="api-tenant-restore-tokens",
    ),
    path(
        "tenants/<slug:slug>/tokens/<int:token_id>/reveal/",
        api.TokenRevealApi.as_view(),
        name="api-token-reveal",
    ),
    path(
        "tenants/<slug:slug>/tokens/<int:token_id>/revoke/",
        api.TokenRevokeApi.as_view(),
        name="api-token-revoke",
    ),
    path("onboarding-runs/<int:run_id>/", api.OnboardingRunDetailApi.as_view(), name="api-run"),
    path("audit/", api.AuditEventListApi.as_view(), name="api-audit"),
]
