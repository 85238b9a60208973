"""Shared role fixtures, and the ``world`` of tenant A's objects the URL walks use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)
from tests.security.walk import World, build_world


@pytest.fixture
def world(db: None, settings) -> Iterator[World]:
    settings.PORTAL_PBS_TIMEOUT_SECONDS = 1.0  # PBS is down during the walk: fail fast
    yield from build_world()
