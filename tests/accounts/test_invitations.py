"""Invitations: one-time, expiring, stored hashed, never logged; team management rights."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import Invitation, Role, User
from accounts.services import invitations
from audit.models import AuditEvent

NEW_PASSWORD = "a-long-and-unusual-passphrase-42"


def _invite(client: Client, actor, tenant, email: str = "new.person@example.test", *, captured):
    client.force_login(actor)
    with captured(execute=True):
        response = client.post(
            f"/accounts/tenants/{tenant.pk}/users/invite/", {"email": email, "is_tenant_admin": ""}
        )
    assert response.status_code == 302, response.content
    client.logout()
    body = mail.outbox[-1].body
    link = re.search(r"https?://\S+/accounts/invite/(\S+)/", body)
    assert link, body
    return link.group(1)


def _accept(client: Client, token: str, username: str = "newperson"):
    opened = client.get(f"/accounts/invite/{token}/")
    assert opened.status_code == 302
    assert token not in opened.url  # moved on to a URL without the token
    return client.post(
        opened.url, {"username": username, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )


@pytest.mark.django_db
def test_staff_invites_and_the_link_creates_a_client_of_that_tenant(
    client: Client, operator_user, tenant_a, django_capture_on_commit_callbacks
) -> None:
    token = _invite(client, operator_user, tenant_a, captured=django_capture_on_commit_callbacks)
    assert mail.outbox[-1].to == ["new.person@example.test"]

    response = _accept(client, token)
    assert response.status_code == 302
    user = User.objects.get(username="newperson")
    assert (user.role, user.tenant, user.email) == (Role.CLIENT, tenant_a, "new.person@example.test")
    assert user.password.startswith("argon2")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert AuditEvent.objects.filter(action="invitation.sent", tenant=tenant_a).exists()
    assert AuditEvent.objects.filter(action="invitation.accepted", actor=user).exists()


@pytest.mark.django_db
def test_the_token_is_stored_only_as_a_hash(
    client: Client, operator_user, tenant_a, django_capture_on_commit_callbacks
) -> None:
    token = _invite(client, operator_user, tenant_a, captured=django_capture_on_commit_callbacks)
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(Invitation.objects.values()))
    assert token not in str(list(AuditEvent.objects.values()))
    assert len(token) >= 40  # 32 random bytes


@pytest.mark.django_db
def test_an_invitation_works_only_once(
    client: Client, operator_user, tenant_a, django_capture_on_commit_callbacks
) -> None:
    token = _invite(client, operator_user, tenant_a, captured=django_capture_on_commit_callbacks)
    assert _accept(client, token).status_code == 302
    client.logout()
    second = _accept(Client(), token, username="someoneelse")
    assert second.status_code == 410
    assert not User.objects.filter(username="someoneelse").exists()
    with pytest.raises(services.InvitationError):
        services.invitation_accept(
            token_hash=services.invitation_token_hash(token),
            username="third",
            password=NEW_PASSWORD,
            ip=None,
        )


@pytest.mark.django_db
def test_an_expired_invitation_is_refused(
    client: Client, operator_user, tenant_a, django_capture_on_commit_callbacks
) -> None:
    token = _invite(client, operator_user, tenant_a, captured=django_capture_on_commit_callbacks)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _accept(client, token)
    assert response.status_code == 410
    assert b"not valid" in response.content
    assert not User.objects.filter(username="newperson").exists()


@pytest.mark.django_db
def test_invitations_expire_after_the_configured_hours(
    operator_user, tenant_a, settings
) -> None:
    settings.PORTAL_INVITE_TTL_HOURS = 5
    invitation = services.invitation_create(tenant=tenant_a, email="x@example.test", actor=operator_user)
    assert timedelta(hours=4, minutes=59) < invitation.expires_at - timezone.now() <= timedelta(hours=5)


@pytest.mark.django_db
def test_a_revoked_invitation_is_refused(
    client: Client, operator_user, tenant_a, django_capture_on_commit_callbacks
) -> None:
    token = _invite(client, operator_user, tenant_a, captured=django_capture_on_commit_callbacks)
    client.force_login(operator_user)
    client.post(f"/accounts/invitations/{Invitation.objects.get().pk}/revoke/")
    client.logout()
    assert _accept(client, token).status_code == 410


@pytest.mark.django_db
def test_a_made_up_token_looks_the_same_as_an_expired_one(client: Client) -> None:
    response = client.get("/accounts/invite/not-a-real-token/")
    assert response.status_code == 302
    assert client.get(response.url).status_code == 410


@pytest.mark.django_db
def test_the_token_never_reaches_a_log(
    client: Client, operator_user, tenant_a, django_capture_on_commit_callbacks, caplog
) -> None:
    token = _invite(client, operator_user, tenant_a, captured=django_capture_on_commit_callbacks)
    with caplog.at_level(logging.DEBUG):
        _accept(client, token)
        _accept(Client(), token, username="again")  # the refused second use logs a 410
    # The refusal is logged, by its token-less path only.
    assert "Gone: /accounts/invite/" in caplog.text
    assert token not in caplog.text


@pytest.mark.django_db
def test_a_weak_password_is_refused_at_sign_up(
    client: Client, operator_user, tenant_a, django_capture_on_commit_callbacks
) -> None:
    token = _invite(client, operator_user, tenant_a, captured=django_capture_on_commit_callbacks)
    opened = client.get(f"/accounts/invite/{token}/")
    response = client.post(opened.url, {"username": "weak", "password1": "password123", "password2": "password123"})
    assert response.status_code == 200
    assert not User.objects.filter(username="weak").exists()
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.django_db
def test_accounting_cannot_invite(client: Client, accounting_user, tenant_a) -> None:
    client.force_login(accounting_user)
    response = client.post(f"/accounts/tenants/{tenant_a.pk}/users/invite/", {"email": "a@example.test"})
    assert response.status_code == 403
    assert not Invitation.objects.exists()


@pytest.mark.django_db
def test_a_client_admin_may_not_invite_into_another_tenant(client_a_admin, tenant_b) -> None:
    with pytest.raises(PermissionDenied):
        services.invitation_create(tenant=tenant_b, email="x@example.test", actor=client_a_admin)


@pytest.mark.django_db
def test_staff_removes_a_client_user_and_the_session_dies(
    client: Client, operator_user, client_a
) -> None:
    victim = Client()
    victim.force_login(client_a)
    client.force_login(operator_user)
    response = client.post(f"/accounts/users/{client_a.pk}/remove/")
    assert response.status_code == 302
    assert not User.objects.filter(pk=client_a.pk).exists()
    assert victim.get("/my/").status_code == 302  # back to sign-in
    event = AuditEvent.objects.get(action="user.removed")
    assert event.target == "client-a"


@pytest.mark.django_db
def test_staff_cannot_remove_staff_through_the_tenant_page(client: Client, operator_user, staff_user) -> None:
    client.force_login(operator_user)
    assert client.post(f"/accounts/users/{staff_user.pk}/remove/").status_code == 404
    assert User.objects.filter(pk=staff_user.pk).exists()


@pytest.mark.django_db
def test_tenant_users_page_lists_users_with_constant_queries(
    client: Client, operator_user, tenant_a, django_assert_max_num_queries
) -> None:
    from tests.factories import make_user

    client.force_login(operator_user)
    for _ in range(2):
        make_user(role=Role.CLIENT, tenant=tenant_a)
    services.invitation_create(tenant=tenant_a, email="p@example.test", actor=operator_user)
    with django_assert_max_num_queries(12) as few:
        client.get(f"/accounts/tenants/{tenant_a.pk}/users/")
    for _ in range(5):
        make_user(role=Role.CLIENT, tenant=tenant_a)
        services.invitation_create(
            tenant=tenant_a, email=f"q{_}@example.test", actor=operator_user
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(f"/accounts/tenants/{tenant_a.pk}/users/")
    assert response.status_code == 200
    assert response.content.count(b"Remove") == 7


@pytest.mark.django_db(transaction=True)
def test_an_invitation_whose_mail_fails_is_withdrawn_and_reported(
    operator_user, tenant_a, monkeypatch
) -> None:
    import smtplib

    def refuse(**kwargs):
        raise smtplib.SMTPServerDisconnected("mail server went away")

    monkeypatch.setattr(invitations, "send_mail", refuse)
    with pytest.raises(services.InvitationError, match="could not be sent"):
        services.invitation_create(tenant=tenant_a, email="x@example.test", actor=operator_user)
    assert Invitation.objects.get().state == "revoked"
