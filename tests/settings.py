"""Settings of the test suite: the portal's own, in development mode (asked for explicitly,
as the portal defaults to production). Set before the settings are read, and inherited by
the processes the tests start (Celery workers)."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
# The webhook tests run their receiver on loopback; the address guard has tests of its own.
os.environ.setdefault("PORTAL_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "1")

from portal.settings import *  # noqa: F403
