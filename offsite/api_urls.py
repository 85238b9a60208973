from django.urls import path

from offsite import api

urlpatterns = [
    path("remotes/", api.RemoteListApi.as_view(), name="offsite-api-remotes"),
    path("remotes/create/", api.RemoteCreateApi.as_view(), name="offsite-api-remote-create"),
    path("policies/", api.PolicyListApi.as_view(), name="offsite-api-policies"),
    path("policies/create/", api.PolicyCreateApi.as_view(), name="offsite-api-policy-create"),
    path("policies/<int:pk>/", api.PolicyUpdateApi.as_view(), name="offsite-api-policy-update"),
    path("policies/<int:pk>/apply/", api.PolicyApplyApi.as_view(), name="offsite-api-policy-apply"),
    path("jobs/", api.JobListApi.as_view(), name="offsite-api-jobs"),
    path("jobs/<int:pk>/run/", api.JobRunApi.as_view(), name="offsite-api-job-run"),
    path("tenants/<int:tenant_id>/", api.TenantStatusApi.as_view(), name="offsite-api-tenant"),
    path(
        "tenants/<int:tenant_id>/enable/",
        api.TenantEnableApi.as_view(),
        name="offsite-api-tenant-enable",
    ),
    path(
        "tenants/<int:tenant_id>/disable/",
        api.TenantDisableApi.as_view(),
        name="offsite-api-tenant-disable",
    ),
    path("status/refresh/", api.StatusRefreshApi.as_view(), name="offsite-api-status-refresh"),
]
