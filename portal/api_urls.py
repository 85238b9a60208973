"""REST API v1: each app contributes its own api_urls module."""

from django.urls import include, path

urlpatterns = [
    path("", include("tenants.api_urls")),
    path("billing/", include("billing.api_urls")),
    path("my/", include("selfservice.api_urls")),
    path("offsite/", include("offsite.api_urls")),
    path("alerts/", include("alerts.api_urls")),
    path("accounts/", include("accounts.api_urls")),
]
