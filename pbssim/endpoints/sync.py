"""Remotes, sync jobs and pulls: ``/config/remote``, ``/config/sync``, ``/admin/sync``.

Written from PBS 4.2.3's ``src/api2/config/remote.rs``, ``src/api2/config/sync.rs``,
``src/api2/admin/sync.rs`` and ``src/server/pull.rs`` as the reference describes them
(pbs-api sections 9.4, 11). Status codes and texts follow PBS:

- ``POST /config/remote`` on an existing name: 400 ``parameter verification failed -
  'name': remote 'x' already exists.``; ``GET``/``PUT`` unknown: 400 ``no such remote 'x'``;
  ``DELETE`` unknown: 404 ``remote 'x' does not exist.``; ``DELETE`` while a job uses it: 400
  ``parameter verification failed - 'name': remote 'x' is used by sync job 'j' (datastore 's')``.
- ``POST /config/sync`` existing: 400 ``parameter verification failed - 'id': job 'x' already
  exists.``; ``GET``/``PUT`` unknown: 400 ``no such sync 'x'``; ``DELETE`` unknown: 404
  ``job 'x' does not exist.``; access check failures: 400 ``permission check failed``; run
  without access: 400 ``permission check failed, '<authid>' is missing access``.
- The password of a remote is never returned.

A run pulls from the remote PBS **over HTTP(S)** with the remote's host, port, auth-id,
password and pinned fingerprint, reading exactly what that auth-id may read there, and
writes the copies into this simulator's datastore. For in-process tests, link a simulator
to the remote's ``host:port`` with :func:`link_remote`: the pull then goes through that
simulator's in-process transport instead of a socket (same requests, same checks).
"""

from __future__ import annotations

import hashlib
import re
import ssl
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from pbssim import acl, calendar
from pbssim.params import (
    AUTHID,
    CALENDAR_EVENT,
    COMMENT,
    DATASTORE,
    DIGEST,
    JOB_ID,
    MAX_NAMESPACE_DEPTH,
    NAMESPACE,
    SAFE_ID_RE,
    SINGLE_LINE_COMMENT_RE,
    Param,
    array,
    boolean,
    integer,
    param_error,
    string,
)
from pbssim.router import ANYBODY, Privilege, Request, Router
from pbssim.state import (
    ROOT_USERID,
    ApiError,
    Group,
    Snapshot,
    State,
    is_token,
    ns_acl_path,
    ns_components,
    ns_depth,
    split_authid,
)

EXTENSION = "sync"

# --- parameter types -----------------------------------------------------------------


# DNS_NAME_OR_IP_SCHEMA (proxmox-schema api_types), built from its parts as PBS does.
_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)"
_DNS_NAME = rf"(?:(?:{_LABEL}\.)*{_LABEL})"
_OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"
_IPV4 = rf"(?:(?:{_OCTET}\.){{3}}{_OCTET})"
_H16 = r"(?:[0-9a-fA-F]{1,4})"
_LS32 = rf"(?:(?:{_IPV4}|{_H16}:{_H16}))"
_IPV6 = (
    r"(?:"
    rf"(?:(?:(?:{_H16}:){{6}}){_LS32})|"
    rf"(?:(?:::(?:{_H16}:){{5}}){_LS32})|"
    rf"(?:(?:(?:{_H16})?::(?:{_H16}:){{4}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,3}}{_H16})?::(?:{_H16}:){{1}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,4}}{_H16})?::){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,5}}{_H16})?::){_H16})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,6}}{_H16})?::))"
    r")"
)
DNS_NAME_OR_IP_RE = rf"^(?:{_DNS_NAME}|(?:{_IPV4}|{_IPV6}))$"


def _verify_group_filter(value: str) -> None:
    parse_group_filter(value)


def _verify_byte_size(value: str) -> None:
    parse_byte_size(value)


REMOTE_ID = string(pattern=SAFE_ID_RE, min_length=3, max_length=32)
FINGERPRINT = string(pattern=r"^(?:[0-9a-fA-F][0-9a-fA-F])(?::[0-9a-fA-F][0-9a-fA-F]){31}$", optional=True)
HOST = string(pattern=DNS_NAME_OR_IP_RE)
PORT = integer(optional=True)  # a u16; the published schema gives no range
REMOTE_PASSWORD = string(pattern=SINGLE_LINE_COMMENT_RE, min_length=1, max_length=1024)
GROUP_FILTER = string(verify=_verify_group_filter)
BYTE_SIZE = string(min_length=1, max_length=64, verify=_verify_byte_size, optional=True)

REMOTE_DELETABLE = ("comment", "fingerprint", "port", "use-node-proxy")

