"""PBS responses, typed at the boundary.

Each model is a frozen dataclass with snake_case fields, built from PBS's
kebab-case JSON by ``from_api``. Parsing is tolerant: fields PBS leaves out
get their documented default (PBS omits unset fields, e.g. a missing
``enable`` means enabled), and fields this client does not know yet are
kept in ``extra`` (excluded from equality) instead of failing.

A response that lacks a field PBS always sends raises ``KeyError`` /
``TypeError`` / ``ValueError``; the client turns that into a ``PbsHttpError``."""

from __future__ import annotations

from pbsclient.models.access import (
    AclEntry,
    Token,
    TokenSecret,
    User,
    VersionInfo,
)
from pbsclient.models.base import (
    Json,
)
from pbsclient.models.datastore import (
    BackupCounts,
    BackupGroup,
    DatastoreListItem,
    DatastoreStatus,
    DatastoreUsage,
    GcStatus,
    Snapshot,
    SnapshotFile,
)
from pbsclient.models.namespaces import (
    Namespace,
    PruneJob,
)
from pbsclient.models.remotes import (
    SYNC_JOB_FIELDS,
    CertificateInfo,
    PruneJobStatus,
    Remote,
    SyncJob,
    SyncJobStatus,
)

__all__ = [
    "SYNC_JOB_FIELDS",
    "AclEntry",
    "BackupCounts",
    "BackupGroup",
    "CertificateInfo",
    "DatastoreListItem",
    "DatastoreStatus",
    "DatastoreUsage",
    "GcStatus",
    "Json",
    "Namespace",
    "PruneJob",
    "PruneJobStatus",
    "Remote",
    "Snapshot",
    "SnapshotFile",
    "SyncJob",
    "SyncJobStatus",
    "Token",
    "TokenSecret",
    "User",
    "VersionInfo",
]
