"""Shared role fixtures (tests/fixtures.py) plus billing's own."""

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)
