"""Sign-in (password, then TOTP when set up), sign-out, the security page (TOTP enrolment,
password change), invitation links, and the staff page for a tenant's users."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import LoginForm, SignUpForm, TotpCodeForm
from accounts.http import client_ip
from accounts.models import ApiKey, Invitation, Role, User
from accounts.permissions import admin_required, second_factor_proven, staff_required
from audit.services import audit_record

PENDING_LOGIN_KEY = "accounts.pending_login"
PENDING_LOGIN_SECONDS = 300
INVITATION_SESSION_KEY = "accounts.invitation_hash"


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("home")


def _lock_message(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return (
        "Too many failed sign-in attempts. Sign-in is locked for this account or network "
        f"for about {minutes} minute{'s' if minutes != 1 else ''}; try again later."
    )


def _finish_login(request: HttpRequest, user: User, *, second_factor: bool, next_url: str) -> HttpResponse:
    auth_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    if second_factor:
        second_factor_proven(request)
    services.login_completed(user=user, ip=client_ip(request), second_factor=second_factor)
    return redirect(_safe_next(request, next_url))


@sensitive_post_parameters("password")
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    """Step 1: user name and password, under the per-account and per-IP throttle."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.user.is_authenticated:
        return redirect(_safe_next(request, next_url))
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result = services.login_attempt(
            request=request,
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
            ip=client_ip(request),
        )
        if result.outcome == services.LoginOutcome.OK and result.user is not None:
            return _finish_login(request, result.user, second_factor=False, next_url=next_url)
        if result.outcome == services.LoginOutcome.NEEDS_TOTP and result.user is not None:
            request.session.cycle_key()
            request.session[PENDING_LOGIN_KEY] = {
                "user_id": result.user.pk,
                "at": int(time.time()),
                "next": next_url,
            }
            return redirect("accounts:login_totp")
        if result.outcome == services.LoginOutcome.LOCKED:
            form.add_error(None, _lock_message(result.retry_after))
            status = 429
        else:
            form.add_error(None, "The user name or the password is wrong.")
    return render(request, "accounts/login.html", {"form": form, "next": next_url}, status=status)


def _pending_user(request: HttpRequest) -> tuple[User | None, dict[str, Any]]:
    pending = request.session.get(PENDING_LOGIN_KEY) or {}
    if not pending or int(time.time()) - int(pending.get("at", 0)) > PENDING_LOGIN_SECONDS:
        return None, {}
    user = User.objects.filter(pk=pending.get("user_id"), is_active=True).first()
    return user, pending


@sensitive_post_parameters("code")
@never_cache
def login_totp_view(request: HttpRequest) -> HttpResponse:
    """Step 2 (only for users with a second factor): the code from the authenticator app."""
    user, pending = _pending_user(request)
    if user is None or not user.has_totp:
        request.session.pop(PENDING_LOGIN_KEY, None)
        messages.error(request, "Your sign-in took too long. Please sign in again.")
        return redirect("accounts:login")
    form = TotpCodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result = services.login_totp_attempt(
            user=user, code=form.cleaned_data["code"], ip=client_ip(request)
        )
        if result.outcome == services.LoginOutcome.OK:
            request.session.pop(PENDING_LOGIN_KEY, None)
            return _finish_login(request, user, second_factor=True, next_url=pending.get("next", ""))
        if result.outcome == services.LoginOutcome.LOCKED:
            request.session.pop(PENDING_LOGIN_KEY, None)
            messages.error(request, _lock_message(result.retry_after))
            return redirect("accounts:login")
        form.add_error("code", "That code is not valid (or was used already). Try the next one.")
    return render(request, "accounts/login_totp.html", {"form": form}, status=status)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        user = request.user
        audit_record(
            action="logout",
            actor=user,
            tenant=user.tenant if user.tenant_id else None,
            target=user.get_username(),
            ip_address=client_ip(request),
        )
    auth_logout(request)
    return redirect("accounts:login")


# --- security page: second factor and password ---------------------------------


def _security_context(request: HttpRequest) -> dict[str, Any]:
    user: User = request.user
    pending_secret = services.totp_pending_secret(user=user)
    context = {
        "has_totp": user.has_totp,
        "totp_required": services.totp_required_for(user),
        "pending_secret": pending_secret,
        "provisioning_uri": (
            services.totp_provisioning_uri(user=user, secret=pending_secret) if pending_secret else ""
        ),
        "code_form": TotpCodeForm(),
        "password_form": PasswordChangeForm(user),
        "api_keys": list(user.api_keys.all()[:50]),
        "api_key_max_days": settings.PORTAL_API_KEY_MAX_DAYS,
    }
    return context