_JOB_OPTIONAL: dict[str, Param] = {
    "ns": NAMESPACE,
    "owner": AUTHID.opt(),
    "remote": REMOTE_ID.opt(),
    "remote-ns": NAMESPACE,
    "remove-vanished": boolean(default=False),
    "max-depth": integer(minimum=0, maximum=MAX_NAMESPACE_DEPTH, optional=True),
    "schedule": CALENDAR_EVENT.opt(),
    "group-filter": array(GROUP_FILTER),
    "transfer-last": integer(minimum=1, optional=True),
    "resync-corrupt": boolean(),
    "encrypted-only": boolean(),
    "verified-only": boolean(),
    "run-on-mount": boolean(),
    "unmount-on-done": boolean(),
    "sync-direction": string(enum=("pull", "push"), optional=True, default="pull"),
    "worker-threads": integer(minimum=1, maximum=32, optional=True, default=1),
    "rate-in": BYTE_SIZE,
    "burst-in": BYTE_SIZE,
    "rate-out": BYTE_SIZE,
    "burst-out": BYTE_SIZE,
    "comment": COMMENT,
    "active-encryption-key": string(pattern=SAFE_ID_RE, min_length=3, max_length=32, optional=True),
    "associated-key": array(string(pattern=SAFE_ID_RE, min_length=3, max_length=32)),
}
JOB_DELETABLE = (
    "remote", "owner", "comment", "schedule", "remove-vanished", "group-filter", "rate-in",
    "burst-in", "rate-out", "burst-out", "ns", "remote-ns", "max-depth", "transfer-last",
    "encrypted-only", "verified-only", "run-on-mount", "unmount-on-done", "sync-direction",
    "worker-threads", "active-encryption-key", "associated-key",
)  # fmt: skip
# The order PBS's SyncJobConfig serialises in (config lines and replies).
_JOB_ORDER = (
    "id", "store", "ns", "owner", "remote", "remote-store", "remote-ns", "remove-vanished",
    "max-depth", "comment", "schedule", "group-filter", "transfer-last", "resync-corrupt",
    "encrypted-only", "verified-only", "run-on-mount", "unmount-on-done", "sync-direction",
    "worker-threads", "rate-in", "burst-in", "rate-out", "burst-out", "active-encryption-key",
    "associated-key",
)  # fmt: skip


# --- stored forms ----------------------------------------------------------------------

BACKUP_TYPES = ("vm", "ct", "host")


@dataclass(frozen=True)
class GroupFilter:
    kind: str  # "type" | "group" | "regex"
    value: str
    exclude: bool = False

    def __str__(self) -> str:
        return f"{'exclude:' if self.exclude else ''}{self.kind}:{self.value}"

    def matches(self, backup_type: str, backup_id: str) -> bool:
        if self.kind == "type":
            return backup_type == self.value
        if self.kind == "group":
            return f"{backup_type}/{backup_id}" == self.value
        return re.search(self.value, f"{backup_type}/{backup_id}") is not None


def parse_group_filter(text: str) -> GroupFilter:
    """``GroupFilter::from_str`` (pbs-api-types jobs.rs)."""
    exclude = False
    rest = text
    if rest.startswith("exclude:"):
        exclude, rest = True, rest[8:]
    elif rest.startswith("include:"):
        rest = rest[8:]
    kind, sep, value = rest.partition(":")
    if not sep:
        raise ValueError("input doesn't match expected format '<group:GROUP||type:<vm|ct|host>|regex:REGEX>'")
    if kind == "type":
        if value not in BACKUP_TYPES:
            raise ValueError(f"unable to parse backup type '{value}'")
    elif kind == "group":
        btype, slash, bid = value.partition("/")
        if not slash or btype not in BACKUP_TYPES or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._\-]*", bid):
            raise ValueError("value does not match the regex pattern")
    elif kind == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex parse error: {exc}") from None
    else:
        raise ValueError(f"expected 'group', 'type' or 'regex' prefix, got '{kind}'")
    return GroupFilter(kind, value, exclude)


def apply_filters(filters: list[GroupFilter], backup_type: str, backup_id: str) -> bool:
    """``BackupGroup::apply_filters``: any include filter (or none), and no exclude filter."""
    includes = [f for f in filters if not f.exclude]
    included = not includes or any(f.matches(backup_type, backup_id) for f in includes)
    return included and not any(f.matches(backup_type, backup_id) for f in filters if f.exclude)


_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "PiB")


def parse_byte_size(text: str) -> tuple[float, str]:
    """``HumanByte::from_str``: a number with an optional unit (default bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not match:
        raise ValueError(f"unable to parse size '{text}'")
    unit = match.group(2) or "B"
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown size unit '{unit}'")
    return float(match.group(1)), unit


def format_byte_size(text: str) -> str:
    """``HumanByte``'s Display: ``10MiB`` is stored and shown as ``10 MiB``."""
    number, unit = parse_byte_size(text)
    rounded = round(number, 3)
    shown = str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"
    return f"{shown} {unit}"


def _stored_job(values: dict[str, Any]) -> dict[str, Any]:
    """The config as PBS saves it: typed values re-serialised (filters, sizes), PBS's order."""
    out: dict[str, Any] = {}
    for key in _JOB_ORDER:
        if key not in values or values[key] is None:
            continue
        value = values[key]
        if key == "group-filter":
            value = [str(parse_group_filter(v)) for v in value]
        elif key in ("rate-in", "burst-in", "rate-out", "burst-out"):
            value = format_byte_size(value)
        out[key] = value
    return out


# --- per-simulator state -----------------------------------------------------------------


@dataclass
class JobState:
    """``jobstate`` file of one sync job."""

    created: int
    last_run_upid: str | None = None
    last_run_state: str | None = None
    last_run_endtime: int | None = None


@dataclass
class SyncExtension:
    remotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_states: dict[str, JobState] = field(default_factory=dict)
    task_logs: dict[str, list[str]] = field(default_factory=dict)


# Simulator -> {"host:port": Simulator reached in-process instead of over the network}.
# Kept beside the PBS state (a reset empties PBS, not the test's wiring).
_LINKS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def init_state(state: State) -> None:
    state.extensions[EXTENSION] = SyncExtension()


