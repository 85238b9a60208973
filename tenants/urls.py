from django.urls import path

from tenants import views

app_name = "tenants"
# The list itself ("" -> "list") and its CSV ("export.csv") are served by the overview app,
# which knows the figures of the apps above tenants; portal/urls.py mounts them in this namespace.
urlpatterns = [
    path("new/", views.tenant_new, name="new"),
    path("new/validate/", views.tenant_validate, name="validate"),
    path("hosts/", views.host_list, name="hosts"),
    path("hosts/new/", views.host_new, name="host_new"),
    path("hosts/<slug:name>/", views.host_detail, name="host"),
    path("hosts/<slug:name>/check/", views.host_check, name="host_check"),
    path("hosts/<slug:name>/drift/", views.host_drift, name="host_drift"),
    path("hosts/<slug:name>/repair/", views.host_repair, name="host_repair"),
    path("hosts/<slug:name>/fingerprint/", views.host_fingerprint, name="host_fingerprint"),
    path(
        "hosts/<slug:name>/datastores/<int:datastore_id>/",
        views.datastore_update,
        name="datastore_update",
    ),
    path("<slug:slug>/", views.tenant_detail, name="detail"),
    path("<slug:slug>/onboard/", views.tenant_onboard, name="onboard"),
    path("<slug:slug>/runs/<int:run_id>/", views.run_detail, name="run"),
    path("<slug:slug>/runs/<int:run_id>/retry/", views.run_retry, name="run_retry"),
    path("<slug:slug>/suspend/", views.tenant_suspend, name="suspend"),
    path("<slug:slug>/resume/", views.tenant_resume, name="resume"),
    path("<slug:slug>/retention/", views.tenant_retention, name="retention"),
    path("<slug:slug>/offboard/", views.tenant_offboard, name="offboard"),
    path("<slug:slug>/drift/", views.tenant_drift, name="drift"),
    path("<slug:slug>/repair/", views.tenant_repair, name="repair"),
    path("<slug:slug>/tokens/rotate/", views.token_rotate, name="rotate"),
    path("<slug:slug>/tokens/restore/", views.restore_token_new, name="restore_token_new"),
    path("<slug:slug>/tokens/<int:token_id>/reveal/", views.token_reveal, name="reveal"),
    path("<slug:slug>/tokens/<int:token_id>/revoke/", views.token_revoke, name="revoke"),
]
