"""/api/v1/my/: the signed-in client's own tenant."""

from django.urls import path

from selfservice import api

app_name = "selfservice-api"
urlpatterns = [
    path("restore-tokens/", api.RestoreTokenListApi.as_view(), name="restore_token_list"),
    path("restore-tokens/create/", api.RestoreTokenCreateApi.as_view(), name="restore_token_create"),
    path(
        "restore-tokens/<int:token_id>/revoke/",
        api.RestoreTokenRevokeApi.as_view(),
        name="restore_token_revoke",
    ),
    path("backups/", api.BackupListApi.as_view(), name="backups"),
    path("usage/", api.UsageApi.as_view(), name="usage"),
    path("connection/", api.ConnectionApi.as_view(), name="connection"),
]
