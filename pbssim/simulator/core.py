"""The simulator: one PBS host state behind the router, reached in-process or over HTTPS."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from pbssim import acl
from pbssim.chunk_content import ContentStore, ReaderSession
from pbssim.chunk_seed import sync_with_state
from pbssim.faults import FaultConfig
from pbssim.params import (
    AUTHID,
    BACKUP_ID_RE,
    DATASTORE,
    NS_RE,
    ParameterError,
    check_string,
    parse_simple_value,
)
from pbssim.router import WORLD, Endpoint, Request, Router, check_api_permission
from pbssim.simulator.replies import _check, _check_pattern, _error, _format_error, _parse_cookies, synthetic_files
from pbssim.simulator.tickets import (
    BOOTSTRAP_TOKEN,
    EXPIRED_AUTH_COOKIE,
    JSON_CONTENT_TYPE,
    MAX_BODY_BYTES,
    MAX_URI_LENGTH,
    Reply,
    Tickets,
    log,
)
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


class Simulator:
    """An in-memory PBS 4.2.3 (see the module docstring for the request flow)."""

    def __init__(
        self,
        *,
        version: str = "4.2",
        release: str = "3",
        node: str = "localhost",
        auth_delay_s: float = 0.0,
        content: bool = False,
        content_seed: int = 0,
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
        # Reader-protocol contents seeded from the state, synced before a session (see content_sync).
        self.content: ContentStore | None = ContentStore() if content else None
        self.content_seed = content_seed
        self._content_dirty = True

    def enable_content(self, *, seed: int = 0) -> ContentStore:
        """Give this simulator seeded snapshot contents (as ``Simulator(content=True)`` does)."""
        with self._lock:
            if self.content is None:
                self.content, self.content_seed, self._content_dirty = ContentStore(), seed, True
            return self.content

    def content_sync(self) -> None:
        """Bring ``content`` in step with the snapshots (cheap when nothing changed). State-changing
        requests, ``seed_snapshot`` and ``reset`` mark it stale; direct ``state`` edits call ``mark_content_stale``."""
        with self._lock:
            if self.content is None or not self._content_dirty:
                return
            sync_with_state(self.content, self.state, seed=self.content_seed)
            self._content_dirty = False

    def mark_content_stale(self) -> None:
        self._content_dirty = True

    def open_reader(self, auth_id: str, query: str, headers: Mapping[str, str]) -> ReaderSession:
        """``GET /api2/json/reader`` in-process: PBS's checks, then a session over ``content``."""
        content = self.enable_content() if self.content is None else self.content
        self.content_sync()
        with self._lock:
            return content.open_reader(self.state, auth_id, query, headers)

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
            if method != "GET":
                self._content_dirty = True
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
            self._content_dirty = True
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
            self._content_dirty = True

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
