"""Shared support for the pbsclient tests: a recording fake PBS on httpx.MockTransport,
and runners that drive the sync and the async client the same way."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pbsclient import AsyncPbsClient, PbsClient, RetryPolicy

BASE_URL = "https://pbs.test:8007"
TOKEN_ID = "root@pam!portal"
SECRET = "5e2c7a0e-1111-4222-8333-944445555666"
JSON_CT = {"Content-Type": "application/json;charset=UTF-8"}


def pbs_error(status: int, text: str) -> httpx.Response:
    """An error exactly as PBS sends it on /api2/json: plain text with a JSON content type."""
    return httpx.Response(status, content=text.encode(), headers=JSON_CT)


def pbs_data(data: Any, status: int = 200, **top: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps({"data": data, **top}).encode(), headers=JSON_CT)


@dataclass
class FakePbs:
    """Answers from a queue of responses (or a function) and records every request."""

    responder: Callable[[httpx.Request], httpx.Response] | None = None
    queue: list[httpx.Response | Exception] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.queue:
            item = self.queue.pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        if self.responder is not None:
            return self.responder(request)
        return pbs_data(None)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def make_client(kind: str, fake: FakePbs, **kwargs: Any) -> PbsClient | AsyncPbsClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=1))
    common = {"base_url": BASE_URL, "token_id": TOKEN_ID, "token_secret": SECRET, "host_label": "pbs1"}
    common.update(kwargs)
    if kind == "sync":
        return PbsClient(transport=fake.transport(), **common)
    return AsyncPbsClient(transport=fake.transport(), **common)


def invoke(client: PbsClient | AsyncPbsClient, action: Callable[[Any], Any]) -> Any:
    """Run ``action(client)``; for the async client, await it on a fresh event loop."""
    result = action(client)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    return result


def body_of(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content) if request.content else {}


def query_of(request: httpx.Request) -> list[tuple[str, str]]:
    return sorted(request.url.params.multi_items())
