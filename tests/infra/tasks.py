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


@shared_task(name="tests.infra.tasks.pbs_version")
def pbs_version(host_id: int) -> str:
    """Ask a registered PBS host for its version, the way portal tasks reach PBS."""
    from tenants.models import PbsHost
    from tenants.pbs import client_for_host

    with client_for_host(PbsHost.objects.get(pk=host_id)) as client:
        return client.version().version
