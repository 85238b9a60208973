"""Fixtures for the overview and the staff tenant list: role users (tests/fixtures.py)."""

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)
