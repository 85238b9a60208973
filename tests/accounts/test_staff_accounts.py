"""Creating MSP-side accounts: createsuperuser makes an admin; the CLI makes any staff role."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role, User
from audit.models import AuditEvent


@pytest.mark.django_db
def test_createsuperuser_makes_an_msp_admin_without_tenant() -> None:
    user = User.objects.create_superuser("root-admin", "root@example.test", "a-very-long-passphrase-1")
    assert (user.role, user.tenant, user.is_superuser) == (Role.ADMIN, None, True)


@pytest.mark.django_db
def test_the_cli_creates_a_staff_account_with_a_generated_password_shown_once() -> None:
    out = io.StringIO()
    call_command("portal_user_create", "--username", "otto", "--role", "operator", stdout=out)
    user = User.objects.get(username="otto")
    assert user.role == Role.OPERATOR
    password = out.getvalue().split("password (shown once): ", 1)[1].strip()
    assert user.check_password(password)
    event = AuditEvent.objects.get(action="user.created")
    assert password not in str(event.detail)


@pytest.mark.django_db
def test_the_cli_refuses_weak_passwords_and_client_roles(monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("password"))
    with pytest.raises(CommandError, match=r"too common|too short"):
        call_command("portal_user_create", "--username", "x", "--role", "admin", "--password-stdin")
    with pytest.raises(CommandError):
        call_command("portal_user_create", "--username", "y", "--role", "client")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_the_cli_resets_a_lost_second_factor(operator_user) -> None:
    import pyotp

    from accounts.services import totp_enrolment_confirm, totp_enrolment_start

    secret = totp_enrolment_start(user=operator_user)
    totp_enrolment_confirm(user=operator_user, code=pyotp.TOTP(secret).now(), ip=None)
    call_command("portal_user_totp_reset", "--username", operator_user.username, stdout=io.StringIO())
    operator_user.refresh_from_db()
    assert not operator_user.has_totp
    assert AuditEvent.objects.filter(action="totp.reset", actor_label="system").exists()


@pytest.mark.django_db
def test_a_mistyped_username_is_not_kept_verbatim_in_the_audit_trail(client) -> None:
    from audit.models import AuditEvent

    typed = "Sup3r-Secret-Passw0rd"  # a password typed into the username field
    client.post("/accounts/login/", {"username": typed, "password": "whatever-else-1"})
    client.post("/accounts/login/", {"username": typed, "password": "whatever-else-2"})
    targets = list(AuditEvent.objects.filter(action="login.failed").values_list("target", flat=True))
    assert len(targets) == 2
    assert all(typed not in t and t.startswith("Sup") for t in targets)
    assert targets[0] == targets[1], "the same text gives the same mark, so repeats stay visible"


@pytest.mark.django_db
def test_parallel_guesses_cannot_pass_the_limit(settings) -> None:
    """Each attempt is counted before its password is checked: attempts that started together
    (all reserved, none checked yet) get at most the limit between them."""
    from accounts.services import login_attempt_reserve

    settings.PORTAL_LOGIN_MAX_FAILURES = 3
    reservations = [login_attempt_reserve(username="victim", ip=f"198.51.100.{n}") for n in range(6)]
    assert [r.allowed for r in reservations] == [True, True, True, False, False, False]
    assert [r.locks for r in reservations[:3]] == [False, False, True]
