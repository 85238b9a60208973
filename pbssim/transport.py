"""In-process httpx transports for the simulator, with latency and fault injection.

``SimTransport`` (sync) and ``AsyncSimTransport`` (async) hand each request to
``Simulator.handle`` without any socket, so client tests run in milliseconds.
Faults from ``sim.faults`` behave as seen from a real client:

- latency: the reply is delayed by ``latency_ms`` (time.sleep / asyncio.sleep);
- error: a 500 or 503 with a plain-text body, the request is NOT handled;
- timeout: the request IS handled (its change is applied) but the reply never
  comes: ``httpx.ReadTimeout`` after min(timeout_hold_s, the request's read
  timeout), the nastiest case for retries;
- drop: the connection closes before the request is handled:
  ``httpx.RemoteProtocolError``, as httpx raises for a real server that hangs up.

Requests to ``/_sim/...`` go to the control interface and are never faulted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from pbssim.control import ControlInterface, is_control_path

if TYPE_CHECKING:
    from pbssim.faults import FaultConfig

DROP_MESSAGE = "Server disconnected without sending a response."
ERROR_STATUSES = (500, 503)
ERROR_BODIES = {
    500: b"simulated fault: internal server error",
    503: b"simulated fault: service unavailable",
}


@dataclass(frozen=True)
class FaultPlan:
    """What happens to one request: a delay, then at most one fault."""

    delay_s: float
    fault: str | None  # "error" | "timeout" | "drop" | None
    error_status: int = 500
    hold_s: float = 0.0


def plan_request(faults: FaultConfig, method: str) -> FaultPlan:
    """Draw the fate of one (non-control) request from the current fault settings."""
    fault = faults.draw(method)
    delay = max(0.0, float(faults.latency_ms)) / 1000.0 if method.upper() in faults.methods else 0.0
    status = ERROR_STATUSES[faults._rng.randrange(len(ERROR_STATUSES))] if fault == "error" else 500
    return FaultPlan(delay_s=delay, fault=fault, error_status=status, hold_s=faults.timeout_hold_s)


def error_reply(status: int) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, ERROR_BODIES[status]


def split_target(url: httpx.URL) -> tuple[str, str]:
    """The raw (still percent-encoded) path and query string, as they go over the wire."""
    raw = url.raw_path.decode("ascii")
    path, _, query = raw.partition("?")
    return path, query


def _read_timeout(request: httpx.Request) -> float | None:
    timeout: dict[str, Any] = request.extensions.get("timeout") or {}
    value = timeout.get("read")
    return float(value) if value is not None else None


def _hold_for(plan: FaultPlan, request: httpx.Request) -> float:
    read_timeout = _read_timeout(request)
    return plan.hold_s if read_timeout is None else min(plan.hold_s, read_timeout)


def _response(request: httpx.Request, reply: tuple[int, dict[str, str], bytes]) -> httpx.Response:
    status, headers, body = reply
    return httpx.Response(status, headers=list(headers.items()), content=body, request=request)


class _Base:
    def __init__(self, sim: Any) -> None:
        self.sim = sim
        # In-process callers are the test itself: no control key needed.
        self.control = ControlInterface(sim, key=None)

    def _call(self, request: httpx.Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        path, query = split_target(request.url)
        headers = dict(request.headers.items())
        if is_control_path(path):
            return self.control.handle(request.method, path, query, headers, body)
        return self.sim.handle(request.method, path, query, headers, body)


class SimTransport(_Base, httpx.BaseTransport):
    """Synchronous in-process transport: ``httpx.Client(transport=SimTransport(sim))``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        path, _ = split_target(request.url)
        if is_control_path(path):
            return _response(request, self._call(request, body))
        plan = plan_request(self.sim.faults, request.method)
        if plan.delay_s:
            time.sleep(plan.delay_s)
        if plan.fault == "drop":
            raise httpx.RemoteProtocolError(DROP_MESSAGE, request=request)
        if plan.fault == "error":
            return _response(request, error_reply(plan.error_status))
        reply = self._call(request, body)
        if plan.fault == "timeout":
            time.sleep(_hold_for(plan, request))
            raise httpx.ReadTimeout("timed out", request=request)
        return _response(request, reply)


class AsyncSimTransport(_Base, httpx.AsyncBaseTransport):
    """Asynchronous in-process transport: ``httpx.AsyncClient(transport=AsyncSimTransport(sim))``.

    Latency and timeouts sleep with asyncio, so many concurrent requests overlap
    their delays exactly as they would against a slow server.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path, _ = split_target(request.url)
        if is_control_path(path):
            return _response(request, self._call(request, body))
        plan = plan_request(self.sim.faults, request.method)
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        if plan.fault == "drop":
            raise httpx.RemoteProtocolError(DROP_MESSAGE, request=request)
        if plan.fault == "error":
            return _response(request, error_reply(plan.error_status))
        # The simulator works in memory and is thread-safe; calling it inline keeps
        # the per-request overhead minimal. With PBS's auth delays switched on it
        # sleeps, so it then runs in a thread to keep the event loop free.
        if getattr(self.sim, "auth_delay_s", 0):
            reply = await asyncio.to_thread(self._call, request, body)
        else:
            reply = self._call(request, body)
        if plan.fault == "timeout":
            await asyncio.sleep(_hold_for(plan, request))
            raise httpx.ReadTimeout("timed out", request=request)
        return _response(request, reply)
