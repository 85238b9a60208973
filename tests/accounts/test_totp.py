"""TOTP second factor: enrolment with a manual key, sign-in with a code, no replay, policy."""

from __future__ import annotations

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import Role, User
from accounts.permissions import SECOND_FACTOR_SESSION_KEY
from audit.models import AuditEvent
from core.crypto import decrypt_secret
from tests.factories import DEFAULT_PASSWORD, make_user


def _enrol(client: Client, user: User) -> str:
    client.force_login(user)
    assert client.post("/accounts/security/totp/start/", {"password": DEFAULT_PASSWORD}).status_code == 302
    page = client.get("/accounts/security/")
    user.refresh_from_db()
    secret = decrypt_secret(user.totp_secret_enc)
    assert secret.encode() in page.content  # manual key shown
    assert b"otpauth://totp/" in page.content  # and the URI, no QR image
    code = pyotp.TOTP(secret).now()
    response = client.post("/accounts/security/totp/confirm/", {"code": code})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.has_totp
    client.logout()
    return secret


def _sign_in(client: Client, user: User, secret: str) -> None:
    """The portal's own sign-in: password, then a code."""
    client.post("/accounts/login/", {"username": user.username, "password": DEFAULT_PASSWORD})
    response = client.post("/accounts/login/verify/", {"code": _code_for(secret, 1)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def _code_for(secret: str, steps_ahead: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(timezone.now()) + steps_ahead)


@pytest.mark.django_db
def test_enrolment_shows_key_and_uri_and_a_code_confirms_it(client: Client, operator_user) -> None:
    _enrol(client, operator_user)
    assert AuditEvent.objects.filter(action="totp.enabled", actor=operator_user).exists()
    # The seed is stored encrypted, never in clear.
    operator_user.refresh_from_db()
    secret = decrypt_secret(operator_user.totp_secret_enc)
    assert secret not in operator_user.totp_secret_enc


@pytest.mark.django_db
def test_a_wrong_confirmation_code_does_not_enable_totp(client: Client, operator_user) -> None:
    client.force_login(operator_user)
    client.post("/accounts/security/totp/start/", {"password": DEFAULT_PASSWORD})
    client.post("/accounts/security/totp/confirm/", {"code": "000000"})
    operator_user.refresh_from_db()
    assert not operator_user.has_totp


@pytest.mark.django_db
def test_sign_in_with_totp_needs_the_code_after_the_password(client: Client, operator_user) -> None:
    secret = _enrol(client, operator_user)
    response = client.post(
        "/accounts/login/", {"username": operator_user.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert response.url == "/accounts/login/verify/"
    assert "_auth_user_id" not in client.session  # not signed in yet
    # Nothing behind login is reachable half-way.
    assert client.get("/accounts/security/").status_code == 302

    response = client.post("/accounts/login/verify/", {"code": _code_for(secret, 1)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(operator_user.pk)
    event = AuditEvent.objects.get(action="login.succeeded")
    assert event.detail == {"second_factor": "totp"}


@pytest.mark.django_db
def test_a_totp_code_is_accepted_only_once(client: Client, operator_user) -> None:
    secret = _enrol(client, operator_user)
    code = _code_for(secret, 1)  # a fresh step the enrolment did not use
    client.post("/accounts/login/", {"username": operator_user.username, "password": DEFAULT_PASSWORD})
    client.post("/accounts/login/verify/", {"code": code})
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"username": operator_user.username, "password": DEFAULT_PASSWORD})
    response = client.post("/accounts/login/verify/", {"code": code})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_wrong_codes_count_towards_the_lockout(client: Client, operator_user, settings) -> None:
    settings.PORTAL_LOGIN_MAX_FAILURES = 3
    _enrol(client, operator_user)
    client.post("/accounts/login/", {"username": operator_user.username, "password": DEFAULT_PASSWORD})
    for _ in range(3):
        response = client.post("/accounts/login/verify/", {"code": "123456"})
    assert response.status_code == 302
    assert response.url == "/accounts/login/"
    assert AuditEvent.objects.filter(action="login.lockout").exists()
    response = client.post(
        "/accounts/login/", {"username": operator_user.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 429


@pytest.mark.django_db
def test_the_code_step_cannot_be_skipped(client: Client, operator_user) -> None:
    response = client.post("/accounts/login/verify/", {"code": "123456"})
    assert response.status_code == 302
    assert response.url == "/accounts/login/"


@pytest.mark.django_db
def test_policy_sends_staff_without_totp_to_enrolment_everywhere(
    client: Client, operator_user, accounting_user, settings
) -> None:
    settings.PORTAL_REQUIRE_STAFF_TOTP = True
    for user in (operator_user, accounting_user):
        client.force_login(user)
        response = client.get("/")
        assert response.status_code == 302
        assert response.url == "/accounts/security/"
        assert client.get("/accounts/security/").status_code == 200
        assert client.get("/api/v1/my/backups/").status_code == 403


@pytest.mark.django_db
def test_policy_does_not_apply_to_clients(client: Client, client_a, settings) -> None:
    settings.PORTAL_REQUIRE_STAFF_TOTP = True
    client.force_login(client_a)
    assert client.get("/accounts/security/").status_code == 200
    response = client.get("/")
    assert response.url == "/my/"


@pytest.mark.django_db
def test_staff_cannot_turn_off_a_required_second_factor(
    client: Client, operator_user, settings
) -> None:
    secret = _enrol(client, operator_user)
    settings.PORTAL_REQUIRE_STAFF_TOTP = True
    _sign_in(client, operator_user, secret)
    client.post("/accounts/security/totp/disable/", {"code": _code_for(secret, 2)})
    operator_user.refresh_from_db()
    assert operator_user.has_totp


@pytest.mark.django_db
def test_a_client_may_turn_off_totp_with_a_current_code(client: Client, client_a) -> None:
    secret = _enrol(client, client_a)
    client.force_login(client_a)
    session = client.session  # as after the code step (its code would be spent for the test below)
    session[SECOND_FACTOR_SESSION_KEY] = 1
    session.save()
    client.post("/accounts/security/totp/disable/", {"code": "000000"})
    client_a.refresh_from_db()
    assert client_a.has_totp
    client.post("/accounts/security/totp/disable/", {"code": _code_for(secret, 1)})
    client_a.refresh_from_db()
    assert not client_a.has_totp
    assert AuditEvent.objects.filter(action="totp.disabled").exists()


@pytest.mark.django_db
def test_an_admin_resets_a_lost_second_factor(client: Client, staff_user, client_a) -> None:
    _enrol(client, client_a)
    client.force_login(staff_user)
    response = client.post(f"/accounts/users/{client_a.pk}/totp-reset/")
    assert response.status_code == 302
    client_a.refresh_from_db()
    assert not client_a.has_totp
    assert AuditEvent.objects.filter(action="totp.reset", actor=staff_user).exists()


@pytest.mark.django_db
def test_an_operator_cannot_reset_second_factors(client: Client, operator_user) -> None:
    other = make_user(role=Role.OPERATOR)
    client.force_login(operator_user)
    assert client.post(f"/accounts/users/{other.pk}/totp-reset/").status_code == 403


@pytest.mark.django_db
def test_totp_verify_refuses_malformed_codes(operator_user) -> None:
    secret = services.totp_enrolment_start(user=operator_user)
    services.totp_enrolment_confirm(user=operator_user, code=pyotp.TOTP(secret).now(), ip=None)
    for bad in ("", "12345", "1234567", "abcdef", "12 34 5x"):
        assert not services.totp_verify(user=operator_user, code=bad)


@pytest.mark.django_db
def test_under_the_policy_staff_can_enrol_and_then_work(client: Client, operator_user, settings) -> None:
    settings.PORTAL_REQUIRE_STAFF_TOTP = True
    secret = _enrol(client, operator_user)  # every enrolment step is reachable
    client.post("/accounts/login/", {"username": operator_user.username, "password": DEFAULT_PASSWORD})
    client.post("/accounts/login/verify/", {"code": _code_for(secret, 1)})
    response = client.get("/")
    assert response.status_code == 200  # staff start on the overview
    assert b"Overview" in response.content


def test_a_session_that_skipped_the_second_factor_is_ended(client: Client, operator_user) -> None:
    """A password alone (any login form but the portal's, e.g. the Django admin's) never gives
    a session to a user who has a second factor."""
    _enrol(client, operator_user)
    client.force_login(operator_user)  # what another login form would do: password only
    response = client.get("/tenants/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
    api = client.get("/api/v1/tenants/")
    assert api.status_code in (401, 403)


def test_signing_in_with_the_code_gives_a_working_session(client: Client, operator_user) -> None:
    secret = _enrol(client, operator_user)
    _sign_in(client, operator_user, secret)
    assert client.get("/tenants/").status_code == 200


def test_setting_up_a_second_factor_asks_for_the_password_again(client: Client, operator_user) -> None:
    client.force_login(operator_user)
    client.post("/accounts/security/totp/start/", {"password": "not-the-password"})
    client.post("/accounts/security/totp/start/")
    operator_user.refresh_from_db()
    assert not operator_user.totp_secret_enc
    client.post("/accounts/security/totp/start/", {"password": DEFAULT_PASSWORD})
    operator_user.refresh_from_db()
    assert operator_user.totp_secret_enc
