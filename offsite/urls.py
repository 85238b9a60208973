from django.urls import path

from offsite import views

app_name = "offsite"
urlpatterns = [
    path("", views.overview, name="overview"),
]
