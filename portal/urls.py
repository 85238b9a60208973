from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from overview import views as overview_views
from portal import views
from tenants import urls as tenant_urls

# The staff tenant list shows figures of the apps above tenants (usage, quota, alerts), so the
# overview app serves it; it keeps its address and name in the tenants namespace.
tenant_patterns = [
    path("", overview_views.tenant_list, name="list"),
    path("export.csv", overview_views.tenant_export, name="export"),
    *tenant_urls.urlpatterns,
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("tenants.team_urls")),  # a tenant's client users (staff)
    path("accounts/", include("accounts.urls")),
    path("tenants/", include((tenant_patterns, tenant_urls.app_name))),
    path("billing/", include("billing.urls")),
    path("my/", include("selfservice.urls")),
    path("offsite/", include("offsite.urls")),
    path("alerts/", include("alerts.urls")),
    path("usage/", include("attribution.urls")),  # chunk-exact usage panels
    path("api/v1/", include("portal.api_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", views.api_docs, name="api-docs"),
]

if settings.DEBUG:
    # Development only: the admin signs in through the portal's login (throttled, second
    # factor, audited), never through a form of its own. Production does not mount it.
    def _admin_login(request, extra_context=None):
        return redirect_to_login(request.GET.get("next") or request.get_full_path())

    admin.site.login = _admin_login
    urlpatterns.append(path("django-admin/", admin.site.urls))
