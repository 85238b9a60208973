"""The PBS clients: ``PbsClient`` (sync, one ``httpx.Client``) and ``AsyncPbsClient``
(one ``httpx.AsyncClient``), with the same constructor and method names.

A call goes: endpoint function (validates, builds a ``Call``) -> ``_run``
(one or more HTTP attempts under the retry policy) -> ``_Core.finish``
(unwrap ``{"data": ...}``, map errors, parse into a model). Everything that
does not depend on sync/async lives in ``_Core``."""

from __future__ import annotations

from pbsclient.client.aio import (
    AsyncPbsClient,
)
from pbsclient.client.core import (
    API_PREFIX,
    USER_AGENT,
    ClientStats,
    T,
    logger,
)
from pbsclient.client.sync import (
    PbsClient,
)

__all__ = [
    "API_PREFIX",
    "USER_AGENT",
    "AsyncPbsClient",
    "ClientStats",
    "PbsClient",
    "T",
    "logger",
]