def snapshot_state(state: State) -> dict[str, Any]:
    ext = extension(state)
    return {
        "remotes": [dict(r) for r in ext.remotes.values()],
        "jobs": [_status(ext, job) for job in ext.jobs.values()],
    }


def extension(state: State) -> SyncExtension:
    ext = state.extensions.get(EXTENSION)
    if ext is None:
        ext = state.extensions[EXTENSION] = SyncExtension()
    return ext


def link_remote(sim: Any, address: str, remote_sim: Any) -> None:
    """Route pulls of ``sim`` to remotes at ``address`` ("host:port") to ``remote_sim``'s
    in-process transport (no socket, no TLS; every API check still applies)."""
    _LINKS.setdefault(sim, {})[address] = remote_sim


def task_log(sim: Any, upid: str) -> list[str]:
    """The log lines of a sync task (what PBS shows in the task viewer)."""
    return list(extension(sim.state).task_logs.get(upid, []))


# --- remotes -------------------------------------------------------------------------------


def _remote_out(ext: SyncExtension, name: str) -> dict[str, Any]:
    return dict(ext.remotes[name])


def _lookup_remote(ext: SyncExtension, name: str) -> dict[str, Any]:
    remote = ext.remotes.get(name)
    if remote is None:
        raise ApiError(f"no such remote '{name}'")
    return remote


