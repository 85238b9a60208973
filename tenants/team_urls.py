"""URLs of the staff pages of a tenant's client users (mounted under /accounts/, where they
have always been; see tenants.team_views)."""

from django.urls import path

from tenants import team_views

app_name = "team"
urlpatterns = [
    path("tenants/<int:tenant_id>/users/", team_views.tenant_users, name="tenant_users"),
    path("tenants/<int:tenant_id>/users/invite/", team_views.tenant_user_invite, name="tenant_user_invite"),
]
