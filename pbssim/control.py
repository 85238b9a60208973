"""The simulator's control interface: JSON endpoints under ``/_sim/``, outside PBS's ``/api2``.

Tests, demos and benchmarks use it to seed data, read state, set faults and
count PBS calls. Over HTTPS it is protected by a control key sent in the
``X-Sim-Control-Key`` header (generated at start and printed), so nobody on the
box changes a running simulator by accident; the in-process transport needs
no key. Faults never apply here.

Endpoints (request and response bodies are JSON; replies are ``{"data": ...}``):

- ``GET  /_sim/state``                      the simulator's state snapshot
- ``POST /_sim/datastores``                 one datastore object or a list
- ``POST /_sim/snapshots``                  one snapshot object or a list
- ``GET  /_sim/faults`` / ``PUT /_sim/faults``  read / change fault settings
  (latency_ms, error_rate, timeout_rate, drop_rate, timeout_hold_s, seed, methods)
- ``POST /_sim/reset``                      back to an empty PBS, with a new admin token
  (returned; ``{"bootstrap": false}`` for none)
- ``GET  /_sim/requests[?reset=1]``         PBS calls counted by method and path
- ``PUT  /_sim/down``                       server only: ``{"seconds": N, "mode": "refuse"|"hang"}``
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from pbssim.faults import FaultConfig

log = logging.getLogger(__name__)

PREFIX = "/_sim"
KEY_HEADER = "x-sim-control-key"
Reply = tuple[int, dict[str, str], bytes]

DATASTORE_FIELDS = {
    "name", "total_bytes", "used_bytes", "gc_index_data_bytes", "gc_disk_bytes", "comment",
}
SNAPSHOT_FIELDS = {
    "store", "ns", "backup_type", "backup_id", "backup_time", "size", "owner",
    "verification", "protected",
}
FAULT_FIELDS = {
    "latency_ms", "error_rate", "timeout_rate", "drop_rate", "timeout_hold_s", "seed", "methods",
}
DOWN_MODES = ("refuse", "hang")


class ControlError(Exception):
    """A control request the simulator cannot honour; becomes a JSON error reply."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_control_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _json(status: int, payload: Any) -> Reply:
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    return status, {"Content-Type": "application/json"}, body


def faults_to_dict(faults: FaultConfig) -> dict[str, Any]:
    return {
        "latency_ms": faults.latency_ms,
        "error_rate": faults.error_rate,
        "timeout_rate": faults.timeout_rate,
        "drop_rate": faults.drop_rate,
        "timeout_hold_s": faults.timeout_hold_s,
        "seed": faults.seed,
        "methods": sorted(faults.methods),
    }


def build_faults(current: FaultConfig, changes: dict[str, Any]) -> FaultConfig:
    """A new FaultConfig from the current one plus changes, validated."""
    unknown = set(changes) - FAULT_FIELDS
    if unknown:
        raise ControlError(400, f"unknown fault settings: {', '.join(sorted(unknown))}")
    values = {
        field.name: getattr(current, field.name)
        for field in dataclasses.fields(current)
        if field.init and not field.name.startswith("_")
    }
    values.update(changes)
    try:
        for name in ("latency_ms", "timeout_hold_s"):
            values[name] = float(values[name])
            if values[name] < 0:
                raise ControlError(400, f"{name} must be >= 0")
        for name in ("error_rate", "timeout_rate", "drop_rate"):
            values[name] = float(values[name])
            if not 0.0 <= values[name] <= 1.0:
                raise ControlError(400, f"{name} must be between 0 and 1")
        if values["seed"] is not None:
            values["seed"] = int(values["seed"])
        values["methods"] = frozenset(str(m).upper() for m in values["methods"])
    except (TypeError, ValueError) as exc:
        raise ControlError(400, f"bad fault setting: {exc}") from exc
    if values["error_rate"] + values["timeout_rate"] + values["drop_rate"] > 1.0:
        raise ControlError(400, "error_rate + timeout_rate + drop_rate must not exceed 1")
    return FaultConfig(**values)


def count_requests(log_entries: list[Any]) -> dict[str, Any]:
    """Count (method, path, status) log entries by method+path and by status."""
    by_route: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for entry in log_entries:
        method, path, status = entry[0], entry[1], entry[2]
        by_route[f"{method} {path}"] += 1
        by_status[str(status)] += 1
    return {"total": len(log_entries), "by_route": dict(by_route), "by_status": dict(by_status)}


