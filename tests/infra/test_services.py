"""The private services the suite starts: Redis, PostgreSQL and a real Celery worker."""

from __future__ import annotations

import os
import signal
from urllib.parse import urlsplit

import pytest
import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from accounts.models import Role
from portal.celery import app
from tests import services
from tests.conftest import session_uses_postgres
from tests.factories import make_user
from tests.infra.tasks import count_users, worker_info


def test_redis_answers_ping_and_keeps_data(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping() is True
    client.set("infra-check", b"1")
    assert client.get("infra-check") == b"1"


def test_redis_comes_back_on_the_same_port_after_restart(redis_server: services.RedisServer) -> None:
    url = redis_server.url()
    redis_server.restart()
    assert redis_server.url() == url
    assert redis.Redis.from_url(url).ping() is True


@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_answers_select_1_through_django(postgres_dsn: str) -> None:
    assert connection.vendor == "postgresql"
    assert int(connection.settings_dict["PORT"]) == urlsplit(postgres_dsn).port
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


@pytest.mark.django_db
def test_ordinary_tests_get_the_session_database_a_local_cache_and_eager_tasks(
    request: pytest.FixtureRequest,
) -> None:
    expected = "postgresql" if session_uses_postgres(request.session) else "sqlite"
    assert connection.vendor == expected
    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
    assert app.conf.task_always_eager is True
    # An eager task runs here, in this process.
    assert worker_info.delay().get()["pid"] == os.getpid()


@pytest.mark.celery
def test_the_worker_runs_tasks_on_the_test_database(
    celery_worker_process: services.CeleryWorker,
) -> None:
    make_user(role=Role.ADMIN, username="seen-by-the-worker")
    info = worker_info.delay().get(timeout=60)
    assert info["pid"] != os.getpid()
    assert info["vendor"] == "postgresql"
    assert info["database"] == connection.settings_dict["NAME"]
    # Committed rows are visible to the worker (transactional_db semantics).
    assert count_users.delay().get(timeout=60) == 1


@pytest.mark.celery
def test_the_worker_answers_a_control_ping_and_shares_the_cache(
    celery_worker_process: services.CeleryWorker,
) -> None:
    replies = app.control.ping(destination=[celery_worker_process.nodename], timeout=10)
    assert replies == [{celery_worker_process.nodename: {"ok": "pong"}}]
    cache.set("infra-shared", "yes")
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    assert any(b"infra-shared" in key for key in client.scan_iter("*infra-shared*"))


@pytest.mark.celery
def test_the_worker_can_be_killed_and_restarted(
    celery_worker_process: services.CeleryWorker,
) -> None:
    old_pid = celery_worker_process.pid
    celery_worker_process.kill(signal.SIGKILL)
    assert not celery_worker_process.is_alive()
    celery_worker_process.restart()
    assert celery_worker_process.pid != old_pid
    assert worker_info.delay().get(timeout=60)["vendor"] == "postgresql"


def test_a_missing_binary_fails_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "is_root", lambda: False)
    with pytest.raises(services.ServiceUnavailable, match=r"sudo apt-get install -y no-such-pkg"):
        services.ensure_binary("no-such-binary-for-tests", package="no-such-pkg")
