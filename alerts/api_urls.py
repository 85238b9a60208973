from django.urls import path

from alerts import api

urlpatterns = [
    path("", api.AlertListApi.as_view(), name="alerts-api-list"),
    path("quotas/", api.QuotaStateListApi.as_view(), name="alerts-api-quota-list"),
    path("quotas/<int:tenant_id>/", api.QuotaStateDetailApi.as_view(), name="alerts-api-quota-detail"),
    path(
        "quotas/<int:tenant_id>/extend-grace/",
        api.QuotaGraceExtendApi.as_view(),
        name="alerts-api-quota-extend-grace",
    ),
    path("quotas/<int:tenant_id>/exempt/", api.QuotaExemptApi.as_view(), name="alerts-api-quota-exempt"),
    path(
        "quotas/<int:tenant_id>/override/",
        api.TenantQuotaOverrideApi.as_view(),
        name="alerts-api-quota-override",
    ),
    path("plans/<int:plan_id>/quota/", api.PlanQuotaApi.as_view(), name="alerts-api-plan-quota"),
    path("webhooks/<int:tenant_id>/", api.TenantWebhookApi.as_view(), name="alerts-api-webhook"),
    path("webhook-deliveries/", api.WebhookDeliveryListApi.as_view(), name="alerts-api-deliveries"),
]
