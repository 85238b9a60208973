from django.urls import path

from alerts import views

app_name = "alerts"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("tenants/<int:tenant_id>/", views.quota_detail, name="quota"),
    path("tenants/<int:tenant_id>/extend-grace/", views.quota_extend, name="quota-extend"),
    path("tenants/<int:tenant_id>/exempt/", views.quota_exempt, name="quota-exempt"),
    path("tenants/<int:tenant_id>/override/", views.quota_override, name="quota-override"),
    path("tenants/<int:tenant_id>/settings/", views.alert_settings, name="settings"),
    path("tenants/<int:tenant_id>/webhook/", views.webhook, name="webhook"),
]
