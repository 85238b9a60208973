"""The remote and sync routes and their parameter schemas."""

from __future__ import annotations

from pbssim import acl
from pbssim.endpoints.sync.forms import (
    _JOB_OPTIONAL,
    FINGERPRINT,
    HOST,
    JOB_DELETABLE,
    PORT,
    REMOTE_DELETABLE,
    REMOTE_ID,
    REMOTE_PASSWORD,
    link_remote,
    next_event,
    task_log,
)
from pbssim.endpoints.sync.jobs import (
    create_sync_job,
    delete_sync_job,
    list_sync_jobs,
    list_sync_status,
    read_sync_job,
    run_sync_job,
    update_sync_job,
)
from pbssim.endpoints.sync.remotes import (
    create_remote,
    delete_remote,
    list_remotes,
    read_remote,
    scan_datastores,
    scan_groups,
    scan_namespaces,
    update_remote,
)
from pbssim.params import (
    AUTHID,
    COMMENT,
    DATASTORE,
    DIGEST,
    JOB_ID,
    NAMESPACE,
    array,
    boolean,
    string,
)
from pbssim.router import ANYBODY, Privilege, Router


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
