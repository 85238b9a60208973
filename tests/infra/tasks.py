"""Test-only Celery tasks, loaded into the test worker with ``-I tests.infra.tasks``.

They prove the worker is real and shares the test database; no portal code
depends on them.
"""

from __future__ import annotations

import os
from typing import Any

from celery import shared_task


@shared_task(name="tests.infra.tasks.count_users")
def count_users() -> int:
    from accounts.models import User

    return User.objects.count()


@shared_task(name="tests.infra.tasks.worker_info")
def worker_info() -> dict[str, Any]:
    from django.db import connection

    return {"pid": os.getpid(), "database": connection.settings_dict["NAME"], "vendor": connection.vendor}
