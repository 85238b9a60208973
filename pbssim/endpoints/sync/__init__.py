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
simulator's in-process transport instead of a socket (same requests, same checks)."""

from __future__ import annotations

from pbssim.endpoints.sync.forms import (
    BACKUP_TYPES,
    BYTE_SIZE,
    DNS_NAME_OR_IP_RE,
    EXTENSION,
    FINGERPRINT,
    GROUP_FILTER,
    HOST,
    JOB_DELETABLE,
    PORT,
    REMOTE_DELETABLE,
    REMOTE_ID,
    REMOTE_PASSWORD,
    GroupFilter,
    JobState,
    SyncExtension,
    apply_filters,
    extension,
    format_byte_size,
    init_state,
    link_remote,
    next_event,
    parse_byte_size,
    parse_group_filter,
    snapshot_state,
    task_log,
)
from pbssim.endpoints.sync.jobs import (
    check_modify_access,
    check_read_access,
    create_sync_job,
    delete_sync_job,
    escape_unit,
    job_acl_path,
    list_sync_jobs,
    list_sync_status,
    read_sync_job,
    run_sync_job,
    update_sync_job,
)
from pbssim.endpoints.sync.pull import (
    PullFailed,
    pull,
)
from pbssim.endpoints.sync.remotes import (
    PullError,
    RemoteClient,
    create_remote,
    delete_remote,
    list_remotes,
    read_remote,
    scan_datastores,
    scan_groups,
    scan_namespaces,
    update_remote,
)
from pbssim.endpoints.sync.routes import (
    register,
)

__all__ = [
    "BACKUP_TYPES",
    "BYTE_SIZE",
    "DNS_NAME_OR_IP_RE",
    "EXTENSION",
    "FINGERPRINT",
    "GROUP_FILTER",
    "HOST",
    "JOB_DELETABLE",
    "PORT",
    "REMOTE_DELETABLE",
    "REMOTE_ID",
    "REMOTE_PASSWORD",
    "GroupFilter",
    "JobState",
    "PullError",
    "PullFailed",
    "RemoteClient",
    "SyncExtension",
    "apply_filters",
    "check_modify_access",
    "check_read_access",
    "create_remote",
    "create_sync_job",
    "delete_remote",
    "delete_sync_job",
    "escape_unit",
    "extension",
    "format_byte_size",
    "init_state",
    "job_acl_path",
    "link_remote",
    "list_remotes",
    "list_sync_jobs",
    "list_sync_status",
    "next_event",
    "parse_byte_size",
    "parse_group_filter",
    "pull",
    "read_remote",
    "read_sync_job",
    "register",
    "run_sync_job",
    "scan_datastores",
    "scan_groups",
    "scan_namespaces",
    "snapshot_state",
    "task_log",
    "update_remote",
    "update_sync_job",
]
