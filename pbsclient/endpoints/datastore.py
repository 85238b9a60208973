"""Endpoints: datastores, groups, snapshots, usage, garbage collection."""

from __future__ import annotations

from pbsclient import validation as v
from pbsclient.endpoints.base import Call, _call, _list_of
from pbsclient.models import (
    BackupGroup,
    CertificateInfo,
    DatastoreListItem,
    DatastoreStatus,
    DatastoreUsage,
    GcStatus,
    Snapshot,
)


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
