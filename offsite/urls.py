from django.urls import path

from offsite import views

app_name = "offsite"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("jobs/<int:pk>/run", views.job_run, name="job_run"),
    path("refresh", views.status_refresh, name="status_refresh"),
]
