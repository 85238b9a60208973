"""Test session set-up: databases, private services, Celery, simulated PBS hosts.

Ordinary tests
    SQLite in memory, local-memory cache, Celery tasks run eagerly (in the
    test process). Nothing to start.

``@pytest.mark.celery`` tests
    Run against a real PostgreSQL and a real ``celery -A portal worker``
    subprocess that shares the database, a private Redis as broker, result
    backend and cache. They get ``transactional_db`` automatically (the worker
    cannot see uncommitted data) and tasks are sent to the worker, not run
    eagerly. The ``celery_worker_process`` fixture gives the worker
    (kill/restart it for fault tests).

``@pytest.mark.postgres`` tests
    Run against the private PostgreSQL (no worker).

The database of a session is chosen once: PostgreSQL when any selected test
carries one of those markers (or PORTAL_TEST_DB=postgres), else SQLite. So
``pytest -m "not celery and not postgres"`` is the fast SQLite run and
``pytest -m "celery or postgres"`` the real-services run; a mixed selection
runs everything on PostgreSQL, which is also correct.

Services are started once per session (once per pytest-xdist worker, each on
its own ports) and only when a test needs them. A missing binary is installed
when we are root on Debian; otherwise the session fails with the command to
run. Nothing is skipped.

PBS fixtures: ``pbs_sim`` (a Simulator with datastores store1/store2 and the
admin token, see ``pbs_admin_token``), ``pbs_https`` (a SimServer around it),
``pbs_host`` (registers a PbsHost row with its Datastore rows for a SimServer,
or for a Simulator reached in-process), ``pbs_sim_factory`` and
``pbs_https_factory`` for more hosts.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.services import CeleryWorker, PostgresServer, RedisServer, ServiceUnavailable

if TYPE_CHECKING:
    from pbssim.server import SimServer
    from pbssim.simulator import Simulator
    from tenants.models import PbsHost

POSTGRES_MARKERS = ("celery", "postgres")
TEST_DB_ENV = "PORTAL_TEST_DB"
TIB = 2**40
GIB = 2**30
CACHE_DB = 1  # Redis database for the Django cache; 0 is the Celery broker
WORKER_INCLUDE = ("tests.infra.tasks",)


# --- session configuration ------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    """Safe defaults before any test runs: SQLite in memory, locmem cache, eager Celery."""
    from django.conf import settings

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _reset_handler("django.core.cache", "caches")
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        _use_database({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from portal.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``celery`` tests need committed data: give them transactional_db semantics."""
    for item in items:
        if item.get_closest_marker("celery") is None:
            continue
        marker = item.get_closest_marker("django_db")
        kwargs = dict(marker.kwargs) if marker else {}
        if not kwargs.get("transaction"):
            kwargs["transaction"] = True
            item.add_marker(pytest.mark.django_db(**kwargs), append=False)


def session_uses_postgres(session: pytest.Session) -> bool:
    if os.environ.get(TEST_DB_ENV, "").lower() in {"postgres", "postgresql", "pg"}:
        return True
    return any(item.get_closest_marker(m) for item in session.items for m in POSTGRES_MARKERS)


def _reset_handler(module: str, name: str) -> None:
    """Forget a Django connection handler's cached settings (DATABASES/CACHES changed)."""
    import importlib

    handler = getattr(importlib.import_module(module), name)
    handler.__dict__.pop("settings", None)
    handler._settings = None  # BaseConnectionHandler reads this first


def _use_database(config: dict[str, Any]) -> None:
    """Point the default database at ``config`` before any connection to it was used."""
    from django.conf import settings
    from django.db import connections

    if hasattr(connections._connections, "default"):
        connections["default"].close()
        del connections["default"]
    settings.DATABASES["default"] = config
    _reset_handler("django.db", "connections")


def _fail(exc: ServiceUnavailable) -> None:
    pytest.fail(str(exc), pytrace=False)


# --- services ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def session_name(request: pytest.FixtureRequest) -> str:
    """"gw0", "gw1", ... under pytest-xdist, "main" otherwise (works without xdist too)."""
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


@pytest.fixture(scope="session")
def service_dir(tmp_path_factory: pytest.TempPathFactory, session_name: str) -> Path:
    """A per-session (per-xdist-worker) directory for service data and logs."""
    return tmp_path_factory.mktemp(f"services-{session_name}")


@pytest.fixture(scope="session")
def redis_server(service_dir: Path, session_name: str) -> Iterator[RedisServer]:
    """A private redis-server (no persistence); restart() keeps the port."""
    try:
        server = RedisServer(service_dir, name=f"redis-{session_name}").start()
    except ServiceUnavailable as exc:
        _fail(exc)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0`` of the session's private Redis."""
    return redis_server.url(0)


