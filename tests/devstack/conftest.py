"""Shared role fixtures (tests/fixtures.py) for the dev stack's tests."""

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)
