"""Sign-in throttling per account name and per address."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
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


def _failure_count(scope: str, key: str, now: Any) -> bool:
    """Count one failure for (scope, key); True when it starts a lockout."""
    for _attempt in range(2):  # a concurrent first failure may create the row under us
        try:
            with transaction.atomic():
                row, _ = LoginThrottle.objects.select_for_update().get_or_create(
                    scope=scope, key=key, defaults={"window_started_at": now}
                )
                expired_lock = row.locked_until is not None and row.locked_until <= now
                if expired_lock or row.window_started_at + _window() <= now:
                    row.failures = 0
                    row.window_started_at = now
                    row.locked_until = None
                row.failures += 1
                starts_lock = row.failures >= _limit(scope) and row.locked_until is None
                if starts_lock:
                    row.locked_until = now + _window()
                row.save()
                return starts_lock
        except IntegrityError:
            continue
    return False


def login_failure_record(*, username: str, ip: str | None) -> bool:
    """Count a failed sign-in against the account name and the IP; True if either locks."""
    now = timezone.now()
    locked = False
    for scope, key in _keys(username=username, ip=ip):
        locked = _failure_count(scope, key, now) or locked
    return locked


def login_success_record(*, username: str) -> None:
    """A good sign-in clears the account's counter. The IP counter is left to expire, so one
    valid account cannot be used to reset guessing against others from the same address."""
    LoginThrottle.objects.filter(
        scope=LoginThrottle.Scope.ACCOUNT, key=_account_key(username)
    ).delete()


def login_throttles_prune() -> int:
    """Forget counters whose window and lock are over (random names would pile up)."""
    now = timezone.now()
    stale = LoginThrottle.objects.filter(window_started_at__lte=now - _window()).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    )
    deleted, _ = stale.delete()
    return deleted
