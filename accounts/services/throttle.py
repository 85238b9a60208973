"""Sign-in throttling per account name and per address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import LoginThrottle


def _window() -> timedelta:
    return timedelta(seconds=settings.PORTAL_LOGIN_LOCKOUT_SECONDS)


def _limit(scope: str) -> int:
    if scope == LoginThrottle.Scope.IP:
        return settings.PORTAL_LOGIN_MAX_FAILURES_PER_IP
    return settings.PORTAL_LOGIN_MAX_FAILURES


def _account_key(username: str) -> str:
    return username.strip().lower()[:150]


def _keys(*, username: str, ip: str | None) -> list[tuple[str, str]]:
    keys = [(LoginThrottle.Scope.ACCOUNT, _account_key(username))]
    if ip:
        keys.append((LoginThrottle.Scope.IP, ip))
    return keys


def login_lock_remaining(*, username: str, ip: str | None) -> int:
    """Seconds until neither this account name nor this IP is locked out (0: not locked)."""
    now = timezone.now()
    query = Q()
    for scope, key in _keys(username=username, ip=ip):
        query |= Q(scope=scope, key=key)
    until = (
        LoginThrottle.objects.filter(query, locked_until__gt=now)
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    return max(1, int((until - now).total_seconds() + 0.999)) if until else 0


def _reserve(scope: str, key: str, now: Any) -> tuple[bool, bool]:
    """Count one attempt for (scope, key) under the row lock, BEFORE its password or code is
    checked. Returns (allowed, starts_lock): attempts past the limit are refused, so parallel
    guesses cannot all pass a check that runs before the count."""
    for _attempt in range(2):  # a concurrent first attempt may create the row under us
        try:
            with transaction.atomic():
                row, _ = LoginThrottle.objects.select_for_update().get_or_create(
                    scope=scope, key=key, defaults={"window_started_at": now}
                )
                if row.locked_until is not None and row.locked_until > now:
                    return False, False
                if row.locked_until is not None or row.window_started_at + _window() <= now:
                    row.failures, row.window_started_at, row.locked_until = 0, now, None
                row.failures += 1
                starts_lock = row.failures >= _limit(scope)
                if starts_lock:
                    row.locked_until = now + _window()
                row.save()
                return True, starts_lock
        except IntegrityError:
            continue
    return False, False


@dataclass(frozen=True)
class Reservation:
    """One sign-in attempt counted before its check: ``allowed`` to go on, and whether a
    failure of it ``locks`` the account name or the address."""

    allowed: bool
    locks: bool


def login_attempt_reserve(*, username: str, ip: str | None) -> Reservation:
    """Count an attempt against the account name and the IP before the check it guards
    (the throttle reserves, then checks). A good attempt gives its count back
    (``login_success_record``); a bad one keeps it."""
    now = timezone.now()
    allowed, locks = True, False
    for scope, key in _keys(username=username, ip=ip):
        ok, starts_lock = _reserve(scope, key, now)
        allowed, locks = allowed and ok, locks or starts_lock
    return Reservation(allowed=allowed, locks=locks)


def login_success_record(*, username: str, ip: str | None = None) -> None:
    """A good sign-in clears the account's counter and gives back the address's reserved
    attempt (the rest of the IP counter is left to expire, so one valid account cannot be used
    to reset guessing against others from the same address)."""
    LoginThrottle.objects.filter(
        scope=LoginThrottle.Scope.ACCOUNT, key=_account_key(username)
    ).delete()
    if ip:
        LoginThrottle.objects.filter(scope=LoginThrottle.Scope.IP, key=ip, failures__gt=0).update(
            failures=F("failures") - 1, locked_until=None
        )


def login_throttles_prune() -> int:
    """Forget counters whose window and lock are over (random names would pile up)."""
    now = timezone.now()
    stale = LoginThrottle.objects.filter(window_started_at__lte=now - _window()).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    )
    deleted, _ = stale.delete()
    return deleted
