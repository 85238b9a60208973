"""The one rule for which failures heal by themselves, and the retry every task uses for them.

Transient: PBS unreachable or timing out, a 5xx answer from PBS, the portal's database busy
or briefly unreachable. Never transient: TLS failures, including a pinned fingerprint that
does not match (the certificate changed; only an operator can re-pin), and every 4xx answer.
The PBS client retries single requests by its own, stricter rule (``pbsclient.errors.is_retryable``,
which also knows whether a request may be repeated); this rule is for whole tasks and steps,
which re-check before they write and so are safe to run again.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import InterfaceError, OperationalError

from pbsclient.errors import PbsConnectionError, PbsTlsError, ServerError


class TransientError(Exception):
    """Raised by a service for a condition of its own that heals with time (a lock held, a
    remote still busy); retried like the PBS and database errors below."""


def is_transient(exc: BaseException) -> bool:
    """True if the same work, run again later, can succeed without anyone changing anything."""
    if isinstance(exc, PbsTlsError):
        return False
    return isinstance(exc, PbsConnectionError | ServerError | OperationalError | InterfaceError | TransientError)


def backoff_seconds(retries: int, *, base: float = 30, cap: float = 600) -> float:
    """Exponential backoff with full jitter: a host that comes back is not hit by every task at once."""
    return random.uniform(base / 2, min(cap, base * 2**retries))  # noqa: S311 - jitter, not a secret


@contextmanager
def retry_if_transient(task: Any, *, base: float = 30, cap: float = 600) -> Iterator[None]:
    """Run a bound Celery task's body; on a transient error, schedule the task again with backoff
    (until the task's ``max_retries``), otherwise let the error through."""
    try:
        yield
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise task.retry(exc=exc, countdown=backoff_seconds(task.request.retries, base=base, cap=cap)) from exc
