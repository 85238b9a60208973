"""The synchronous PBS client (one httpx.Client)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import httpx

from pbsclient import endpoints as ep
from pbsclient.client.core import T, _Api, _Core
from pbsclient.errors import (
    PbsError,
)
from pbsclient.models import (
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
from pbsclient.retry import RetryPolicy


class PbsClient(_Api):
    """Synchronous PBS client. Thread-safe (httpx.Client is)."""

    def __init__(
        self,
        *,
        base_url: str,
        token_id: str,
        token_secret: str,
        fingerprint: str | None = None,
        ca_pem: str | None = None,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 8,
        host_label: str | None = None,
    ) -> None:
        self._core = _Core(
            base_url=base_url,
            token_id=token_id,
            token_secret=token_secret,
            fingerprint=fingerprint,
            ca_pem=ca_pem,
            timeout=timeout,
            retry=retry,
            max_connections=max_connections,
            host_label=host_label,
            build_tls=transport is None,
        )
        self._http = httpx.Client(transport=transport, **self._core.client_kwargs())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def closed(self) -> bool:
        """True once the client is closed: every further request raises."""
        return self._http.is_closed

    def _run(self, call: ep.Call[T]) -> T:
        core = self._core
        core.count(calls=1)
        request = core.request_kwargs(call)
        attempt = 0
        while True:
            attempt += 1
            core.count(requests=1)
            started = time.perf_counter()
            status: int | None = None
            cause: BaseException | None = None
            try:
                response = self._http.request(**request)
            except httpx.TransportError as exc:
                error: PbsError = core.transport_error(call, exc)
                cause = exc
            else:
                status = response.status_code
                try:
                    result = core.finish(call, response)
                except PbsError as exc:
                    error = exc
                else:
                    core.log_attempt(call, status, started, None)
                    return result
            core.log_attempt(call, status, started, error)
            delay = core.next_delay(call, error, attempt)
            if delay is None:
                core.count(errors=1)
                raise error from cause
            core.count(retries=1)
            time.sleep(delay)

    # --- version, ping ---
    def version(self) -> VersionInfo:
        return self._run(ep.version())

    def ping(self) -> bool:
        return self._run(ep.ping())

    # --- users ---
    def user_list(self, include_tokens: bool = False) -> list[User]:
        return self._run(ep.user_list(include_tokens))

    def user_get(self, userid: str) -> User:
        return self._run(ep.user_get(userid))

    def user_create(
        self,
        *,
        userid: str,
        comment: str | None = None,
        enable: bool = True,
        expire: int | None = None,
        email: str | None = None,
        firstname: str | None = None,
        lastname: str | None = None,
        password: str | None = None,
    ) -> None:
        return self._run(
            ep.user_create(
                userid=userid, comment=comment, enable=enable, expire=expire, email=email,
                firstname=firstname, lastname=lastname, password=password,
            )
        )  # fmt: skip

    def user_update(
        self,
        userid: str,
        *,
        comment: str | None = None,
        enable: bool | None = None,
        expire: int | None = None,
        email: str | None = None,
        firstname: str | None = None,
        lastname: str | None = None,
        delete: Iterable[str] | None = None,
    ) -> None:
        return self._run(
            ep.user_update(
                userid, comment=comment, enable=enable, expire=expire, email=email,
                firstname=firstname, lastname=lastname, delete=delete,
            )
        )  # fmt: skip

    def user_delete(self, userid: str) -> None:
        return self._run(ep.user_delete(userid))

    # --- tokens ---
    def token_list(self, userid: str) -> list[Token]:
        return self._run(ep.token_list(userid))

    def token_get(self, userid: str, name: str) -> Token:
        return self._run(ep.token_get(userid, name))

    def token_create(
        self, userid: str, name: str, *, comment: str | None = None, expire: int | None = None, enable: bool = True
    ) -> TokenSecret:
        return self._run(ep.token_create(userid, name, comment=comment, expire=expire, enable=enable))

    def token_update(
        self,
        userid: str,
        name: str,
        *,
        comment: str | None = None,
        enable: bool | None = None,
        expire: int | None = None,
        regenerate: bool = False,
        delete: Iterable[str] | None = None,
    ) -> str | None:
        return self._run(
            ep.token_update(
                userid, name, comment=comment, enable=enable, expire=expire, regenerate=regenerate, delete=delete
            )
        )

    def token_delete(self, userid: str, name: str) -> None:
        return self._run(ep.token_delete(userid, name))

    # --- ACL, permissions ---
    def acl_list(self, path: str | None = None, exact: bool = False) -> list[AclEntry]:
        return self._run(ep.acl_list(path, exact))

    def acl_update(self, *, path: str, role: str, auth_id: str, propagate: bool = True, delete: bool = False) -> None:
        return self._run(ep.acl_update(path=path, role=role, auth_id=auth_id, propagate=propagate, delete=delete))

    def permissions_get(self, auth_id: str | None = None, path: str | None = None) -> dict[str, dict[str, bool]]:
        return self._run(ep.permissions_get(auth_id, path))

    # --- namespaces ---
    def namespace_list(self, store: str, parent: str | None = None, max_depth: int | None = None) -> list[Namespace]:
        return self._run(ep.namespace_list(store, parent, max_depth))

    def namespace_create(self, store: str, name: str, parent: str | None = None) -> str:
        return self._run(ep.namespace_create(store, name, parent))

    def namespace_delete(
        self, store: str, ns: str, *, delete_groups: bool = False, error_on_protected: bool | None = None
    ) -> dict[str, int]:
        return self._run(
            ep.namespace_delete(store, ns, delete_groups=delete_groups, error_on_protected=error_on_protected)
        )

    # --- prune jobs ---
    def prune_job_list(self) -> list[PruneJob]:
        return self._run(ep.prune_job_list())

    def prune_job_get(self, id: str) -> PruneJob:
        return self._run(ep.prune_job_get(id))

    def prune_job_status_list(self, store: str | None = None) -> list[PruneJobStatus]:
        """``GET /admin/prune``: jobs with next-run and last-run state."""
        return self._run(ep.prune_job_status_list(store))

    def prune_job_create(self, job: PruneJob) -> None:
        return self._run(ep.prune_job_create(job))

    def prune_job_update(self, id: str, *, delete: Iterable[str] | None = None, **fields: Any) -> None:
        return self._run(ep.prune_job_update(id, delete=delete, fields=fields))

    def prune_job_delete(self, id: str) -> None:
        return self._run(ep.prune_job_delete(id))

    # --- datastores, groups, snapshots, usage, certificates ---
    def datastore_list(self) -> list[DatastoreListItem]:
        return self._run(ep.datastore_list())

    def datastore_status(self, store: str, verbose: bool = False) -> DatastoreStatus:
        return self._run(ep.datastore_status(store, verbose))

    def group_list(self, store: str, ns: str | None = None) -> list[BackupGroup]:
        return self._run(ep.group_list(store, ns))

    def snapshot_list(
        self, store: str, ns: str | None = None, backup_type: str | None = None, backup_id: str | None = None
    ) -> list[Snapshot]:
        return self._run(ep.snapshot_list(store, ns, backup_type, backup_id))

    def gc_status(self, store: str) -> GcStatus:
        return self._run(ep.gc_status(store))

    def datastore_usage(self) -> list[DatastoreUsage]:
        return self._run(ep.datastore_usage())

    def certificate_info(self, node: str = "localhost") -> list[CertificateInfo]:
        return self._run(ep.certificate_info(node))

    # --- remotes ---
    def remote_list(self) -> list[Remote]:
        return self._run(ep.remote_list())

    def remote_get(self, name: str) -> Remote:
        return self._run(ep.remote_get(name))

    def remote_create(
        self,
        name: str,
        *,
        host: str,
        auth_id: str,
        password: str,
        port: int | None = None,
        fingerprint: str | None = None,
        comment: str | None = None,
        use_node_proxy: bool = False,
    ) -> None:
        return self._run(
            ep.remote_create(
                name, host=host, auth_id=auth_id, password=password, port=port,
                fingerprint=fingerprint, comment=comment, use_node_proxy=use_node_proxy,
            )
        )  # fmt: skip

    def remote_update(
        self,
        name: str,
        *,
        host: str | None = None,
        auth_id: str | None = None,
        password: str | None = None,
        port: int | None = None,
        fingerprint: str | None = None,
        comment: str | None = None,
        use_node_proxy: bool | None = None,
        delete: Iterable[str] | None = None,
    ) -> None:
        return self._run(
            ep.remote_update(
                name, host=host, auth_id=auth_id, password=password, port=port, fingerprint=fingerprint,
                comment=comment, use_node_proxy=use_node_proxy, delete=delete,
            )
        )  # fmt: skip

    def remote_delete(self, name: str) -> None:
        return self._run(ep.remote_delete(name))

    # --- sync jobs ---
    def sync_job_list(self, sync_direction: str | None = None) -> list[SyncJob]:
        return self._run(ep.sync_job_list(sync_direction))

    def sync_job_get(self, id: str) -> SyncJob:
        return self._run(ep.sync_job_get(id))

    def sync_job_status_list(self, store: str | None = None, sync_direction: str | None = "all") -> list[SyncJobStatus]:
        """``GET /admin/sync``: jobs with next-run and last-run state (all directions by default)."""
        return self._run(ep.sync_job_status_list(store, sync_direction))

    def sync_job_create(self, job: SyncJob, **options: Any) -> None:
        return self._run(ep.sync_job_create(job, options))

    def sync_job_update(self, id: str, *, delete: Iterable[str] | None = None, **fields: Any) -> None:
        return self._run(ep.sync_job_update(id, delete=delete, fields=fields))

    def sync_job_delete(self, id: str) -> None:
        return self._run(ep.sync_job_delete(id))

    def sync_job_run(self, id: str) -> str | None:
        return self._run(ep.sync_job_run(id))
