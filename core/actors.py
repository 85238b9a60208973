"""Who did it: the acting user as stored on audit rows and "created by" columns, and the API
key a request authenticated with (so audit rows name the key that was used)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# Set by the API key authentication for the request it authenticates; cleared at the start of
# every request (accounts.middleware), so it never leaks into the next one.
acting_api_key: ContextVar[str | None] = ContextVar("acting_api_key", default=None)


def actor_or_none(actor: Any) -> Any:
    """The user if it is a signed-in user, else None (system work: beat, the CLI without a user,
    an anonymous request). Rows then say "system" instead of pointing at an anonymous user."""
    return actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None
