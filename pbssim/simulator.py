"""The PBS simulator: HTTP semantics of PBS 4.2's REST server over the simulated state.

``Simulator.handle`` takes one request (method, raw path, raw query, headers, body)
and returns (status, headers, body), doing what proxmox-rest-server does:

1. path check (``.`` components: 400), ``/api2/<json|extjs>`` prefix;
2. route lookup; authentication unless the route is World (401 ``authentication
   failed``, no Content-Type, an expired auth cookie; unknown paths also need auth);
3. 404 for unknown paths/methods, route-level permission (403 ``permission check
   failed``);
4. parameters from the query string / form body or a JSON body (400 texts of
   proxmox-schema), then the handler;
5. ``{"data": ...}`` plus attributes such as ``digest``, or the error as plain text
   with a JSON Content-Type (PBS's quirk).

One lock makes it thread-safe. PBS delays 401s to ~3 s and 403s to ~0.5 s after the
request arrived; ``auth_delay_s`` (default 0, so tests stay fast) enables the same
with that ratio: 401 after ``auth_delay_s``, 403 after ``auth_delay_s / 6``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from pbssim import acl
from pbssim.faults import FaultConfig
from pbssim.params import (
    AUTHID,
    BACKUP_ID_RE,
    DATASTORE,
    NS_RE,
    ParameterError,
    check_string,
    compile_pattern,
    parse_simple_value,
)
from pbssim.router import WORLD, Endpoint, Request, Router, check_api_permission
from pbssim.state import (
    ROOT_USERID,
    ApiError,
    Datastore,
    Group,
    Snapshot,
    State,
    Token,
    is_token,
    ns_components,
)

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
EXPIRED_AUTH_COOKIE = (
    "__Host-PBSAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Lax; HttpOnly; Path=/;"
)
MAX_URI_LENGTH = 3072
MAX_BODY_BYTES = 512 * 1024
TICKET_LIFETIME = 7200
TICKET_SKEW = 300
BOOTSTRAP_TOKEN = "root@pam!portal"  # noqa: S105 - the token id, not its secret

Reply = tuple[int, dict[str, str], bytes]


class Tickets:
    """PBS-style tickets (``PBS:<userid>:<hex time>::<signature>``) and CSRF tokens."""

    def __init__(self) -> None:
        self._key = os.urandom(32)

    def _sign(self, data: str) -> str:
        mac = hmac.new(self._key, data.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode().rstrip("=")

    def make_ticket(self, userid: str, now: float) -> str:
        data = f"PBS:{userid}:{int(now):08X}"
        return f"{data}::{self._sign(data)}"

    def verify_ticket(self, ticket: str, now: float) -> str | None:
        """The ticket's userid if it is genuine and neither too old nor from the future."""
        data, sep, signature = ticket.rpartition("::")
        if not sep or not data.startswith("PBS:") or not hmac.compare_digest(self._sign(data), signature):
            return None
        userid, _, stamp = data[4:].rpartition(":")
        try:
            age = now - int(stamp, 16)
        except ValueError:
            return None
        return userid if -TICKET_SKEW <= age <= TICKET_LIFETIME else None

    def make_csrf(self, userid: str, now: float) -> str:
        stamp = f"{int(now):08X}"
        return f"{stamp}:{self._sign(f'{stamp}:{userid}')}"

    def verify_csrf(self, token: str, userid: str, now: float) -> bool:
        stamp, _, signature = token.partition(":")
        try:
            age = now - int(stamp, 16)
        except ValueError:
            return False
        valid = hmac.compare_digest(self._sign(f"{stamp}:{userid}"), signature)
        return valid and -TICKET_SKEW <= age <= TICKET_LIFETIME