def list_remotes(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    req.attributes["digest"] = req.state.digest("remote")
    return [
        _remote_out(ext, name)
        for name in sorted(ext.remotes)
        if req.state.lookup_privs(req.caller, ("remote", name)) & acl.REMOTE_AUDIT
    ]


def create_remote(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    name = params["name"]
    if name in ext.remotes:
        raise ApiError(str(param_error("name", f"remote '{name}' already exists.")))
    remote = {"name": name}
    for key in ("host", "port", "auth-id", "fingerprint", "comment", "use-node-proxy"):
        if key in params:
            remote[key] = params[key]
    ext.remotes[name] = remote
    ext.passwords[name] = params["password"]
    req.state.saved("remote")
    return None


def read_remote(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    remote = _lookup_remote(ext, params["name"])
    req.attributes["digest"] = req.state.digest("remote")
    return dict(remote)


def update_remote(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    req.state.check_digest("remote", params.get("digest"))
    name = params["name"]
    remote = _lookup_remote(ext, name)
    for key in params.get("delete", []):
        remote.pop(key, None)
    for key in ("host", "port", "auth-id", "fingerprint", "comment", "use-node-proxy"):
        if key in params:
            remote[key] = params[key]
    if "password" in params:
        ext.passwords[name] = params["password"]
    req.state.saved("remote")
    return None


def delete_remote(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    req.state.check_digest("remote", params.get("digest"))
    name = params["name"]
    for job_id in sorted(ext.jobs):
        job = ext.jobs[job_id]
        if job.get("remote") == name:
            raise ApiError(
                str(
                    param_error(
                        "name",
                        f"remote '{name}' is used by sync job '{job_id}' (datastore '{job['store']}')",
                    )
                )
            )
    if name not in ext.remotes:
        raise ApiError(f"remote '{name}' does not exist.", 404)
    del ext.remotes[name]
    ext.passwords.pop(name, None)
    req.state.saved("remote")
    return None


def _scan(req: Request, params: dict[str, Any], path: str, query: dict[str, Any]) -> Any:
    ext = extension(req.state)
    remote = _lookup_remote(ext, params["name"])
    try:
        links = _LINKS.get(req.simulator, {})
        with RemoteClient(links, remote, ext.passwords.get(params["name"], "")) as client:
            return client.get(path, query)
    except PullError as exc:
        raise ApiError(f"failed to scan remote '{params['name']}' - {exc}") from None


def scan_datastores(req: Request, params: dict[str, Any]) -> Any:
    return _scan(req, params, "/admin/datastore", {})


def scan_namespaces(req: Request, params: dict[str, Any]) -> Any:
    return _scan(req, params, f"/admin/datastore/{quote(params['store'])}/namespace", {})


def scan_groups(req: Request, params: dict[str, Any]) -> Any:
    return _scan(
        req,
        params,
        f"/admin/datastore/{quote(params['store'])}/groups",
        {"ns": params.get("namespace") or None},
    )


# --- talking to the remote PBS ----------------------------------------------------------------


class PullError(Exception):
    """The remote could not be reached or refused a request."""


class _PinnedSocket(ssl.SSLSocket):
    """Checks the peer's leaf fingerprint inside the handshake, before any request byte."""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        expected = getattr(self.context, "_pbssim_pin", None)
        der = self.getpeercert(binary_form=True)
        presented = ":".join(f"{b:02x}" for b in hashlib.sha256(der).digest()) if der else None
        if expected and presented != expected:
            self.close()
            raise ssl.SSLCertVerificationError(
                f"certificate fingerprint mismatch (expected {expected}, got {presented})"
            )


def _ssl_context(fingerprint: str | None) -> ssl.SSLContext:
    """PBS's remote client: a pinned fingerprint replaces chain checks; without one the
    certificate must verify against the system store."""
    if not fingerprint:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context._pbssim_pin = fingerprint.lower()  # type: ignore[attr-defined]
    context.sslsocket_class = _PinnedSocket
    return context


class RemoteClient:
    """A small HTTP client for the remote's /api2/json, authenticating as the remote's
    auth-id (token header, or a ticket for a user with a password)."""

    def __init__(self, links: dict[str, Any], remote: dict[str, Any], password: str) -> None:
        host, port = remote["host"], remote.get("port") or 8007
        address = f"{host}:{port}"
        netloc = f"[{host}]:{port}" if ":" in host else address
        base = f"https://{netloc}/api2/json"
        linked = links.get(address)
        if linked is not None:
            self._http = httpx.Client(base_url=base, transport=linked.transport(), timeout=30.0)
        else:
            self._http = httpx.Client(base_url=base, verify=_ssl_context(remote.get("fingerprint")), timeout=30.0)
        self._auth_id = remote["auth-id"]
        self._password = password
        self._headers: dict[str, str] = {}

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _login(self) -> None:
        if self._headers:
            return
        if is_token(self._auth_id):
            self._headers = {"Authorization": f"PBSAPIToken={self._auth_id}:{self._password}"}
            return
        data = self._send("POST", "/access/ticket", json={"username": self._auth_id, "password": self._password})
        self._http.cookies.set("PBSAuthCookie", data["ticket"])
        self._headers = {"CSRFPreventionToken": data["CSRFPreventionToken"]}

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path.lstrip("/"), headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise PullError(f"error trying to connect: {exc}") from None
        if resp.status_code != 200:
            raise PullError(f"{resp.status_code} {resp.reason_phrase}: {resp.text.strip()}")
        try:
            return resp.json().get("data")
        except ValueError:
            raise PullError("invalid JSON in reply") from None

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        self._login()
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return self._send("GET", path, params=params)


# --- sync jobs: access checks --------------------------------------------------------------------


def job_acl_path(job: dict[str, Any]) -> tuple[str, ...]:
    return ns_acl_path(job["store"], job.get("ns") or "")


def _direction(job: dict[str, Any]) -> str:
    return job.get("sync-direction") or "pull"


def _push_remote_path(job: dict[str, Any]) -> tuple[str, ...]:
    remote_ns = ns_components(job.get("remote-ns") or "")
    return ("remote", job.get("remote") or "", job["remote-store"], *remote_ns)


def check_read_access(state: State, auth_id: str, job: dict[str, Any]) -> bool:
    """``check_sync_job_read_access``."""
    if not state.lookup_privs(auth_id, job_acl_path(job)) & acl.DATASTORE_AUDIT:
        return False
    if _direction(job) == "push":
        return bool(state.lookup_privs(auth_id, _push_remote_path(job)) & acl.REMOTE_AUDIT)
    if job.get("remote"):
        return bool(state.lookup_privs(auth_id, ("remote", job["remote"])) & acl.REMOTE_AUDIT)
    return bool(state.lookup_privs(auth_id, ("datastore", job["remote-store"])) & acl.DATASTORE_AUDIT)


def _correct_owner(job: dict[str, Any], auth_id: str) -> bool:
    owner = job.get("owner")
    if owner is None:
        return auth_id == ROOT_USERID
    if owner == auth_id:
        return True
    return is_token(owner) and not is_token(auth_id) and split_authid(owner)[0] == auth_id


def check_modify_access(state: State, auth_id: str, job: dict[str, Any]) -> bool:
    """``check_sync_job_modify_access`` (pbs-api 11.2/11.3)."""
    if _direction(job) == "push":
        source = state.lookup_privs(auth_id, job_acl_path(job))
        if not source & acl.DATASTORE_AUDIT or not source & acl.DATASTORE_READ:
            return False
        remote_privs = state.lookup_privs(auth_id, _push_remote_path(job))
        if not remote_privs & acl.PRIV["Remote.DatastoreBackup"]:
            return False
        if job.get("remove-vanished") and not remote_privs & acl.PRIV["Remote.DatastorePrune"]:
            return False
        return _correct_owner(job, auth_id) or bool(source & acl.DATASTORE_MODIFY)
    privs = state.lookup_privs(auth_id, job_acl_path(job))
    if not privs & acl.DATASTORE_BACKUP or not privs & acl.DATASTORE_AUDIT:
        return False
    if job.get("remove-vanished") and not privs & acl.DATASTORE_PRUNE:
        return False
    if not _correct_owner(job, auth_id) and not privs & acl.DATASTORE_MODIFY:
        return False
    if job.get("remote"):
        remote_privs = state.lookup_privs(auth_id, ("remote", job["remote"], job["remote-store"]))
        return bool(remote_privs & acl.REMOTE_READ)
    source = state.lookup_privs(auth_id, ("datastore", job["remote-store"], *ns_components(job.get("remote-ns") or "")))
    return bool(source & acl.DATASTORE_READ)


def _check_max_depth(job: dict[str, Any]) -> None:
    depth = job.get("max-depth")
    if depth is None:
        return
    for key in ("ns", "remote-ns"):
        ns = job.get(key)
        if ns and ns_depth(ns) + depth > MAX_NAMESPACE_DEPTH:
            raise ApiError(
                f"namespace '{ns}'s depth and recursion depth exceed limit: "
                f"{ns_depth(ns)} + {depth} > {MAX_NAMESPACE_DEPTH}"
            )


# --- sync jobs: config endpoints -------------------------------------------------------------


def _lookup_job(ext: SyncExtension, job_id: str) -> dict[str, Any]:
    job = ext.jobs.get(job_id)
    if job is None:
        raise ApiError(f"no such sync '{job_id}'")
    return job


def _direction_filter(job: dict[str, Any], wanted: str) -> bool:
    return wanted == "all" or _direction(job) == wanted


def list_sync_jobs(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    wanted = params.get("sync-direction") or "pull"
    req.attributes["digest"] = req.state.digest("sync")
    return [
        dict(ext.jobs[job_id])
        for job_id in sorted(ext.jobs)
        if _direction_filter(ext.jobs[job_id], wanted) and check_read_access(req.state, req.caller, ext.jobs[job_id])
    ]


def create_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    job = _stored_job(params)
    if _direction(job) == "push" and params.get("resync-corrupt") is not None:
        raise ApiError("push jobs do not support resync-corrupt option")
    if not check_modify_access(req.state, req.caller, job):
        raise ApiError("permission check failed")
    if job.get("remote") is None and _direction(job) == "push":
        raise ApiError("push jobs require a remote")
    if job["id"] in ext.jobs:
        raise ApiError(str(param_error("id", f"job '{job['id']}' already exists.")))
    _check_max_depth(job)
    ext.jobs[job["id"]] = job
    ext.job_states[job["id"]] = JobState(created=int(req.now))
    req.state.saved("sync")
    return None


def read_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    job = _lookup_job(ext, params["id"])
    if not check_read_access(req.state, req.caller, job):
        raise ApiError("permission check failed")
    req.attributes["digest"] = req.state.digest("sync")
    return dict(job)


def update_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    req.state.check_digest("sync", params.get("digest"))
    job_id = params["id"]
    data = dict(_lookup_job(ext, job_id))
    for key in params.get("delete", []):
        data.pop(key, None)
    for key, value in params.items():
        if key in ("id", "delete", "digest"):
            continue
        data[key] = value
    data = _stored_job(data)
    if not check_modify_access(req.state, req.caller, data):
        raise ApiError("permission check failed")
    _check_max_depth(data)
    ext.jobs[job_id] = data
    req.state.saved("sync")
    return None


def delete_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    req.state.check_digest("sync", params.get("digest"))
    job_id = params["id"]
    job = ext.jobs.get(job_id)
    if job is None:
        raise ApiError(f"job '{job_id}' does not exist.", 404)
    if not check_modify_access(req.state, req.caller, job):
        raise ApiError("permission check failed")
    del ext.jobs[job_id]
    ext.job_states.pop(job_id, None)
    req.state.saved("sync")
    return None


# --- /admin/sync: status and run -----------------------------------------------------------------


def _status(ext: SyncExtension, job: dict[str, Any]) -> dict[str, Any]:
    out = dict(job)
    js = ext.job_states.get(job["id"])
    if js is None:
        return out
    last = js.created
    if js.last_run_upid is not None:
        out["last-run-upid"] = js.last_run_upid
    if js.last_run_state is not None:
        out["last-run-state"] = js.last_run_state
        out["last-run-endtime"] = js.last_run_endtime
        last = js.last_run_endtime or last
    schedule = job.get("schedule")
    if schedule:
        nxt = next_event(schedule, last)
        if nxt is not None:
            out["next-run"] = nxt
    return out


def list_sync_status(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    wanted = params.get("sync-direction") or "pull"
    store = params.get("store")
    req.attributes["digest"] = req.state.digest("sync")
    return [
        _status(ext, ext.jobs[job_id])
        for job_id in sorted(ext.jobs)
        if _direction_filter(ext.jobs[job_id], wanted)
        and (store is None or ext.jobs[job_id]["store"] == store)
        and check_read_access(req.state, req.caller, ext.jobs[job_id])
    ]


def escape_unit(text: str) -> str:
    """systemd's ``escape_unit`` as PBS applies it to worker ids in UPIDs."""
    out = []
    for i, ch in enumerate(text.encode()):
        c = chr(ch)
        if c == "/":
            out.append("-")
        elif (i == 0 and c == ".") or not (c in "_." or (c.isascii() and c.isalnum())):
            out.append(f"\\x{ch:02x}")
        else:
            out.append(c)
    return "".join(out)


def run_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    job_id = params["id"]
    job = _lookup_job(ext, job_id)
    if not check_modify_access(req.state, req.caller, job):
        raise ApiError(f"permission check failed, '{req.caller}' is missing access")
    log: list[str] = []
    try:
        pull(req.state, ext, job, log, _LINKS.get(req.simulator, {}))
        exitstatus = "OK"
    except PullFailed as exc:
        exitstatus = str(exc)
        log.append(f"TASK ERROR: {exc}")
    worker_id = escape_unit(
        f"{job.get('remote') or '-'}:{job['remote-store']}:{job['store']}:{job.get('ns') or ''}:{job_id}"
    )
    upid = req.state.new_task("syncjob", worker_id, req.caller, exitstatus=exitstatus)
    ext.task_logs[upid] = log
    js = ext.job_states.setdefault(job_id, JobState(created=int(req.now)))
    js.last_run_upid = upid
    js.last_run_state = exitstatus
    js.last_run_endtime = int(time.time())
    return upid


# --- the pull (src/server/pull.rs) ------------------------------------------------------------------


class PullFailed(Exception):
    """The task's final error (its exit status)."""


def _map_prefix(ns: str, source_root: str, target_root: str) -> str:
    """``BackupNamespace::map_prefix``."""
    src = ns_components(ns)
    root = ns_components(source_root)
    if src[: len(root)] != root:
        raise PullFailed(f"namespace '{ns}' is not below '{source_root}'")
    mapped = ns_components(target_root) + src[len(root) :]
    if len(mapped) > MAX_NAMESPACE_DEPTH:
        raise PullFailed(f"mapped namespace '{'/'.join(mapped)}' is too deep")
    return "/".join(mapped)


def _owner_ok(owner: str, auth_id: str) -> bool:
    """``check_backup_owner``: the owner, or a token of the owning user."""
    if owner == auth_id:
        return True
    return is_token(owner) and split_authid(owner)[0] == auth_id


@dataclass
class _Pull:
    state: State
    job: dict[str, Any]
    client: RemoteClient
    log: list[str]
    owner: str
    filters: list[GroupFilter]
    errors: bool = False

    @property
    def store_name(self) -> str:
        return self.job["store"]


def pull(
    state: State, ext: SyncExtension, job: dict[str, Any], log: list[str], links: dict[str, Any]
) -> None:
    """Pull a job's snapshots from its remote into this state; raise PullFailed at the end
    when anything failed (PBS: ``sync failed with some errors.``)."""
    if _direction(job) == "push":
        raise PullFailed("push sync jobs are not simulated")
    if not job.get("remote"):
        raise PullFailed("local sync jobs are not simulated")
    remote_name = job["remote"]
    remote = ext.remotes.get(remote_name)
    if remote is None:
        raise PullFailed(f"no such remote '{remote_name}'")
    try:
        store = state.lookup_datastore(job["store"])
    except ApiError as exc:
        raise PullFailed(exc.message) from None
    owner = job.get("owner") or ROOT_USERID
    remote_store = job["remote-store"]
    remote_ns = job.get("remote-ns") or ""
    target_root = job.get("ns") or ""
    max_depth = job.get("max-depth")
    log.append(f"Starting datastore sync job '{remote_name}:{remote_store}'")
    log.append(f"sync datastore '{store.name}' from '{remote_name}/{remote_store}'")
    with RemoteClient(links, remote, ext.passwords.get(remote_name, "")) as client:
        ctx = _Pull(state, job, client, log, owner, [parse_group_filter(f) for f in job.get("group-filter", [])])
        try:
            if not remote_ns and max_depth == 0:
                namespaces = [""]
            else:
                listed = client.get(
                    f"/admin/datastore/{quote(remote_store)}/namespace",
                    {"parent": remote_ns or None, "max-depth": max_depth},
                )
                namespaces = sorted({item["ns"] if item.get("ns") else "" for item in listed or []})
                if remote_ns not in namespaces:
                    namespaces.insert(0, remote_ns)
        except PullError as exc:
            raise PullFailed(f"failed to list namespaces of remote '{remote_name}' - {exc}") from None
        synced: set[str] = set()
        for ns in namespaces:
            target_ns = _map_prefix(ns, remote_ns, target_root)
            log.append("----")
            log.append(
                f"Syncing datastore '{remote_store}', namespace '{ns or '/'}' into datastore "
                f"'{store.name}', namespace '{target_ns or '/'}'"
            )
            synced.add(target_ns)
            if not _check_and_create_ns(ctx, target_ns):
                ctx.errors = True
                continue
            _pull_ns(ctx, ns, target_ns)
        if job.get("remove-vanished"):
            _remove_vanished_ns(ctx, target_root, synced)
    if ctx.errors:
        raise PullFailed("sync failed with some errors.")
    log.append("Finished syncing")


def _check_and_create_ns(ctx: _Pull, target_ns: str) -> bool:
    store = ctx.state.datastores[ctx.store_name]
    if target_ns and not store.ns_exists(target_ns):
        parent = target_ns.rpartition("/")[0]
        if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, parent)) & acl.DATASTORE_MODIFY:
            ctx.log.append(
                f"Cannot sync into namespace '{target_ns}' - Creating {target_ns} not allowed - "
                f"permission check failed - missing Datastore.Modify on /{'/'.join(ns_acl_path(store.name, parent))}"
            )
            return False
        store.ensure_namespace(target_ns)
        ctx.log.append(f"Created namespace {target_ns}")
    if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, target_ns)) & acl.DATASTORE_BACKUP:
        ctx.log.append(
            f"Cannot sync into namespace '{target_ns or '/'}' - sync into {store.name}:{target_ns or '/'} "
            f"not allowed - permission check failed - missing Datastore.Backup"
        )
        return False
    return True


def _reader_privs(ctx: _Pull, ns: str) -> set[str]:
    """What the remote auth-id may do on the source namespace (asked over HTTP, as the
    reader protocol's check would decide it)."""
    path = "/" + "/".join(ns_acl_path(ctx.job["remote-store"], ns))
    perms = ctx.client.get("/access/permissions", {"path": path}) or {}
    return set((perms.get(path) or {}).keys())


def _pull_ns(ctx: _Pull, ns: str, target_ns: str) -> None:
    remote_store = ctx.job["remote-store"]
    try:
        groups = ctx.client.get(f"/admin/datastore/{quote(remote_store)}/groups", {"ns": ns or None}) or []
        reader = _reader_privs(ctx, ns)
    except PullError as exc:
        ctx.log.append(f"Encountered errors while syncing namespace '{ns or '/'}' - {exc}")
        ctx.errors = True
        return
    groups = sorted(groups, key=lambda g: (g["backup-type"], g["backup-id"]))
    wanted = [g for g in groups if apply_filters(ctx.filters, g["backup-type"], g["backup-id"])]
    ctx.log.append(f"found {len(wanted)} groups to sync (out of {len(groups)} total)")
    store = ctx.state.datastores[ctx.store_name]
    seen: set[tuple[str, str]] = set()
    for item in wanted:
        key = (item["backup-type"], item["backup-id"])
        seen.add(key)
        label = f"{key[0]}/{key[1]}"
        local = store.groups_in(target_ns).get(key)
        if local is not None and local.owner != ctx.owner:
            ctx.log.append(f"sync group {label} failed - owner check failed ({ctx.owner} != {local.owner})")
            ctx.errors = True
            continue
        if "Datastore.Read" not in reader:
            if "Datastore.Backup" not in reader:
                ctx.log.append(
                    f"sync group {label} failed - no permissions on /{'/'.join(ns_acl_path(remote_store, ns))}"
                )
                ctx.errors = True
                continue
            if not _owner_ok(item.get("owner") or "", ctx.client._auth_id):
                ctx.log.append(f"sync group {label} failed - backup owner check failed!")
                ctx.errors = True
                continue
        try:
            _pull_group(ctx, ns, target_ns, key)
        except PullError as exc:
            ctx.log.append(f"sync group {label} failed - {exc}")
            ctx.errors = True
    if ctx.job.get("remove-vanished"):
        for key, group in list(store.groups_in(target_ns).items()):
            if key in seen or not _owner_ok(group.owner, ctx.owner):
                continue
            if not apply_filters(ctx.filters, *key):
                continue
            ctx.log.append(f"delete vanished group '{key[0]}/{key[1]}'")
            protected = False
            for when, snap in list(group.snapshots.items()):
                if snap.protected:
                    protected = True
                    continue
                store.remove_snapshot(group, when)
            if protected:
                ctx.log.append(f"kept some protected snapshots of group '{key[0]}/{key[1]}'")
            else:
                store.groups[target_ns].pop(key, None)


def _snapshot_encrypted(item: dict[str, Any]) -> bool:
    files = item.get("files") or []
    return bool(files) and all((f.get("crypt-mode") if isinstance(f, dict) else None) == "encrypt" for f in files)


def _pull_group(ctx: _Pull, ns: str, target_ns: str, key: tuple[str, str]) -> None:
    remote_store = ctx.job["remote-store"]
    listed = (
        ctx.client.get(
            f"/admin/datastore/{quote(remote_store)}/snapshots",
            {"ns": ns or None, "backup-type": key[0], "backup-id": key[1]},
        )
        or []
    )
    label = f"{key[0]}/{key[1]}"
    snapshots = []
    for item in listed:
        if item.get("size") is None:
            ctx.log.append(f"skipping snapshot {label}/{item['backup-time']} - in-progress backup")
            continue
        snapshots.append(item)
    snapshots.sort(key=lambda s: s["backup-time"])
    store = ctx.state.datastores[ctx.store_name]
    local = store.groups_in(target_ns).get(key)
    finished = [t for t, s in (local.snapshots.items() if local else []) if s.manifest]
    last_sync = max(finished) if finished else None
    transfer_last = ctx.job.get("transfer-last")
    cutoff = max(0, len(snapshots) - transfer_last) if transfer_last else 0
    source_times = {s["backup-time"] for s in snapshots}
    skipped_old = skipped_last = 0
    for pos, item in enumerate(snapshots):
        when = item["backup-time"]
        if last_sync is not None and last_sync > when:
            skipped_old += 1
            continue
        if pos < cutoff and last_sync != when:
            skipped_last += 1
            continue
        verification = item.get("verification") or {}
        state = verification.get("state") if isinstance(verification, dict) else None
        if ctx.job.get("verified-only") and state != "ok":
            ctx.log.append(f"skipping snapshot {label}/{when} - not verified")
            continue
        if ctx.job.get("encrypted-only") and not _snapshot_encrypted(item):
            ctx.log.append(f"skipping snapshot {label}/{when} - not encrypted")
            continue
        if local is None:
            local = Group(key[0], key[1], ctx.owner)
            store.groups.setdefault(target_ns, {})[key] = local
        files = [(f["filename"], f.get("size")) for f in item.get("files") or [] if isinstance(f, dict)] or [
            ("index.json.blob", item.get("size"))
        ]
        snap = Snapshot(
            backup_time=when,
            files=files,
            verification=state,
            comment=item.get("comment"),
        )
        old = local.snapshots.get(when)
        if old is not None:
            snap.protected = old.protected
        store.add_snapshot(target_ns, local, snap)
        ctx.log.append(f"sync snapshot {label}/{_iso(when)} done")
    if skipped_old:
        ctx.log.append(f"skipped: {skipped_old} snapshot(s) - older than the newest local snapshot")
    if skipped_last:
        ctx.log.append(f"skipped: {skipped_last} snapshot(s) - due to transfer-last")
    if ctx.job.get("remove-vanished") and local is not None:
        for when, snap in list(local.snapshots.items()):
            if when in source_times:
                continue
            if snap.protected:
                ctx.log.append(f"don't delete vanished snapshot {label}/{_iso(when)} (protected)")
                continue
            ctx.log.append(f"delete vanished snapshot {label}/{_iso(when)}")
            store.remove_snapshot(local, when)


def _remove_vanished_ns(ctx: _Pull, target_root: str, synced: set[str]) -> None:
    store = ctx.state.datastores[ctx.store_name]
    max_depth = ctx.job.get("max-depth")
    if max_depth is None:
        max_depth = MAX_NAMESPACE_DEPTH - ns_depth(ctx.job.get("remote-ns") or "")
    if not store.ns_exists(target_root):
        return
    local = [ns for ns in store.iter_namespaces(target_root, max_depth) if store.ns_exists(ns)]
    for ns in sorted(local, key=lambda n: -len(ns_components(n))):
        if ns == target_root or ns in synced or not ns:
            continue
        visible = acl.DATASTORE_BACKUP | acl.DATASTORE_AUDIT
        if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, ns)) & visible:
            continue
        parent = ns.rpartition("/")[0]
        if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, parent)) & acl.DATASTORE_MODIFY:
            ctx.log.append(f"Failed to remove namespace {ns} - permission check failed")
            ctx.errors = True
            continue
        protected = any(
            snap.protected
            for sub in store.subtree(ns)
            for group in store.groups_in(sub).values()
            for snap in group.snapshots.values()
        )
        if protected:
            ctx.log.append(f"Did not remove namespace {ns} - protected snapshots remain")
            continue
        for sub in store.subtree(ns):
            for group in list(store.groups_in(sub).values()):
                for when in list(group.snapshots):
                    store.remove_snapshot(group, when)
        store.remove_namespace(ns)
        ctx.log.append(f"Removed namespace {ns}")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_event(spec: str, after: int) -> int | None:
    """``compute_next_event`` of a job's schedule after ``after`` (None if it never runs)."""
    try:
        return calendar.next_event(calendar.parse_calendar_event(spec), after)
    except ValueError:
        return None


