from django.urls import path

from selfservice import views

app_name = "selfservice"
urlpatterns = [
    path("", views.home, name="home"),
    path("backups/", views.backups, name="backups"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/create/", views.token_create, name="token_create"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("invoices/<str:number>.pdf", views.invoice_pdf, name="invoice_pdf"),
    path("credit-notes/<str:number>.pdf", views.credit_note_pdf, name="credit_note_pdf"),
    path("team/", views.team, name="team"),
    path("team/invite/", views.team_invite, name="team_invite"),
    path("team/users/<int:user_id>/remove/", views.team_remove, name="team_remove"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        views.team_invitation_revoke,
        name="team_invitation_revoke",
    ),
]
