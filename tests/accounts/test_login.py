"""Sign-in: argon2, throttling per account and per IP, lockout, audit, safe redirects."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import LoginThrottle, Role
from audit.models import AuditEvent
from tests.factories import DEFAULT_PASSWORD, make_user

LOGIN = "/accounts/login/"


def _login(client: Client, username: str, password: str, *, ip: str = "203.0.113.5", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


@pytest.fixture
def limits(settings):
    settings.PORTAL_LOGIN_MAX_FAILURES = 3
    settings.PORTAL_LOGIN_MAX_FAILURES_PER_IP = 5
    settings.PORTAL_LOGIN_LOCKOUT_SECONDS = 600
    return settings


@pytest.mark.django_db
def test_login_url_names_keep_their_paths() -> None:
    assert reverse("accounts:login") == LOGIN
    assert reverse("accounts:logout") == "/accounts/logout/"
    assert reverse("accounts:security") == "/accounts/security/"


@pytest.mark.django_db
def test_a_good_password_signs_in_and_is_audited(client: Client, operator_user) -> None:
    response = _login(client, operator_user.username, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.session["_auth_user_id"] == str(operator_user.pk)
    event = AuditEvent.objects.get(action="login.succeeded")
    assert event.actor == operator_user
    assert event.ip_address == "203.0.113.5"
    assert event.detail == {"second_factor": "none"}


@pytest.mark.django_db
def test_a_wrong_password_is_refused_counted_and_audited_without_the_password(
    client: Client, operator_user
) -> None:
    response = _login(client, operator_user.username, "not-the-password-123")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert b"user name or the password is wrong" in response.content
    event = AuditEvent.objects.get(action="login.failed")
    assert event.target == operator_user.username
    assert event.result == AuditEvent.Result.FAILED
    assert "not-the-password-123" not in str(event.detail)
    assert LoginThrottle.objects.get(scope="account", key=operator_user.username).failures == 1


@pytest.mark.django_db
def test_the_account_locks_after_max_failures_even_for_the_right_password(
    client: Client, operator_user, limits
) -> None:
    for _ in range(3):
        response = _login(client, operator_user.username, "wrong-password-xyz")
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert AuditEvent.objects.filter(action="login.lockout", target=operator_user.username).count() == 1

    # From another address, with the right password: still locked (per-account lock).
    response = _login(client, operator_user.username, DEFAULT_PASSWORD, ip="198.51.100.9")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    refused = AuditEvent.objects.filter(action="login.failed", result=AuditEvent.Result.DENIED)
    assert refused.get().detail["reason"] == "locked"


@pytest.mark.django_db
def test_the_account_opens_again_after_the_lockout_period(
    client: Client, operator_user, limits
) -> None:
    for _ in range(3):
        _login(client, operator_user.username, "wrong-password-xyz")
    LoginThrottle.objects.update(locked_until="2000-01-01T00:00:00Z")
    response = _login(client, operator_user.username, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert not LoginThrottle.objects.filter(scope="account").exists()


@pytest.mark.django_db
def test_one_ip_guessing_many_accounts_is_locked_out(client: Client, operator_user, limits) -> None:
    for n in range(5):
        _login(client, f"nobody{n}", "wrong-password-xyz", ip="192.0.2.66")
    assert LoginThrottle.objects.get(scope="ip", key="192.0.2.66").locked_until is not None
    # A real account from that address is refused while the address is locked...
    assert _login(client, operator_user.username, DEFAULT_PASSWORD, ip="192.0.2.66").status_code == 429
    # ...but the account itself is fine from elsewhere.
    assert _login(client, operator_user.username, DEFAULT_PASSWORD, ip="192.0.2.67").status_code == 302


@pytest.mark.django_db
def test_unknown_account_names_are_throttled_like_real_ones(client: Client, limits) -> None:
    """No difference an attacker could use to find out which names exist."""
    for _ in range(3):
        response = _login(client, "ghost", "wrong-password-xyz")
    assert response.status_code == 429


@pytest.mark.django_db
def test_a_success_clears_the_account_counter_but_not_the_ip_counter(
    client: Client, operator_user, limits
) -> None:
    _login(client, operator_user.username, "wrong-password-xyz")
    _login(client, operator_user.username, DEFAULT_PASSWORD)
    assert not LoginThrottle.objects.filter(scope="account").exists()
    assert LoginThrottle.objects.get(scope="ip").failures == 1


@pytest.mark.django_db
def test_forwarded_for_is_ignored_unless_trusted(client: Client, settings, limits) -> None:
    _login(client, "ghost", "bad-password-1", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert LoginThrottle.objects.filter(scope="ip", key="203.0.113.5").exists()
    settings.PORTAL_TRUST_X_FORWARDED_FOR = True
    _login(client, "ghost", "bad-password-1", HTTP_X_FORWARDED_FOR="10.9.9.9, 10.0.0.7")
    assert LoginThrottle.objects.filter(scope="ip", key="10.0.0.7").exists()


@pytest.mark.django_db
def test_next_is_followed_only_to_this_site(client: Client, operator_user) -> None:
    response = client.post(
        LOGIN,
        {"username": operator_user.username, "password": DEFAULT_PASSWORD, "next": "https://evil.example/"},
    )
    assert response.url == reverse("home")
    client.logout()
    response = client.post(
        LOGIN, {"username": operator_user.username, "password": DEFAULT_PASSWORD, "next": "/accounts/security/"}
    )
    assert response.url == "/accounts/security/"


@pytest.mark.django_db
def test_sign_in_needs_the_csrf_token(operator_user) -> None:
    client = Client(enforce_csrf_checks=True)
    response = _login(client, operator_user.username, DEFAULT_PASSWORD)
    assert response.status_code == 403


@pytest.mark.django_db
def test_sign_out_is_post_only_and_audited(client: Client, operator_user) -> None:
    client.force_login(operator_user)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="logout", actor=operator_user).exists()


@pytest.mark.django_db
def test_an_inactive_user_cannot_sign_in(client: Client) -> None:
    user = make_user(role=Role.OPERATOR, is_active=False)
    assert _login(client, user.username, DEFAULT_PASSWORD).status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_session_cookie_flags_and_idle_timeout(settings, client: Client, operator_user) -> None:
    settings.SESSION_COOKIE_SECURE = True
    response = _login(client, operator_user.username, DEFAULT_PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["secure"]
    assert cookie["samesite"] == "Lax"
    assert settings.SESSION_SAVE_EVERY_REQUEST  # idle timeout: each request renews the expiry
    assert 0 < settings.SESSION_COOKIE_AGE <= 12 * 3600


@pytest.mark.django_db
def test_a_session_expires_after_the_idle_time(client: Client, operator_user) -> None:
    client.force_login(operator_user)
    session = client.session
    session.set_expiry(-1)  # as if the idle time had passed
    session.save()
    response = client.get("/accounts/security/")
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


@pytest.mark.django_db
def test_old_counters_are_pruned_but_live_locks_are_kept(client: Client, limits) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accounts.tasks import login_throttles_prune

    for _ in range(3):
        _login(client, "locked-name", "wrong-password-xyz")
    _login(client, "old-name", "wrong-password-xyz", ip="198.51.100.1")
    LoginThrottle.objects.filter(key__in=["old-name", "198.51.100.1"]).update(
        window_started_at=timezone.now() - timedelta(hours=1)
    )
    assert login_throttles_prune.delay().get() == 2
    assert set(LoginThrottle.objects.values_list("key", flat=True)) == {"locked-name", "203.0.113.5"}
