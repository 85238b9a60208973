"""Shared role fixtures for these tests (see tests/fixtures.py)."""

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)
