"""The PBS simulator: HTTP semantics of PBS 4.2's REST server over the simulated state.

``Simulator.handle`` takes one request (method, raw path, raw query, headers, body)
and returns (status, headers, body), doing what proxmox-rest-server does:

1. path check (``.`` components: 400), ``/api2/<json|extjs>`` prefix;
2. route lookup; authentication unless the route is World (401 ``authentication
   failed``, no Content-Type, an expired auth cookie; unknown paths also need auth);
3. 404 for unknown paths/methods, route-level permission (403 ``permission check
   failed``);
4. parameters from the query string / form body or a JSON body (400 texts of
   proxmox-schema), then the handler;
5. ``{"data": ...}`` plus attributes such as ``digest``, or the error as plain text
   with a JSON Content-Type (PBS's quirk).

One lock makes it thread-safe. PBS delays 401s to ~3 s and 403s to ~0.5 s after the
request arrived; ``auth_delay_s`` (default 0, so tests stay fast) enables the same
with that ratio: 401 after ``auth_delay_s``, 403 after ``auth_delay_s / 6``."""

from __future__ import annotations

from pbssim.simulator.core import (
    Simulator,
)
from pbssim.simulator.replies import (
    synthetic_files,
)
from pbssim.simulator.tickets import (
    BOOTSTRAP_TOKEN,
    EXPIRED_AUTH_COOKIE,
    JSON_CONTENT_TYPE,
    MAX_BODY_BYTES,
    MAX_URI_LENGTH,
    TICKET_LIFETIME,
    TICKET_SKEW,
    Reply,
    Tickets,
    log,
)

__all__ = [
    "BOOTSTRAP_TOKEN",
    "EXPIRED_AUTH_COOKIE",
    "JSON_CONTENT_TYPE",
    "MAX_BODY_BYTES",
    "MAX_URI_LENGTH",
    "TICKET_LIFETIME",
    "TICKET_SKEW",
    "Reply",
    "Simulator",
    "Tickets",
    "log",
    "synthetic_files",
]
