"""Sending the project's cross-app signals (tenants.signals, billing.signals)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

log = logging.getLogger(__name__)


def send_logged(signal: Signal, sender: Any, **kwargs: Any) -> list[tuple[Any, Any]]:
    """``signal.send_robust``, logging every receiver that raised: one failing app never
    stops the sender. Returns the (receiver, response) pairs; a failed one's response is
    the exception."""
    replies = signal.send_robust(sender=sender, **kwargs)
    for receiver, response in replies:
        if isinstance(response, Exception):
            log.error("receiver %r of %r failed (%s): %r", receiver, sender, kwargs, response)
    return replies