class Simulator:
    """An in-memory PBS 4.2.3 (see the module docstring for the request flow)."""

    def __init__(
        self, *, version: str = "4.2", release: str = "3", node: str = "localhost", auth_delay_s: float = 0.0
    ) -> None:
        from pbssim.endpoints import load_modules

        self.version = version
        self.release = release
        self.node = node
        self.auth_delay_s = auth_delay_s
        self.faults = FaultConfig()
        self.request_log: list[tuple[str, str, int]] = []
        self.tickets = Tickets()
        self._lock = threading.RLock()
        self._modules = load_modules()
        self.router = Router()
        for module in self._modules:
            module.register(self.router)
        self.router.add_directory_indexes()
        self.certificate: dict[str, Any] = self._placeholder_certificate()
        self._bootstrap_secret: str | None = None
        self.state = self._new_state()

    def _new_state(self) -> State:
        state = State(self.node)
        for module in self._modules:
            init_state = getattr(module, "init_state", None)
            if init_state is not None:
                init_state(state)
        return state

    # --- the HTTP entry point ---------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Handle one request; ``path`` is the raw path, ``query`` the raw query string."""
        started = time.monotonic()
        method = method.upper()
        lowered = {key.lower(): value for key, value in headers.items()}
        with self._lock:
            status, reply_headers, payload, delay = self._handle(method, path, query, lowered, body)
            if path == "/api2" or path.startswith("/api2/"):
                self.request_log.append((method, path, status))
        if delay > 0:
            remaining = delay - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
        return status, reply_headers, payload

    def _handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, float]:
        if len(path) + (len(query) + 1 if query else 0) > MAX_URI_LENGTH:
            return 414, {}, b"", 0.0
        components = [comp for comp in path.split("/") if comp]
        if any(comp.startswith(".") for comp in components):
            return (*_error(400, "path contains illegal components"), 0.0)
        normalized = "/" + "/".join(components)
        if len(components) < 2 or components[0] != "api2":
            return (*_error(404, f"Path '{normalized}' not found."), 0.0)
        output_format = components[1]
        if output_format not in ("json", "extjs"):
            return (*_error(400, f"Unsupported output format '{output_format}'."), 0.0)
        extjs = output_format == "extjs"
        now = time.time()
        endpoint, uri = self.router.find(components[2:], method)

        auth_id: str | None = None
        if endpoint is None or endpoint.permission is not WORLD:
            auth_id = self._authenticate(method, headers, now)
            if auth_id is None:
                reply = (401, {"Set-Cookie": EXPIRED_AUTH_COOKIE}, b"authentication failed")
                return (*reply, self.auth_delay_s)
        if endpoint is None:
            return (*_format_error(extjs, 404, f"Path '{normalized}' not found."), 0.0)
        if not check_api_permission(endpoint.permission, self.state, auth_id, uri):
            return (*_format_error(extjs, 403, "permission check failed"), self.auth_delay_s / 6)

        request = Request(self.state, auth_id, method, normalized, uri, headers, now, self)
        try:
            params = self._parameters(endpoint, headers, query, body, uri)
            data = endpoint.handler(request, params)
        except ParameterError as exc:
            return (*_format_error(extjs, 400, str(exc), exc.errors), 0.0)
        except ApiError as exc:
            delay = self.auth_delay_s if exc.status == 401 else 0.0
            return (*_format_error(extjs, exc.status, exc.message), delay)
        except Exception as exc:  # a simulator bug: say so loudly, as a 500
            log.exception("simulator error on %s %s", method, normalized)
            return (*_format_error(extjs, 500, f"simulator error: {exc!r}"), 0.0)
        return (*self._format_data(extjs, endpoint, request, data), 0.0)

    # --- authentication ---------------------------------------------------------------

    def _authenticate(self, method: str, headers: Mapping[str, str], now: float) -> str | None:
        """The auth-id, or None (every failure looks the same: a 401)."""
        cookie_header = headers.get("cookie")
        if cookie_header:
            cookies = _parse_cookies(cookie_header)
            ticket = cookies.get("__Host-PBSAuthCookie", cookies.get("PBSAuthCookie"))
            if ticket is not None:
                userid = self.tickets.verify_ticket(unquote(ticket), now)
                if userid is None or not self.state.is_active_authid(userid, now):
                    return None
                if method != "GET":
                    csrf = headers.get("csrfpreventiontoken")
                    if csrf is None or not self.tickets.verify_csrf(csrf, userid, now):
                        return None
                return userid
        authorization = headers.get("authorization")
        if authorization is None or not authorization.startswith("PBSAPIToken"):
            return None  # also PVEAPIToken=..., Bearer, Basic
        rest = authorization[len("PBSAPIToken") :]
        if not rest or rest[0] not in "= ":
            return None
        tokenid, sep, secret = rest[1:].partition(":")
        if not sep or not is_token(tokenid):
            return None
        try:
            check_string(AUTHID, tokenid)
        except ValueError:
            return None
        if not self.state.is_active_authid(tokenid, now):
            return None
        if not self.state.verify_token_secret(tokenid, unquote(secret)):
            return None
        return tokenid

    # --- parameters ------------------------------------------------------------------------

    def _parameters(
        self, endpoint: Endpoint, headers: Mapping[str, str], query: str, body: bytes, uri: dict[str, str]
    ) -> dict[str, Any]:
        """``get_request_parameters``: JSON body (query ignored) or query + form body."""
        schema = endpoint.schema
        is_json = False
        content_type = headers.get("content-type")
        if content_type is not None:
            kind = content_type.split(";", 1)[0]
            if kind == "application/json":
                is_json = True
            elif kind != "application/x-www-form-urlencoded":
                raise ApiError(f'unsupported content type Ok("{content_type}")')
        if len(body) >= MAX_BODY_BYTES:
            raise ApiError("Request body too large")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(
                f"Request body not uft8: invalid utf-8 sequence of {exc.end - exc.start} bytes from index {exc.start}"
            ) from None
        if is_json:
            try:
                data = json.loads(text) if text else {}
            except json.JSONDecodeError as exc:
                raise ApiError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
            if isinstance(data, dict):
                for key, value in uri.items():
                    prop = schema.properties.get(key)
                    if prop is not None:
                        try:
                            data[key] = parse_simple_value(prop, value)
                        except ValueError as exc:
                            raise ApiError(str(exc)) from None
            try:
                return schema.verify_json(data)
            except ParameterError:
                raise
            except ValueError as exc:
                raise ApiError(str(exc)) from None
        pairs = parse_qsl(text, keep_blank_values=True) if text else []
        if query:
            pairs += [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "_dc"]
        pairs += list(uri.items())
        return schema.parse_strings(pairs)

    # --- replies -------------------------------------------------------------------------------

    def _format_data(self, extjs: bool, endpoint: Endpoint, request: Request, data: Any) -> Reply:
        envelope: dict[str, Any] = {"data": data}
        envelope.update(request.attributes)
        if extjs:
            envelope["success"] = True
        elif endpoint.envelope == "ticket":
            envelope["status"] = 200
            envelope["success"] = True
        headers = {"Content-Type": JSON_CONTENT_TYPE, **request.response_headers}
        return 200, headers, json.dumps(envelope, separators=(",", ":")).encode()

    # --- control API used by tests, the server, the CLI and the control interface ---------------

    def transport(self) -> httpx.BaseTransport:
        from pbssim.transport import SimTransport

        return SimTransport(self)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        from pbssim.transport import AsyncSimTransport

        return AsyncSimTransport(self)

    def reset(self) -> None:
        """Back to an empty PBS (root@pam only); faults and the certificate stay."""
        with self._lock:
            self.state = self._new_state()
            self.request_log.clear()
            self._bootstrap_secret = None
            self.tickets = Tickets()

    def bootstrap_admin_token(self) -> tuple[str, str]:
        """Token ``root@pam!portal`` with Admin on ``/``; a second call returns the same
        secret (unless it was regenerated through the API meanwhile)."""
        with self._lock:
            state = self.state
            if BOOTSTRAP_TOKEN not in state.tokens:
                state.add_token(Token(BOOTSTRAP_TOKEN, comment="portal bootstrap"))
                state.saved("user")
            secret = self._bootstrap_secret
            if secret is None or not state.verify_token_secret(BOOTSTRAP_TOKEN, secret):
                secret = state.set_token_secret(BOOTSTRAP_TOKEN)
                self._bootstrap_secret = secret
            node = state.acl.find_node(())
            if node is None or node.users.get(BOOTSTRAP_TOKEN, {}).get("Admin") is not True:
                state.acl.insert("/", BOOTSTRAP_TOKEN, "Admin", True)
                state.saved("acl")
            return BOOTSTRAP_TOKEN, secret

    def set_password(self, userid: str, password: str) -> None:
        """Give a user a password for ``POST /access/ticket`` (e.g. root@pam in a demo)."""
        from pbssim.state import hash_password

        with self._lock:
            if userid not in self.state.users:
                raise KeyError(f"no such user '{userid}'")
            self.state.passwords[userid] = hash_password(password)

    def set_certificate(self, pem: str, fingerprint: str, **info: Any) -> None:
        """What ``GET /nodes/{node}/certificates/info`` reports (the server's real cert).

        ``info`` may set subject, issuer, san, notbefore, notafter, public_key_type,
        public_key_bits."""
        with self._lock:
            cert = self._placeholder_certificate()
            cert["fingerprint"] = fingerprint
            cert["pem"] = pem
            for key, value in info.items():
                cert[key.replace("_", "-")] = value
            self.certificate = cert

    def _placeholder_certificate(self) -> dict[str, Any]:
        now = int(time.time())
        digest = hashlib.sha256(f"pbssim:{self.node}:{id(self)}".encode()).hexdigest()
        return {
            "filename": "proxy.pem",
            "fingerprint": ":".join(digest[i : i + 2] for i in range(0, 64, 2)),
            "subject": f"OU=PVE Cluster Node, O=Proxmox Virtual Environment, CN={self.node}",
            "san": list(dict.fromkeys([self.node, "localhost", "127.0.0.1"])),
            "issuer": f"OU=PVE Cluster Node, O=Proxmox Virtual Environment, CN={self.node}",
            "notbefore": now,
            "notafter": now + 10 * 365 * 86400,
            "public-key-type": "rsaEncryption",
            "public-key-bits": 2048,
        }

    def add_datastore(
        self,
        name: str,
        *,
        total_bytes: int = 4 * 2**40,
        used_bytes: int = 0,
        gc_index_data_bytes: int | None = None,
        gc_disk_bytes: int | None = None,
        comment: str = "",
    ) -> None:
        """Add a datastore (or update the figures of an existing one).

        GC figures left as None follow the data: index-data-bytes is the sum of the
        snapshots' logical sizes, disk-bytes is ``used_bytes``."""
        _check(DATASTORE, name, "name")
        for label, value in (("total_bytes", total_bytes), ("used_bytes", used_bytes)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{label} must be a non-negative integer")
        with self._lock:
            store = self.state.datastores.get(name)
            if store is None:
                store = Datastore(name=name, path=f"/mnt/datastore/{name}")
                self.state.datastores[name] = store
            store.comment = comment or None
            store.total_bytes = total_bytes
            store.used_bytes = used_bytes
            store.gc_index_data_bytes = gc_index_data_bytes
            store.gc_disk_bytes = gc_disk_bytes
            self.state.saved("datastore")

    def seed_snapshot(
        self,
        *,
        store: str,
        ns: str,
        backup_type: str,
        backup_id: str,
        backup_time: int,
        size: int | None,
        owner: str | None = None,
        verification: str | None = None,
        protected: bool = False,
    ) -> None:
        """Add a finished snapshot, creating the group and missing namespaces.

        ``size`` is the logical size (the files add up to it); None means a snapshot
        without manifest (no size). A new group is owned by ``owner`` or root@pam."""
        _check_pattern(NS_RE, ns, "ns")
        if len(ns_components(ns)) > 7:
            raise ValueError("ns: namespace too deep (max depth 7)")
        if backup_type not in ("vm", "ct", "host"):
            raise ValueError("backup_type must be vm, ct or host")
        _check_pattern(BACKUP_ID_RE, backup_id, "backup_id")
        if not isinstance(backup_time, int) or backup_time < 1:
            raise ValueError("backup_time must be a positive epoch")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError("size must be a non-negative integer or None")
        if owner is not None:
            _check(AUTHID, owner, "owner")
        if verification not in (None, "ok", "failed"):
            raise ValueError("verification must be 'ok', 'failed' or None")
        with self._lock:
            datastore = self.state.datastores.get(store)
            if datastore is None:
                raise KeyError(f"no such datastore '{store}'")
            datastore.ensure_namespace(ns)
            groups = datastore.groups.setdefault(ns, {})
            group = groups.get((backup_type, backup_id))
            if group is None:
                group = Group(backup_type, backup_id, owner or ROOT_USERID)
                groups[(backup_type, backup_id)] = group
            elif owner is not None:
                group.owner = owner
            verify_upid = None
            if verification is not None:
                verify_upid = self.state.new_task(
                    "verificationjob",
                    f"{store}:v-{backup_type}-{backup_id}",
                    ROOT_USERID,
                    exitstatus="OK" if verification == "ok" else "Error: verification failed",
                )
            snapshot = Snapshot(
                backup_time=backup_time,
                files=synthetic_files(backup_type, size),
                manifest=size is not None,
                verification=verification,
                verify_upid=verify_upid,
                protected=protected,
            )
            datastore.add_snapshot(ns, group, snapshot)

    def state_snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the state (no secrets), for tests and the control interface."""
        with self._lock:
            state = self.state
            result: dict[str, Any] = {
                "node": state.node,
                "version": f"{self.version}.{self.release}",
                "users": [user.to_api() for user in state.users.values()],
                "tokens": [token.to_api() for token in state.tokens.values()],
                "acl": [
                    {"path": path, "ugid": ugid, "roleid": role, "propagate": propagate}
                    for path, ugid, role, propagate in state.acl.entries(state.acl.root, "", exact=False)
                ],
                "namespaces": {
                    name: sorted(ns for ns in store.ns_children if ns) for name, store in state.datastores.items()
                },
                "prune_jobs": [job.to_api() for job in state.prune_jobs.values()],
                "datastores": [
                    {
                        **store.config_api(),
                        "total_bytes": store.total_bytes,
                        "used_bytes": store.used_bytes,
                        "logical_bytes": store.logical_bytes,
                        "groups": sum(len(groups) for groups in store.groups.values()),
                        "snapshots": store.snapshot_count,
                    }
                    for store in state.datastores.values()
                ],
                "groups": {
                    name: {
                        ns: {"groups": len(groups), "snapshots": sum(len(g.snapshots) for g in groups.values())}
                        for ns, groups in store.groups.items()
                        if groups
                    }
                    for name, store in state.datastores.items()
                },
                "tasks": len(state.tasks),
            }
            for module in self._modules:
                snapshot_state = getattr(module, "snapshot_state", None)
                if snapshot_state is not None:
                    result[module.__name__.rsplit(".", 1)[-1]] = snapshot_state(state)
            return result

    def lookup_privs(self, auth_id: str, path: str) -> list[str]:
        """The privilege names ``auth_id`` has on ``path`` (a convenience for tests)."""
        with self._lock:
            return acl.priv_names(self.state.lookup_privs(auth_id, acl.split_acl_path(path)))


# --- helpers -----------------------------------------------------------------------------


def synthetic_files(backup_type: str, size: int | None) -> list[tuple[str, int | None]]:
    """Plausible archive names whose sizes add up to ``size`` (index.json.blob included)."""
    names = {
        "vm": ("index.json.blob", "qemu-server.conf.blob", "drive-scsi0.img.fidx"),
        "ct": ("index.json.blob", "pct.conf.blob", "root.pxar.didx"),
        "host": ("index.json.blob", "catalog.pcat1.didx", "root.pxar.didx"),
    }[backup_type]
    if size is None:
        return [(name, None) for name in names[1:]]
    manifest = min(size, 512)
    config = min(size - manifest, 400)
    return [(names[0], manifest), (names[1], config), (names[2], size - manifest - config)]


def _check(param: Any, value: Any, label: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    try:
        check_string(param, value)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def _check_pattern(pattern: str, value: Any, label: str) -> None:
    if not isinstance(value, str) or not compile_pattern(pattern).match(value):
        raise ValueError(f"{label}: invalid value {value!r}")


def _parse_cookies(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            cookies.setdefault(name, value)
    return cookies


def _error(status: int, message: str) -> Reply:
    return status, {"Content-Type": JSON_CONTENT_TYPE}, message.encode()


def _format_error(extjs: bool, status: int, message: str, errors: list[tuple[str, str]] | None = None) -> Reply:
    """Plain-text body with a JSON Content-Type; on /api2/extjs a 200 with success=false."""
    if not extjs:
        return _error(status, message)
    body: dict[str, Any] = {
        "success": False,
        "status": status,
        "message": "parameter verification errors" if errors else message,
        "errors": dict(errors or []),
        "data": None,
    }
    return 200, {"Content-Type": JSON_CONTENT_TYPE}, json.dumps(body, separators=(",", ":")).encode()
