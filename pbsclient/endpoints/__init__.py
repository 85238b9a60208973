"""What each client method sends and how its answer is read, independent of sync/async.

Every function here validates its arguments (so bad input is refused before
any PBS call), then returns a ``Call``: method, path, parameters and the
parser for ``data``. ``PbsClient`` and ``AsyncPbsClient`` execute the same
``Call`` objects, so the two clients cannot drift apart.

Parameters use PBS's names (kebab case, except ``include_tokens`` and
``ugid_type`` which PBS spells with an underscore). Path parameters are
percent-encoded (user ids contain '@', token ids '!')."""

from __future__ import annotations

from pbsclient.endpoints.access import (
    acl_list,
    acl_update,
    permissions_get,
    ping,
    token_create,
    token_delete,
    token_get,
    token_list,
    token_update,
    user_create,
    user_delete,
    user_get,
    user_list,
    user_update,
    version,
)
from pbsclient.endpoints.base import (
    Call,
    Method,
)
from pbsclient.endpoints.datastore import (
    certificate_info,
    datastore_list,
    datastore_status,
    datastore_usage,
    gc_status,
    group_list,
    snapshot_list,
)
from pbsclient.endpoints.namespaces import (
    namespace_create,
    namespace_delete,
    namespace_list,
    prune_job_create,
    prune_job_delete,
    prune_job_get,
    prune_job_list,
    prune_job_status_list,
    prune_job_update,
)
from pbsclient.endpoints.remotes import (
    remote_create,
    remote_delete,
    remote_get,
    remote_list,
    remote_update,
    sync_job_create,
    sync_job_delete,
    sync_job_get,
    sync_job_list,
    sync_job_run,
    sync_job_status_list,
    sync_job_update,
)

__all__ = [
    "Call",
    "Method",
    "acl_list",
    "acl_update",
    "certificate_info",
    "datastore_list",
    "datastore_status",
    "datastore_usage",
    "gc_status",
    "group_list",
    "namespace_create",
    "namespace_delete",
    "namespace_list",
    "permissions_get",
    "ping",
    "prune_job_create",
    "prune_job_delete",
    "prune_job_get",
    "prune_job_list",
    "prune_job_status_list",
    "prune_job_update",
    "remote_create",
    "remote_delete",
    "remote_get",
    "remote_list",
    "remote_update",
    "snapshot_list",
    "sync_job_create",
    "sync_job_delete",
    "sync_job_get",
    "sync_job_list",
    "sync_job_run",
    "sync_job_status_list",
    "sync_job_update",
    "token_create",
    "token_delete",
    "token_get",
    "token_list",
    "token_update",
    "user_create",
    "user_delete",
    "user_get",
    "user_list",
    "user_update",
    "version",
]
