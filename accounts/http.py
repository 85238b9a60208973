"""Request facts the account code needs (client IP), read one way everywhere."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address, for throttling and audit rows.

    ``REMOTE_ADDR`` unless ``PORTAL_TRUST_X_FORWARDED_FOR`` is on; then the right-most
    ``X-Forwarded-For`` entry, the one the portal's own reverse proxy appended (entries to
    its left come from the client and can be forged).
    """
    if settings.PORTAL_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1][:45]
    return request.META.get("REMOTE_ADDR") or None
