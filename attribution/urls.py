from django.urls import path

from attribution import views

app_name = "attribution"
urlpatterns = [
    path("tenants/<int:tenant_id>/", views.tenant_usage, name="tenant"),
    path("mine/", views.my_usage, name="mine"),
    path("datastores/<int:datastore_id>/", views.datastore_usage, name="datastore"),
]
