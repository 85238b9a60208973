from django.urls import path

from tenants import views

app_name = "tenants"
urlpatterns = [
    path("", views.list, name="list"),
    path("hosts/", views.hosts, name="hosts"),
]
