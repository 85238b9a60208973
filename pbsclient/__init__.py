"""Typed client for the Proxmox Backup Server REST API (PBS 4.2).

    from pbsclient import PbsClient, AsyncPbsClient, RetryPolicy

    with PbsClient(base_url="https://pbs1:8007", token_id="root@pam!portal",
                   token_secret=secret, fingerprint="aa:bb:...") as client:
        client.namespace_create("store1", "acme", parent="clients")

No Django imports here: the package only needs httpx.
"""

from __future__ import annotations

from pbsclient import errors, models, validation
from pbsclient.client import AsyncPbsClient, ClientStats, PbsClient
from pbsclient.retry import RetryPolicy

__all__ = [
    "AsyncPbsClient",
    "ClientStats",
    "PbsClient",
    "RetryPolicy",
    "errors",
    "models",
    "validation",
]
