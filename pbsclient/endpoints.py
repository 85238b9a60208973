"""What each client method sends and how its answer is read, independent of sync/async.

Every function here validates its arguments (so bad input is refused before
any PBS call), then returns a ``Call``: method, path, parameters and the
parser for ``data``. ``PbsClient`` and ``AsyncPbsClient`` execute the same
``Call`` objects, so the two clients cannot drift apart.

Parameters use PBS's names (kebab case, except ``include_tokens`` and
``ugid_type`` which PBS spells with an underscore). Path parameters are
percent-encoded (user ids contain '@', token ids '!').
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from pbsclient import validation as v
from pbsclient.models import (
    SYNC_JOB_FIELDS,
    AclEntry,
    BackupGroup,
    CertificateInfo,
    DatastoreListItem,
    DatastoreStatus,
    DatastoreUsage,
    GcStatus,
    Namespace,
    PruneJob,
    PruneJobStatus,
    Remote,
    Snapshot,
    SyncJob,
    SyncJobStatus,
    Token,
    TokenSecret,
    User,
    VersionInfo,
)

Method = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True, slots=True)
class Call[T]:
    """One PBS request: ``path`` is human-readable (for logs and errors), ``url`` is the
    percent-encoded form below /api2/json. ``secrets`` are parameter values that must be
    scrubbed from any message (e.g. a remote's password)."""

    method: Method
    path: str
    url: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


def _path(template: str, *args: str) -> tuple[str, str]:
    return template.format(*args), template.format(*(quote(arg, safe="") for arg in args))


def _call[T](
    method: Method,
    template: str,
    args: Sequence[str],
    parse: Callable[[Any], T],
    params: Mapping[str, Any] | None = None,
    secrets: tuple[str, ...] = (),
) -> Call[T]:
    path, url = _path(template, *args)
    clean = {key: value for key, value in (params or {}).items() if value is not None}
    return Call(method=method, path=path, url=url, parse=parse, params=clean, secrets=secrets)


def _list_of[M](parse: Callable[[Any], M]) -> Callable[[Any], list[M]]:
    def parse_list(data: Any) -> list[M]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise TypeError(f"expected a JSON list, got {type(data).__name__}")
        return [parse(item) for item in data]

    return parse_list


def _none(_: Any) -> None:
    return None


def _string(data: Any) -> str:
    if not isinstance(data, str):
        raise TypeError(f"expected a string, got {type(data).__name__}")
    return data


def _optional_string(data: Any) -> str | None:
    return None if data is None else _string(data)


def _delete_list(delete: Iterable[str] | None, allowed: Iterable[str], what: str) -> list[str] | None:
    """PBS's ``delete`` array (unset these properties); accepts snake_case names too."""
    if delete is None:
        return None
    if isinstance(delete, str):
        delete = [delete]
    allowed_set = set(allowed)
    names = [name.replace("_", "-") for name in delete]
    unknown = [name for name in names if name not in allowed_set]
    if unknown:
        raise v.PbsValidationError(
            f"cannot delete {', '.join(map(repr, unknown))} from a {what}; PBS allows: {', '.join(sorted(allowed_set))}"
        )
    return names or None


# --- version, ping -------------------------------------------------------------------


def version() -> Call[VersionInfo]:
    return _call("GET", "/version", (), VersionInfo.from_api)


def _pong(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("pong") is True


def ping() -> Call[bool]:
    return _call("GET", "/ping", (), _pong)


# --- users ---------------------------------------------------------------------------------

_USER_DELETABLE = ("comment", "firstname", "lastname", "email")


def user_list(include_tokens: bool) -> Call[list[User]]:
    # PBS spells this parameter with an underscore.
    return _call("GET", "/access/users", (), _list_of(User.from_api), {"include_tokens": include_tokens or None})


def user_get(userid: str) -> Call[User]:
    v.validate_userid(userid)
    return _call("GET", "/access/users/{}", (userid,), User.from_api)


def user_create(
    *,
    userid: str,
    comment: str | None,
    enable: bool,
    expire: int | None,
    email: str | None,
    firstname: str | None,
    lastname: str | None,
    password: str | None,
) -> Call[None]:
    v.validate_userid(userid)
    if password is not None and not 8 <= len(password) <= 64:
        raise v.PbsValidationError(f"a PBS password must be 8..64 characters, not {len(password)}")
    params = {
        "userid": userid,
        "comment": comment,
        "enable": None if enable else False,
        "expire": expire,
        "email": email,
        "firstname": firstname,
        "lastname": lastname,
        "password": password,
    }
    return _call("POST", "/access/users", (), _none, params, secrets=(password,) if password else ())


def user_update(
    userid: str,
    *,
    comment: str | None,
    enable: bool | None,
    expire: int | None,
    email: str | None,
    firstname: str | None,
    lastname: str | None,
    delete: Iterable[str] | None,
) -> Call[None]:
    v.validate_userid(userid)
    params = {
        "comment": comment,
        "enable": enable,
        "expire": expire,
        "email": email,
        "firstname": firstname,
        "lastname": lastname,
        "delete": _delete_list(delete, _USER_DELETABLE, "user"),
    }
    return _call("PUT", "/access/users/{}", (userid,), _none, params)


def user_delete(userid: str) -> Call[None]:
    v.validate_userid(userid)
    return _call("DELETE", "/access/users/{}", (userid,), _none)


# --- tokens ---------------------------------------------------------------------------------


def _tokenid(userid: str, name: str) -> str:
    v.validate_userid(userid)
    v.validate_token_name(name)
    return v.validate_tokenid(f"{userid}!{name}")


def token_list(userid: str) -> Call[list[Token]]:
    v.validate_userid(userid)
    return _call("GET", "/access/users/{}/token", (userid,), _list_of(Token.from_api))


def token_get(userid: str, name: str) -> Call[Token]:
    _tokenid(userid, name)
    return _call("GET", "/access/users/{}/token/{}", (userid, name), Token.from_api)


def token_create(userid: str, name: str, *, comment: str | None, expire: int | None, enable: bool) -> Call[TokenSecret]:
    _tokenid(userid, name)
    params = {"comment": comment, "expire": expire, "enable": None if enable else False}
    return _call("POST", "/access/users/{}/token/{}", (userid, name), TokenSecret.from_api, params)


def _regenerated_secret(data: Any) -> str | None:
    if isinstance(data, Mapping):
        secret = data.get("secret")
        return secret if isinstance(secret, str) else None
    return None


def token_update(
    userid: str,
    name: str,
    *,
    comment: str | None,
    enable: bool | None,
    expire: int | None,
    regenerate: bool,
    delete: Iterable[str] | None,
) -> Call[str | None]:
    _tokenid(userid, name)
    params = {
        "comment": comment,
        "enable": enable,
        "expire": expire,
        "regenerate": True if regenerate else None,
        "delete": _delete_list(delete, ("comment",), "token"),
    }
    return _call("PUT", "/access/users/{}/token/{}", (userid, name), _regenerated_secret, params)


def token_delete(userid: str, name: str) -> Call[None]:
    _tokenid(userid, name)
    return _call("DELETE", "/access/users/{}/token/{}", (userid, name), _none)


# --- ACL and permissions -------------------------------------------------------------------


def acl_list(path: str | None, exact: bool) -> Call[list[AclEntry]]:
    if path is not None:
        v.validate_acl_path(path)
    return _call("GET", "/access/acl", (), _list_of(AclEntry.from_api), {"path": path, "exact": exact or None})


def acl_update(*, path: str, role: str, auth_id: str, propagate: bool, delete: bool) -> Call[None]:
    v.validate_acl_path(path)
    v.validate_role(role)
    v.validate_authid(auth_id)
    # The parameter is `auth-id`; PBS has had no `userid` parameter here since 0.9.5.
    params = {
        "path": path,
        "role": role,
        "auth-id": auth_id,
        "propagate": propagate,
        "delete": True if delete else None,
    }
    return _call("PUT", "/access/acl", (), _none, params)


def _permissions(data: Any) -> dict[str, dict[str, bool]]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    result: dict[str, dict[str, bool]] = {}
    for path, privs in data.items():
        if not isinstance(privs, Mapping):
            raise TypeError(f"privileges for '{path}' should be an object")
        result[str(path)] = {str(name): bool(flag) for name, flag in privs.items()}
    return result


def permissions_get(auth_id: str | None, path: str | None) -> Call[dict[str, dict[str, bool]]]:
    if auth_id is not None:
        v.validate_authid(auth_id)
    if path is not None:
        v.validate_acl_path(path)
    return _call("GET", "/access/permissions", (), _permissions, {"auth-id": auth_id, "path": path})


# --- namespaces -----------------------------------------------------------------------------


def namespace_list(store: str, parent: str | None, max_depth: int | None) -> Call[list[Namespace]]:
    v.validate_store_name(store)
    if parent:
        v.validate_namespace(parent)
    if max_depth is not None and not 0 <= max_depth <= v.MAX_NAMESPACE_DEPTH:
        raise v.PbsValidationError(f"max_depth must be 0..{v.MAX_NAMESPACE_DEPTH}, not {max_depth}")
    params = {"parent": parent or None, "max-depth": max_depth}
    return _call("GET", "/admin/datastore/{}/namespace", (store,), _list_of(Namespace.from_api), params)


def namespace_create(store: str, name: str, parent: str | None) -> Call[str]:
    v.validate_store_name(store)
    v.validate_namespace_component(name)
    if parent:
        v.validate_namespace(parent)
        if parent.count("/") + 2 > v.MAX_NAMESPACE_DEPTH:
            raise v.PbsValidationError(
                f"namespace '{parent}/{name}' would be {parent.count('/') + 2} levels deep; "
                f"PBS allows at most {v.MAX_NAMESPACE_DEPTH}"
            )
    return _call("POST", "/admin/datastore/{}/namespace", (store,), _string, {"name": name, "parent": parent or None})


def _namespace_delete_result(data: Any) -> dict[str, int]:
    """PBS >= 3.2.11 answers removed-groups/protected-snapshots/removed-snapshots; older
    versions answer null (-> {}). Keys are returned in snake_case."""
    if not isinstance(data, Mapping):
        return {}
    return {str(key).replace("-", "_"): int(value) for key, value in data.items() if isinstance(value, int)}


def namespace_delete(
    store: str, ns: str, *, delete_groups: bool, error_on_protected: bool | None
) -> Call[dict[str, int]]:
    v.validate_store_name(store)
    v.validate_namespace(ns, allow_root=False)
    params = {
        "ns": ns,
        "delete-groups": True if delete_groups else None,
        "error-on-protected": error_on_protected,
    }
    return _call("DELETE", "/admin/datastore/{}/namespace", (store,), _namespace_delete_result, params)


# --- prune jobs -------------------------------------------------------------------------------

_PRUNE_UPDATABLE = {
    "store": "store",
    "schedule": "schedule",
    "ns": "ns",
    "max_depth": "max-depth",
    "keep_last": "keep-last",
    "keep_hourly": "keep-hourly",
    "keep_daily": "keep-daily",
    "keep_weekly": "keep-weekly",
    "keep_monthly": "keep-monthly",
    "keep_yearly": "keep-yearly",
    "comment": "comment",
    "disable": "disable",
}
_PRUNE_DELETABLE = (
    "comment", "disable", "ns", "max-depth", "keep-last", "keep-hourly", "keep-daily",
    "keep-weekly", "keep-monthly", "keep-yearly",
)  # fmt: skip


def _check_prune_fields(fields: Mapping[str, Any]) -> None:
    if fields.get("store") is not None:
        v.validate_store_name(fields["store"])
    if fields.get("schedule") is not None:
        v.validate_calendar_event(fields["schedule"])
    if fields.get("ns"):
        v.validate_namespace(fields["ns"])
    max_depth = fields.get("max_depth")
    if max_depth is not None and not 0 <= max_depth <= v.MAX_NAMESPACE_DEPTH:
        raise v.PbsValidationError(f"max_depth must be 0..{v.MAX_NAMESPACE_DEPTH}, not {max_depth}")
    for name in _PRUNE_UPDATABLE:
        if name.startswith("keep_") and fields.get(name) is not None and fields[name] < 1:
            raise v.PbsValidationError(f"{name} must be at least 1 (leave it unset, or delete it, to not limit by it)")


def prune_job_list() -> Call[list[PruneJob]]:
    return _call("GET", "/config/prune", (), _list_of(PruneJob.from_api))


def prune_job_status_list(store: str | None) -> Call[list[PruneJobStatus]]:
    if store is not None:
        v.validate_store_name(store)
    return _call("GET", "/admin/prune", (), _list_of(PruneJobStatus.from_api), {"store": store})


def prune_job_get(job_id: str) -> Call[PruneJob]:
    v.validate_job_id(job_id)
    return _call("GET", "/config/prune/{}", (job_id,), PruneJob.from_api)


def prune_job_create(job: PruneJob) -> Call[None]:
    v.validate_job_id(job.id)
    _check_prune_fields({name: getattr(job, name) for name in _PRUNE_UPDATABLE})
    return _call("POST", "/config/prune", (), _none, job.to_api())


def prune_job_update(job_id: str, *, delete: Iterable[str] | None, fields: Mapping[str, Any]) -> Call[None]:
    v.validate_job_id(job_id)
    unknown = sorted(set(fields) - set(_PRUNE_UPDATABLE))
    if unknown:
        raise TypeError(
            f"prune_job_update() got unknown field(s) {', '.join(unknown)}; known: {', '.join(_PRUNE_UPDATABLE)}"
        )
    _check_prune_fields(fields)
    params: dict[str, Any] = {_PRUNE_UPDATABLE[name]: value for name, value in fields.items()}
    params["delete"] = _delete_list(delete, _PRUNE_DELETABLE, "prune job")
    return _call("PUT", "/config/prune/{}", (job_id,), _none, params)


def prune_job_delete(job_id: str) -> Call[None]:
    v.validate_job_id(job_id)
    return _call("DELETE", "/config/prune/{}", (job_id,), _none)


# --- datastores, groups, snapshots, usage ---------------------------------------------------


def datastore_list() -> Call[list[DatastoreListItem]]:
    return _call("GET", "/admin/datastore", (), _list_of(DatastoreListItem.from_api))


def datastore_status(store: str, verbose: bool) -> Call[DatastoreStatus]:
    # Only `verbose`: PBS refuses `ns` here (totals are datastore-wide anyway).
    v.validate_store_name(store)
    return _call("GET", "/admin/datastore/{}/status", (store,), DatastoreStatus.from_api, {"verbose": verbose or None})


_BACKUP_TYPES = ("vm", "ct", "host")


def group_list(store: str, ns: str | None) -> Call[list[BackupGroup]]:
    v.validate_store_name(store)
    if ns:
        v.validate_namespace(ns)
    return _call("GET", "/admin/datastore/{}/groups", (store,), _list_of(BackupGroup.from_api), {"ns": ns or None})


def snapshot_list(store: str, ns: str | None, backup_type: str | None, backup_id: str | None) -> Call[list[Snapshot]]:
    v.validate_store_name(store)
    if ns:
        v.validate_namespace(ns)
    if backup_type is not None and backup_type not in _BACKUP_TYPES:
        raise v.PbsValidationError(f"backup type '{backup_type}' is not one of {', '.join(_BACKUP_TYPES)}")
    params = {"ns": ns or None, "backup-type": backup_type, "backup-id": backup_id}
    return _call("GET", "/admin/datastore/{}/snapshots", (store,), _list_of(Snapshot.from_api), params)


def gc_status(store: str) -> Call[GcStatus]:
    v.validate_store_name(store)
    return _call("GET", "/admin/datastore/{}/gc", (store,), GcStatus.from_api)


def datastore_usage() -> Call[list[DatastoreUsage]]:
    return _call("GET", "/status/datastore-usage", (), _list_of(DatastoreUsage.from_api))


def certificate_info(node: str) -> Call[list[CertificateInfo]]:
    if not node or not all(ch.isalnum() or ch == "-" for ch in node):
        raise v.PbsValidationError(f"node name '{node}' must be letters, digits and '-' (e.g. 'localhost')")
    return _call("GET", "/nodes/{}/certificates/info", (node,), _list_of(CertificateInfo.from_api))


# --- remotes ------------------------------------------------------------------------------------

_REMOTE_DELETABLE = ("comment", "fingerprint", "port", "use-node-proxy")


def remote_list() -> Call[list[Remote]]:
    return _call("GET", "/config/remote", (), _list_of(Remote.from_api))


def remote_get(name: str) -> Call[Remote]:
    v.validate_remote_name(name)
    return _call("GET", "/config/remote/{}", (name,), Remote.from_api)


def _check_port(port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise v.PbsValidationError(f"port {port} is outside 1..65535")


def remote_create(
    name: str,
    *,
    host: str,
    auth_id: str,
    password: str,
    port: int | None,
    fingerprint: str | None,
    comment: str | None,
    use_node_proxy: bool,
) -> Call[None]:
    v.validate_remote_name(name)
    v.validate_authid(auth_id)
    _check_port(port)
    if not password:
        raise v.PbsValidationError("a remote needs a password or token secret")
    params = {
        "name": name,
        "host": host,
        "auth-id": auth_id,
        "password": password,
        "port": port,
        "fingerprint": v.validate_fingerprint(fingerprint) if fingerprint else None,
        "comment": comment,
        "use-node-proxy": True if use_node_proxy else None,
    }
    return _call("POST", "/config/remote", (), _none, params, secrets=(password,))


def remote_update(
    name: str,
    *,
    host: str | None,
    auth_id: str | None,
    password: str | None,
    port: int | None,
    fingerprint: str | None,
    comment: str | None,
    use_node_proxy: bool | None,
    delete: Iterable[str] | None,
) -> Call[None]:
    v.validate_remote_name(name)
    if auth_id is not None:
        v.validate_authid(auth_id)
    _check_port(port)
    params = {
        "host": host,
        "auth-id": auth_id,
        "password": password,
        "port": port,
        "fingerprint": v.validate_fingerprint(fingerprint) if fingerprint else None,
        "comment": comment,
        "use-node-proxy": use_node_proxy,
        "delete": _delete_list(delete, _REMOTE_DELETABLE, "remote"),
    }
    return _call("PUT", "/config/remote/{}", (name,), _none, params, secrets=(password,) if password else ())


def remote_delete(name: str) -> Call[None]:
    v.validate_remote_name(name)
    return _call("DELETE", "/config/remote/{}", (name,), _none)


# --- sync jobs ---------------------------------------------------------------------------------


def _sync_params(fields: Mapping[str, Any], what: str) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(SYNC_JOB_FIELDS))
    if unknown:
        raise TypeError(f"{what} got unknown field(s) {', '.join(unknown)}; known: {', '.join(SYNC_JOB_FIELDS)}")
    if fields.get("store") is not None:
        v.validate_store_name(fields["store"])
    if fields.get("remote") is not None:
        v.validate_remote_name(fields["remote"])
    if fields.get("schedule") is not None:
        v.validate_calendar_event(fields["schedule"])
    for key in ("ns", "remote_ns"):
        if fields.get(key):
            v.validate_namespace(fields[key])
    if fields.get("owner") is not None:
        v.validate_authid(fields["owner"])
    params: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, tuple):
            value = list(value)
        params[SYNC_JOB_FIELDS[name]] = value
    return params


def sync_job_list(sync_direction: str | None) -> Call[list[SyncJob]]:
    if sync_direction is not None and sync_direction not in ("pull", "push", "all"):
        raise v.PbsValidationError(f"sync direction '{sync_direction}' is not pull, push or all")
    return _call("GET", "/config/sync", (), _list_of(SyncJob.from_api), {"sync-direction": sync_direction})


def sync_job_status_list(store: str | None, sync_direction: str | None) -> Call[list[SyncJobStatus]]:
    if store is not None:
        v.validate_store_name(store)
    if sync_direction is not None and sync_direction not in ("pull", "push", "all"):
        raise v.PbsValidationError(f"sync direction '{sync_direction}' is not pull, push or all")
    params = {"store": store, "sync-direction": sync_direction}
    return _call("GET", "/admin/sync", (), _list_of(SyncJobStatus.from_api), params)


def sync_job_get(job_id: str) -> Call[SyncJob]:
    v.validate_job_id(job_id)
    return _call("GET", "/config/sync/{}", (job_id,), SyncJob.from_api)


def sync_job_create(job: SyncJob, options: Mapping[str, Any]) -> Call[None]:
    v.validate_job_id(job.id)
    base = {
        "store": job.store,
        "remote": job.remote,
        "schedule": job.schedule,
        "ns": job.ns,
        "remote_ns": job.remote_ns,
        "owner": job.owner,
    }
    _sync_params({key: value for key, value in base.items() if value is not None}, "sync_job_create()")
    params = job.to_api()
    params.update(_sync_params(options, "sync_job_create()"))
    return _call("POST", "/config/sync", (), _none, params)


_SYNC_DELETABLE = tuple(
    name for name in SYNC_JOB_FIELDS.values() if name not in ("store", "remote-store", "resync-corrupt")
)


def sync_job_update(job_id: str, *, delete: Iterable[str] | None, fields: Mapping[str, Any]) -> Call[None]:
    v.validate_job_id(job_id)
    params = _sync_params(fields, "sync_job_update()")
    params["delete"] = _delete_list(delete, _SYNC_DELETABLE, "sync job")
    return _call("PUT", "/config/sync/{}", (job_id,), _none, params)


def sync_job_delete(job_id: str) -> Call[None]:
    v.validate_job_id(job_id)
    return _call("DELETE", "/config/sync/{}", (job_id,), _none)


def sync_job_run(job_id: str) -> Call[str | None]:
    """Returns the task UPID (the published schema says null; PBS sends the UPID)."""
    v.validate_job_id(job_id)
    return _call("POST", "/admin/sync/{}/run", (job_id,), _optional_string)
