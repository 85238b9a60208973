from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from portal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("tenants.team_urls")),  # a tenant's client users (staff)
    path("accounts/", include("accounts.urls")),
    path("tenants/", include("tenants.urls")),
    path("billing/", include("billing.urls")),
    path("my/", include("selfservice.urls")),
    path("offsite/", include("offsite.urls")),
    path("alerts/", include("alerts.urls")),
    path("django-admin/", admin.site.urls),
    path("api/v1/", include("portal.api_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", views.api_docs, name="api-docs"),
]
