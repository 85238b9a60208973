"""/config/remote: remotes, and talking to the remote PBS host."""

from __future__ import annotations

import hashlib
import ssl
from typing import Any
from urllib.parse import quote

import httpx

from pbssim import acl
from pbssim.endpoints.sync.forms import _LINKS, SyncExtension, extension
from pbssim.params import (
    param_error,
)
from pbssim.router import Request
from pbssim.state import (
    ApiError,
    is_token,
)


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
