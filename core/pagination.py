"""The API's one pagination: limit/offset with a ceiling, so no request can ask the portal
to serialise a whole table at once."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_PAGE_SIZE = 500


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=`` above ``MAX_PAGE_SIZE`` is served as ``MAX_PAGE_SIZE`` (DRF's own clamp)."""

    max_limit = MAX_PAGE_SIZE
