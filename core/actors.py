"""Who did it: the acting user as stored on audit rows and "created by" columns."""

from __future__ import annotations

from typing import Any


def actor_or_none(actor: Any) -> Any:
    """The user if it is a signed-in user, else None (system work: beat, the CLI without a user,
    an anonymous request). Rows then say "system" instead of pointing at an anonymous user."""
    return actor if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None) else None
