"""The one rule for when a view answers with a fragment instead of the whole page."""

from __future__ import annotations

from django.http import HttpRequest


def wants_partial(request: HttpRequest) -> bool:
    """True for an HTMX request that swaps part of the page. A boosted request (hx-boost
    navigation) replaces the whole body, so it gets the full page like a normal one."""
    htmx = getattr(request, "htmx", None)  # absent when the middleware did not run (e.g. a bare RequestFactory)
    return bool(htmx) and not htmx.boosted
