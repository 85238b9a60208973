from django.urls import path

from offsite import views

app_name = "offsite"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("jobs/<int:pk>/run", views.job_run, name="job_run"),
    path("policies/apply", views.policy_apply, name="policy_apply"),
    path("refresh", views.status_refresh, name="status_refresh"),
]
