"""Fixtures for the tenants tests: role users (tests/fixtures.py), a simulated PBS host in the
portal, and targeted fault injection on the simulator."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest

from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)


@dataclass
class FaultRule:
    method: str
    path: re.Pattern[str]
    mode: str  # "error": 500 before handling; "lost": handled, then 502; "forbidden": 403
    remaining: int
    body: re.Pattern[str] | None = None
    hits: int = 0


@dataclass
class StepFaults:
    """Faults on chosen PBS calls, injected into the simulator itself (so they work for the
    in-process transport and for the HTTPS server that a Celery worker talks to)."""

    sim: Any
    rules: list[FaultRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._original = self.sim.handle
        self.sim.handle = self._handle

    def add(
        self, method: str, path_regex: str, *, mode: str = "error", times: int = 1, body: str | None = None
    ) -> FaultRule:
        """Fault the next ``times`` calls matching method, path (below /api2/json) and,
        optionally, a regex on the request body (or query string)."""
        rule = FaultRule(method.upper(), re.compile(path_regex), mode, times, re.compile(body) if body else None)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def restore(self) -> None:
        self.sim.handle = self._original

    def _match(self, method: str, path: str, payload: str) -> FaultRule | None:
        api_path = unquote(path.split("/api2/json", 1)[-1])
        with self._lock:
            for rule in self.rules:
                if (
                    rule.remaining
                    and rule.method == method.upper()
                    and rule.path.search(api_path)
                    and (rule.body is None or rule.body.search(payload))
                ):
                    rule.remaining -= 1
                    rule.hits += 1
                    return rule
        return None

    def _handle(
        self, method: str, path: str, query: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        payload = unquote(f"{query}&{body.decode('utf-8', 'replace')}")
        rule = self._match(method, path, payload) if path.startswith("/api2/") else None
        if rule is None:
            return self._original(method, path, query, headers, body)
        plain = {"Content-Type": "application/json;charset=UTF-8"}
        if rule.mode == "error":
            return 500, plain, b"simulated fault: internal server error"
        if rule.mode == "forbidden":
            return 403, plain, b"permission check failed"
        if rule.mode == "lost":
            self._original(method, path, query, headers, body)
            return 502, plain, b"simulated fault: bad gateway (the request was handled)"
        raise ValueError(rule.mode)


@pytest.fixture
def step_faults() -> Iterator[Callable[[Any], StepFaults]]:
    made: list[StepFaults] = []

    def make(sim: Any) -> StepFaults:
        faults = StepFaults(sim)
        made.append(faults)
        return faults

    yield make
    for faults in made:
        faults.restore()


@pytest.fixture
def sim_host(pbs_sim: Any, pbs_host: Callable[..., Any]) -> Any:
    """A PbsHost row reached in-process (pbs_sim), with its datastores, health-checked."""
    from tenants.services import pbshost_check

    host = pbs_host(pbs_sim, name="pbs-a")
    return pbshost_check(host_id=host.pk)


@pytest.fixture
def fast_retries(settings: Any) -> Any:
    settings.PORTAL_ONBOARDING_RETRY_BASE_SECONDS = 0.01
    settings.PORTAL_ONBOARDING_MAX_RETRIES = 3
    return settings


def pbs_state(sim: Any) -> dict[str, Any]:
    """The simulator's state as JSON (users, tokens, acl, prune jobs, namespaces)."""
    return sim.state_snapshot()


@pytest.fixture
def onboard(sim_host: Any) -> Callable[..., Any]:
    """``onboard(slug="acme", **create_kwargs) -> Tenant``: create and onboard in-process."""
    from tenants import services
    from tenants.onboarding import RunResult, run_execute

    def make(slug: str = "acme", store: str = "store1", **kwargs: Any) -> Any:
        datastore = sim_host.datastores.get(name=store)
        tenant = services.tenant_create(slug=slug, name=slug.title(), datastore=datastore, **kwargs)
        run, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
        assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED
        tenant.refresh_from_db()
        return tenant

    return make


def token_client(sim: Any, host: Any, tokenid: str, secret: str) -> Any:
    """A PbsClient acting as a tenant's token (in-process)."""
    from pbsclient import PbsClient

    return PbsClient(base_url=host.url, token_id=tokenid, token_secret=secret, transport=sim.transport())