class ControlInterface:
    """Dispatches ``/_sim/...`` requests to the simulator.

    ``key`` None means no authentication (in-process use). ``pause_server`` is
    given by SimServer so ``PUT /_sim/down`` can take the host down.
    """

    def __init__(
        self,
        sim: Any,
        *,
        key: str | None,
        pause_server: Callable[[str, float], None] | None = None,
    ) -> None:
        self.sim = sim
        self._key = key
        self._pause_server = pause_server

    def __repr__(self) -> str:  # the key stays out of reprs
        return f"ControlInterface(protected={self._key is not None})"

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        try:
            self._authenticate(headers)
            return self._route(method.upper(), path.rstrip("/"), parse_qs(query), body)
        except ControlError as exc:
            return _json(exc.status, {"error": exc.message})

    def _authenticate(self, headers: dict[str, str]) -> None:
        if self._key is None:
            return
        sent = next((v for k, v in headers.items() if k.lower() == KEY_HEADER), "")
        if not hmac.compare_digest(sent.encode(), self._key.encode()):
            raise ControlError(401, "missing or wrong X-Sim-Control-Key")

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Reply:
        name = path[len(PREFIX) + 1 :] if path.startswith(PREFIX + "/") else ""
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "state"): lambda: self.sim.state_snapshot(),
            ("POST", "datastores"): lambda: self._add_datastores(_parse_json(body)),
            ("POST", "snapshots"): lambda: self._add_snapshots(_parse_json(body)),
            ("GET", "faults"): lambda: faults_to_dict(self.sim.faults),
            ("PUT", "faults"): lambda: self._set_faults(_parse_json(body)),
            ("POST", "reset"): lambda: self._reset(_parse_json(body)),
            ("GET", "requests"): lambda: self._requests(query),
            ("PUT", "down"): lambda: self._down(_parse_json(body)),
        }
        handler = routes.get((method, name))
        if handler is None:
            if any(route_name == name for _, route_name in routes):
                raise ControlError(405, f"method {method} not allowed on {path}")
            raise ControlError(404, f"no control endpoint {path}")
        return _json(200, {"data": handler()})

    def _add_datastores(self, payload: Any) -> list[str]:
        names = []
        for item in _as_list(payload):
            fields = _check_fields(item, DATASTORE_FIELDS, required={"name"})
            name = fields.pop("name")
            try:
                self.sim.add_datastore(name, **fields)
            except (TypeError, ValueError, KeyError) as exc:
                raise ControlError(400, f"datastore {name!r}: {exc}") from exc
            names.append(name)
        return names

    def _add_snapshots(self, payload: Any) -> int:
        items = _as_list(payload)
        required = {"store", "backup_type", "backup_id", "backup_time"}
        checked = [_check_fields(item, SNAPSHOT_FIELDS, required=required) for item in items]
        for fields in checked:
            fields.setdefault("ns", "")
            fields.setdefault("size", None)
            try:
                self.sim.seed_snapshot(**fields)
            except (TypeError, ValueError, KeyError) as exc:
                raise ControlError(400, f"snapshot {fields!r}: {exc}") from exc
        return len(checked)

    def _set_faults(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ControlError(400, "expected a JSON object of fault settings")
        self.sim.faults = build_faults(self.sim.faults, payload)
        log.info("faults changed: %s", faults_to_dict(self.sim.faults))
        return faults_to_dict(self.sim.faults)

    def _reset(self, payload: Any) -> dict[str, str] | None:
        """Back to an empty PBS. Unless ``{"bootstrap": false}``, the admin token is made
        again (with a new secret, returned here) so a running demo stays usable."""
        if payload is not None and not isinstance(payload, dict):
            raise ControlError(400, 'expected {"bootstrap": true|false} or no body')
        self.sim.reset()
        if payload is not None and payload.get("bootstrap") is False:
            return None
        token_id, secret = self.sim.bootstrap_admin_token()
        return {"token_id": token_id, "token_secret": secret}

    def _requests(self, query: dict[str, list[str]]) -> dict[str, Any]:
        entries = self.sim.request_log
        snapshot = list(entries)
        if query.get("reset", ["0"])[-1].lower() in {"1", "true", "yes"}:
            # Remove exactly what was counted, so a request logged meanwhile is kept.
            del entries[: len(snapshot)]
        return count_requests(snapshot)

    def _down(self, payload: Any) -> dict[str, Any]:
        if self._pause_server is None:
            raise ControlError(400, "only a running SimServer can go down")
        if not isinstance(payload, dict):
            raise ControlError(400, "expected {\"seconds\": N, \"mode\": \"refuse\"|\"hang\"}")
        mode = payload.get("mode", "refuse")
        try:
            seconds = float(payload["seconds"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ControlError(400, "seconds (a number > 0) is required") from exc
        if mode not in DOWN_MODES or seconds <= 0:
            raise ControlError(400, f"mode must be one of {DOWN_MODES} and seconds > 0")
        self._pause_server(mode, seconds)
        return {"mode": mode, "seconds": seconds}


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise ControlError(400, f"body is not JSON: {exc}") from exc


def _as_list(payload: Any) -> list[Any]:
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(item, dict) for item in items):
        raise ControlError(400, "expected a JSON object or a non-empty list of objects")
    return items


def _check_fields(item: dict[str, Any], allowed: set[str], *, required: set[str]) -> dict[str, Any]:
    unknown = set(item) - allowed
    if unknown:
        raise ControlError(400, f"unknown fields: {', '.join(sorted(unknown))}")
    missing = required - set(item)
    if missing:
        raise ControlError(400, f"missing fields: {', '.join(sorted(missing))}")
    return dict(item)