@pytest.fixture(scope="session")
def postgres_server(session_name: str) -> Iterator[PostgresServer]:
    """A private PostgreSQL 15 cluster; restart() keeps port and data."""
    try:
        server = PostgresServer(name=f"pg-{session_name}").start()
    except ServiceUnavailable as exc:
        _fail(exc)
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """DSN of database ``portal`` on the private server (tests use Django's test_portal)."""
    return postgres_server.create_database("portal")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request: pytest.FixtureRequest) -> None:
    """Switch the session to the private PostgreSQL when a selected test needs it.

    Runs right before pytest-django creates the test databases, after collection,
    so it sees every selected test.
    """
    if session_uses_postgres(request.session):
        from portal.env import database_from_url
        from portal.settings import BASE_DIR

        config = database_from_url(request.getfixturevalue("postgres_dsn"), BASE_DIR)
        # Test connections are short-lived: a pooled one would block DROP DATABASE.
        config.update(CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False)
        _use_database(config)
    request.getfixturevalue("django_db_modify_db_settings_parallel_suffix")


def _point_celery_at(broker_url: str) -> None:
    from portal.celery import app

    app.conf.update(broker_url=broker_url, result_backend=broker_url)
    # Drop connections/backends made for the old URL.
    app._pool = None
    app.amqp._producer_pool = None  # eager apply_async acquires one from the old pool
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None,
    django_db_blocker: Any,
    redis_server: RedisServer,
    service_dir: Path,
    session_name: str,
) -> Iterator[CeleryWorker]:
    """A real ``celery -A portal worker`` (prefork, 2 processes) on the test database.

    Started once per session; kill(signal)/restart()/wait_ready() for fault tests.
    If a test leaves it dead, the next ``celery`` test starts it again.
    """
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail(
            "celery_worker_process needs the PostgreSQL session database: mark the test "
            "@pytest.mark.celery (or run with PORTAL_TEST_DB=postgres)",
            pytrace=False,
        )
    db = connection.settings_dict
    database_url = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url(0),
        "CELERY_BROKER_URL": redis_server.url(0),
        "CELERY_RESULT_BACKEND": redis_server.url(0),
        "CACHE_URL": redis_server.url(CACHE_DB),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "PORTAL_ENCRYPTION_KEYS": ",".join(settings.PORTAL_ENCRYPTION_KEYS),
        "PORTAL_VAR_DIR": str(service_dir / "var"),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    _point_celery_at(redis_server.url(0))
    worker = CeleryWorker(
        env=env, log_dir=service_dir, name=f"portal-test-{session_name}", include=WORKER_INCLUDE
    )
    try:
        worker.start().wait_ready()
    except ServiceUnavailable as exc:
        worker.stop()
        _fail(exc)
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def _celery_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests marked ``celery`` send tasks to the real worker and share its Redis cache."""
    if request.node.get_closest_marker("celery") is None:
        yield
        return
    from portal.celery import app

    worker: CeleryWorker = request.getfixturevalue("celery_worker_process")
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    if not worker.is_alive():  # an earlier test killed it for good
        worker.start().wait_ready()
    import redis

    redis.Redis.from_url(redis_server.url(CACHE_DB)).flushdb()
    settings = request.getfixturevalue("settings")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url(CACHE_DB),
        }
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.conf.task_always_eager = True


# --- simulated PBS hosts ---------------------------------------------------------
@dataclass(frozen=True)
class SimDatastore:
    name: str
    total_bytes: int
    used_bytes: int
    gc_index_data_bytes: int
    gc_disk_bytes: int
    comment: str = ""


DEFAULT_DATASTORES = (
    SimDatastore("store1", total_bytes=4 * TIB, used_bytes=1 * TIB,
                 gc_index_data_bytes=3 * TIB, gc_disk_bytes=1 * TIB - 10 * GIB),
    SimDatastore("store2", total_bytes=8 * TIB, used_bytes=2 * TIB,
                 gc_index_data_bytes=5 * TIB, gc_disk_bytes=2 * TIB - 20 * GIB),
)


@dataclass(frozen=True)
class SimInfo:
    token_id: str
    token_secret: str
    datastores: tuple[SimDatastore, ...]

    def __repr__(self) -> str:  # keep the secret out of test output
        return f"SimInfo(token_id={self.token_id!r}, datastores={[d.name for d in self.datastores]})"


# What each Simulator made by the fixtures was given, for pbs_host and pbs_admin_token.
_SIMS: weakref.WeakKeyDictionary[Any, SimInfo] = weakref.WeakKeyDictionary()


def sim_info(sim: Simulator) -> SimInfo:
    try:
        return _SIMS[sim]
    except KeyError:
        raise LookupError("this Simulator was not made by pbs_sim/pbs_sim_factory") from None


@pytest.fixture
def pbs_sim_factory() -> Callable[..., Simulator]:
    """``make(datastores=DEFAULT_DATASTORES) -> Simulator`` with the admin token bootstrapped."""
    from pbssim.simulator import Simulator

    def make(*, datastores: tuple[SimDatastore, ...] = DEFAULT_DATASTORES) -> Simulator:
        sim = Simulator()
        token_id, secret = sim.bootstrap_admin_token()
        for ds in datastores:
            sim.add_datastore(
                ds.name,
                total_bytes=ds.total_bytes,
                used_bytes=ds.used_bytes,
                gc_index_data_bytes=ds.gc_index_data_bytes,
                gc_disk_bytes=ds.gc_disk_bytes,
                comment=ds.comment,
            )
        _SIMS[sim] = SimInfo(token_id, secret, tuple(datastores))
        return sim

    return make


@pytest.fixture
def pbs_sim(pbs_sim_factory: Callable[..., Simulator]) -> Simulator:
    """An empty PBS 4.2 with datastores store1 and store2 and the admin token
    (``pbs_admin_token``); reach it in-process with ``pbs_sim.transport()``."""
    return pbs_sim_factory()


@pytest.fixture
def pbs_admin_token(pbs_sim: Simulator) -> tuple[str, str]:
    """(token id, secret) of pbs_sim's ``root@pam!portal`` token (Admin on /)."""
    info = sim_info(pbs_sim)
    return info.token_id, info.token_secret


