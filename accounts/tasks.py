"""Celery adapters for accounts."""

from __future__ import annotations

from celery import shared_task

from accounts import services


@shared_task(name="accounts.tasks.login_throttles_prune", ignore_result=True)
def login_throttles_prune() -> int:
    """Hourly: drop sign-in counters that no longer count (idempotent)."""
    return services.login_throttles_prune()
