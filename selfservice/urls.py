from django.urls import path

from selfservice import views

app_name = "selfservice"
urlpatterns = [
    path("", views.home, name="home"),
]
