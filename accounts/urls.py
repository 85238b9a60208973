from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/verify/", views.login_totp_view, name="login_totp"),
    path("logout/", views.logout_view, name="logout"),
    path("security/", views.security, name="security"),
    path("security/totp/start/", views.totp_start, name="totp_start"),
    path("security/totp/confirm/", views.totp_confirm, name="totp_confirm"),
    path("security/totp/disable/", views.totp_disable, name="totp_disable"),
    path("security/password/", views.password_change, name="password_change"),
    path("security/api-keys/", views.api_key_create, name="api_key_create"),
    path("security/api-keys/<int:key_id>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    # The one URL that carries a secret: it only stores the token's hash and redirects.
    path("invite/<str:token>/", views.invitation_open, name="invitation_open"),
    path("invite/", views.invitation_accept, name="invitation_accept"),
    path("users/<int:user_id>/remove/", views.tenant_user_remove, name="tenant_user_remove"),
    path("users/<int:user_id>/totp-reset/", views.user_totp_reset, name="user_totp_reset"),
    path("invitations/<int:invitation_id>/revoke/", views.invitation_revoke, name="invitation_revoke"),
]