@login_required
@never_cache
def security(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own security settings."""
    return render(request, "accounts/security.html", _security_context(request))


@login_required
@require_POST
@never_cache
def api_key_create(request: HttpRequest) -> HttpResponse:
    """Make an API key for oneself; the key is in this response only (never cached)."""
    try:
        days = int(request.POST.get("days", ""))
    except ValueError:
        days = 0
    try:
        new_key = services.api_key_create(
            user=request.user, name=request.POST.get("name", ""), days=days, ip=client_ip(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(m for msgs in exc.message_dict.values() for m in msgs))
        return redirect("accounts:security")
    context = {**_security_context(request), "new_api_key": new_key}
    return render(request, "accounts/security.html", context, status=201)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=key_id, user=request.user)
    services.api_key_revoke(key=key, actor=request.user, ip=client_ip(request))
    messages.success(request, f"API key {key.name} revoked.")
    return redirect("accounts:security")


@login_required
@require_POST
@sensitive_post_parameters("password")
def totp_start(request: HttpRequest) -> HttpResponse:
    # Whoever sits at an open session must not bind their own phone to the account.
    if not request.user.check_password(request.POST.get("password", "")):
        messages.error(request, "Enter your current password to set up a second factor.")
        return redirect("accounts:security")
    try:
        services.totp_enrolment_start(user=request.user)
    except services.TotpError as exc:
        messages.error(request, str(exc))
    return redirect("accounts:security")


@login_required
@require_POST
@sensitive_post_parameters("code")
def totp_confirm(request: HttpRequest) -> HttpResponse:
    form = TotpCodeForm(request.POST)
    try:
        if not form.is_valid():
            raise services.TotpError("Enter the code from your app.")
        services.totp_enrolment_confirm(
            user=request.user, code=form.cleaned_data["code"], ip=client_ip(request)
        )
    except services.TotpError as exc:
        messages.error(request, str(exc))
    else:
        second_factor_proven(request)  # the code just entered proves it for this session
        messages.success(request, "Second factor set up. You will be asked for a code at sign-in.")
    return redirect("accounts:security")


@login_required
@require_POST
@sensitive_post_parameters("code")
def totp_disable(request: HttpRequest) -> HttpResponse:
    form = TotpCodeForm(request.POST)
    code = form.cleaned_data["code"] if form.is_valid() else ""
    try:
        services.totp_disable(user=request.user, code=code, ip=client_ip(request))
    except services.TotpError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Second factor turned off.")
    return redirect("accounts:security")


@login_required
@require_POST
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST)
    if form.is_valid():
        with transaction.atomic():
            user = form.save()
            audit_record(
                action="password.changed",
                actor=user,
                tenant=user.tenant if user.tenant_id else None,
                target=user.get_username(),
                ip_address=client_ip(request),
            )
        update_session_auth_hash(request, user)
        messages.success(request, "Password changed.")
        return redirect("accounts:security")
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect("accounts:security")


# --- invitation links -----------------------------------------------------------


@never_cache
def invitation_open(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the e-mail. Keep only the token's hash in the session and move on to
    a URL without the token, so it does not linger in history, Referer headers or the
    error log (every outcome here is the same redirect, valid token or not)."""
    request.session[INVITATION_SESSION_KEY] = services.invitation_token_hash(token)
    return redirect("accounts:invitation_accept")


@sensitive_post_parameters("password1", "password2")
@never_cache
def invitation_accept(request: HttpRequest) -> HttpResponse:
    token_hash = request.session.get(INVITATION_SESSION_KEY, "")
    invitation = selectors.invitation_find_pending(token_hash=token_hash)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=410)
    if request.user.is_authenticated:
        return render(
            request, "accounts/invitation_signed_in.html", {"invitation": invitation}, status=409
        )
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(
                token_hash=token_hash,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                ip=client_ip(request),
            )
        except services.InvitationError as exc:
            form.add_error(None, str(exc))
        else:
            request.session.pop(INVITATION_SESSION_KEY, None)
            auth_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(request, f"Welcome, {user.get_username()}.")
            return redirect("selfservice:home")
    return render(
        request, "accounts/invitation_accept.html", {"form": form, "invitation": invitation}
    )


# --- staff: a tenant's users (the pages live in tenants.team_views) ---------------------


@staff_required
@require_POST
def tenant_user_remove(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_object_or_404(User, pk=user_id, role=Role.CLIENT)
    tenant_id = user.tenant_id
    try:
        services.tenant_user_remove(user=user, actor=request.user, ip=client_ip(request))
    except services.InvitationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"User {user.get_username()} removed.")
    return redirect("team:tenant_users", tenant_id=tenant_id)


@staff_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(Invitation.objects.select_related("tenant"), pk=invitation_id)
    services.invitation_revoke(invitation=invitation, actor=request.user, ip=client_ip(request))
    messages.success(request, f"Invitation for {invitation.email} revoked.")
    return redirect("team:tenant_users", tenant_id=invitation.tenant_id)


@admin_required
@require_POST
def user_totp_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    """An MSP admin clears a user's lost second factor."""
    user = get_object_or_404(User, pk=user_id)
    if user.pk == request.user.pk:
        raise PermissionDenied("reset your own second factor on your security page")
    services.totp_reset(user=user, actor=request.user, ip=client_ip(request))
    messages.success(request, f"Second factor of {user.get_username()} reset.")
    if user.tenant_id:
        return redirect("team:tenant_users", tenant_id=user.tenant_id)
    return redirect("home")