# --- registration ---------------------------------------------------------------------------------


def register(router: Router) -> None:
    remote_path = ("remote", "{name}")
    router.add("GET", "/config/remote", list_remotes, params={}, permission=ANYBODY)
    router.add(
        "POST",
        "/config/remote",
        create_remote,
        params={
            "name": REMOTE_ID,
            "host": HOST,
            "port": PORT,
            "auth-id": AUTHID,
            "password": REMOTE_PASSWORD,
            "fingerprint": FINGERPRINT,
            "comment": COMMENT,
            "use-node-proxy": boolean(default=False),
        },
        permission=Privilege(("remote",), acl.REMOTE_MODIFY),
    )
    router.add(
        "GET", "/config/remote/{name}", read_remote, params={"name": REMOTE_ID},
        permission=Privilege(remote_path, acl.REMOTE_AUDIT),
    )  # fmt: skip
    router.add(
        "PUT",
        "/config/remote/{name}",
        update_remote,
        params={
            "name": REMOTE_ID,
            "host": HOST.opt(),
            "port": PORT,
            "auth-id": AUTHID.opt(),
            "password": REMOTE_PASSWORD.opt(),
            "fingerprint": FINGERPRINT,
            "comment": COMMENT,
            "use-node-proxy": boolean(default=False),
            "delete": array(string(enum=REMOTE_DELETABLE)),
            "digest": DIGEST,
        },
        permission=Privilege(remote_path, acl.REMOTE_MODIFY),
    )
    router.add(
        "DELETE", "/config/remote/{name}", delete_remote,
        params={"name": REMOTE_ID, "digest": DIGEST},
        permission=Privilege(remote_path, acl.REMOTE_MODIFY),
    )  # fmt: skip
    router.add(
        "GET", "/config/remote/{name}/scan", scan_datastores, params={"name": REMOTE_ID},
        permission=Privilege(remote_path, acl.REMOTE_AUDIT),
    )  # fmt: skip
    router.add(
        "GET", "/config/remote/{name}/scan/{store}/namespaces", scan_namespaces,
        params={"name": REMOTE_ID, "store": DATASTORE},
        permission=Privilege(remote_path, acl.REMOTE_AUDIT),
    )  # fmt: skip
    router.add(
        "GET", "/config/remote/{name}/scan/{store}/groups", scan_groups,
        params={"name": REMOTE_ID, "store": DATASTORE, "namespace": NAMESPACE},
        permission=Privilege(remote_path, acl.REMOTE_AUDIT),
    )  # fmt: skip

    direction_list = string(enum=("all", "push", "pull"), optional=True, default="pull")
    router.add(
        "GET", "/config/sync", list_sync_jobs, params={"sync-direction": direction_list},
        permission=ANYBODY,
    )  # fmt: skip
    router.add(
        "POST",
        "/config/sync",
        create_sync_job,
        params={"id": JOB_ID, "store": DATASTORE, "remote-store": DATASTORE, **_JOB_OPTIONAL},
        permission=ANYBODY,
    )
    router.add("GET", "/config/sync/{id}", read_sync_job, params={"id": JOB_ID}, permission=ANYBODY)
    router.add(
        "PUT",
        "/config/sync/{id}",
        update_sync_job,
        params={
            "id": JOB_ID,
            "store": DATASTORE.opt(),
            "remote-store": DATASTORE.opt(),
            **_JOB_OPTIONAL,
            "delete": array(string(enum=JOB_DELETABLE)),
            "digest": DIGEST,
        },
        permission=ANYBODY,
    )
    router.add(
        "DELETE", "/config/sync/{id}", delete_sync_job,
        params={"id": JOB_ID, "digest": DIGEST}, permission=ANYBODY,
    )  # fmt: skip
    router.add(
        "GET", "/admin/sync", list_sync_status,
        params={"store": DATASTORE.opt(), "sync-direction": direction_list}, permission=ANYBODY,
    )  # fmt: skip
    router.add("POST", "/admin/sync/{id}/run", run_sync_job, params={"id": JOB_ID}, permission=ANYBODY)


__all__ = ["link_remote", "next_event", "register", "task_log"]