@pytest.fixture
def pbs_https_factory() -> Iterator[Callable[[Simulator], SimServer]]:
    """``make(sim) -> SimServer`` started over HTTPS on a free loopback port; stopped after."""
    from pbssim.server import SimServer

    servers: list[SimServer] = []

    def make(sim: Simulator, **kwargs: Any) -> SimServer:
        server = SimServer(sim, **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def pbs_https(pbs_sim: Simulator, pbs_https_factory: Callable[[Simulator], SimServer]) -> SimServer:
    """pbs_sim served over real HTTPS: ``.url``, ``.fingerprint``, ``.control_key``."""
    return pbs_https_factory(pbs_sim)


@pytest.fixture
def pbs_host(request: pytest.FixtureRequest, db: None) -> Iterator[Callable[..., PbsHost]]:
    """Register a simulated PBS host in the portal: ``pbs_host(target=None, *, name=None)``.

    - target a SimServer (default: ``pbs_https``): the row has its URL and pinned
      fingerprint; clients (and a Celery worker) talk real HTTPS to it.
    - target a Simulator: reached in-process; the row gets a placeholder URL and
      tenants.pbs routes it to the simulator's transports until the test ends.
    The token secret is stored encrypted; a Datastore row is made per datastore.
    """
    from pbssim.server import SimServer
    from tests.factories import FAKE_FINGERPRINT, make_datastore, make_host

    installed: list[str] = []
    counter = iter(range(1, 1000))

    def make(target: Any = None, *, name: str | None = None, **fields: Any) -> PbsHost:
        target = target if target is not None else request.getfixturevalue("pbs_https")
        name = name or f"pbs{next(counter)}"
        if isinstance(target, SimServer):
            sim, url, fingerprint = target.sim, target.url, target.fingerprint
        else:
            from tenants.pbs import install_transport

            sim, url, fingerprint = target, f"https://{name}.sim.invalid:8007", FAKE_FINGERPRINT
            install_transport(url, sim.transport(), sim.async_transport())
            installed.append(url)
        info = sim_info(sim)
        host = make_host(
            name=name, url=url, fingerprint=fingerprint,
            token_id=info.token_id, token_secret=info.token_secret, **fields,
        )
        for ds in info.datastores:
            make_datastore(
                host=host, name=ds.name, total_bytes=ds.total_bytes, used_bytes=ds.used_bytes,
                avail_bytes=ds.total_bytes - ds.used_bytes,
                gc_index_data_bytes=ds.gc_index_data_bytes, gc_disk_bytes=ds.gc_disk_bytes,
            )
        return host

    yield make
    if installed:
        from tenants.pbs import uninstall_transport

        for url in installed:
            uninstall_transport(url)
