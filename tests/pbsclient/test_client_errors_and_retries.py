"""Error mapping through the client, and the retry policy counted attempt by attempt."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from pbsclient import RetryPolicy
from pbsclient.errors import (
    AlreadyExists,
    InvalidParameter,
    NotFound,
    PbsConnectionError,
    PbsError,
    PbsHttpError,
    PbsTimeout,
    ServerError,
)
from tests.pbsclient.support import FakePbs, invoke, make_client, pbs_data, pbs_error
from tests.pbsclient.test_errors import REFERENCE_ROWS


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(("status", "body", "expected"), REFERENCE_ROWS)
def test_client_raises_the_mapped_error_with_method_path_and_message(
    kind: str, status: int, body: str, expected: type[PbsError]
) -> None:
    fake = FakePbs(responder=lambda request: pbs_error(status, body))
    client = make_client(kind, fake)
    with pytest.raises(expected) as info:
        invoke(client, lambda c: c.user_get("acme@pbs"))
    exc = info.value
    assert type(exc) is expected
    assert (exc.status, exc.method, exc.path, exc.host) == (status, "GET", "/access/users/acme@pbs", "pbs1")
    assert exc.message == (body or f"HTTP {status} without a message")
    assert client.stats.errors == 1


def test_absent_checks_catch_not_found() -> None:
    """The documented "exists?" pattern: GET, and a 400 "no such ..." means absent."""
    fake = FakePbs(queue=[pbs_error(400, "no such prune 't-acme'")])
    client = make_client("sync", fake)
    with pytest.raises(NotFound) as info:
        client.prune_job_get("t-acme")
    assert info.value.status == 400


def test_duplicates_are_already_exists_never_409() -> None:
    fake = FakePbs(queue=[pbs_error(400, "parameter verification failed - 'id': job 't-acme' already exists.")])
    from pbsclient.models import PruneJob

    with pytest.raises(AlreadyExists):
        make_client("sync", fake).prune_job_create(PruneJob(id="t-acme", store="store1", schedule="daily"))


def test_userid_parameter_on_acl_is_invalid_parameter_with_reason() -> None:
    body = "parameter verification failed - 'userid': schema does not allow additional properties."
    fake = FakePbs(queue=[pbs_error(400, body)])
    with pytest.raises(InvalidParameter) as info:
        make_client("sync", fake).acl_update(path="/", role="Audit", auth_id="acme@pbs")
    assert info.value.errors == {"userid": "schema does not allow additional properties."}


# --- retries -----------------------------------------------------------------------------


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff waits instead of sleeping (sync and async)."""
    waits: list[float] = []

    async def fake_async_sleep(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr("pbsclient.client.sync.time.sleep", waits.append)
    monkeypatch.setattr("pbsclient.client.aio.asyncio.sleep", fake_async_sleep)
    return waits


def _policy(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, base_delay=0.5, max_delay=1.0)


def _connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_get_is_retried_after_5xx_until_it_succeeds(kind: str, no_sleep: list[float]) -> None:
    fake = FakePbs(queue=[pbs_error(503, "busy"), pbs_error(500, "oops")], responder=lambda r: pbs_data({"pong": True}))
    client = make_client(kind, fake, retry=_policy(3))
    assert invoke(client, lambda c: c.ping()) is True
    assert len(fake.requests) == 3
    assert (client.stats.calls, client.stats.requests, client.stats.retries, client.stats.errors) == (1, 3, 2, 0)
    assert len(no_sleep) == 2
    assert 0 <= no_sleep[0] <= 0.5
    assert 0 <= no_sleep[1] <= 1.0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_retries_are_bounded_by_max_attempts(kind: str, no_sleep: list[float]) -> None:
    fake = FakePbs(responder=lambda request: pbs_error(503, "down for maintenance"))
    client = make_client(kind, fake, retry=_policy(4))
    with pytest.raises(ServerError, match="down for maintenance"):
        invoke(client, lambda c: c.version())
    assert len(fake.requests) == 4
    assert client.stats.retries == 3
    assert client.stats.errors == 1


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_token_create_is_never_repeated_after_a_5xx(kind: str, no_sleep: list[float]) -> None:
    """Its secret would be lost: PBS may have created the token before failing."""
    fake = FakePbs(responder=lambda request: pbs_error(500, "oops"))
    client = make_client(kind, fake, retry=_policy(5))
    with pytest.raises(ServerError):
        invoke(client, lambda c: c.token_create("acme@pbs", "backup"))
    assert len(fake.requests) == 1
    assert no_sleep == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_request_that_never_left_is_retried_even_for_post(kind: str, no_sleep: list[float]) -> None:
    fake = FakePbs(
        queue=[_connect_error(), httpx.ConnectTimeout("connect timed out")],
        responder=lambda request: pbs_data({"tokenid": "acme@pbs!backup", "value": "s"}),
    )
    client = make_client(kind, fake, retry=_policy(3))
    created = invoke(client, lambda c: c.token_create("acme@pbs", "backup"))
    assert created.tokenid == "acme@pbs!backup"
    assert len(fake.requests) == 3


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_read_timeout_on_a_create_is_not_retried(kind: str, no_sleep: list[float]) -> None:
    fake = FakePbs(queue=[httpx.ReadTimeout("timed out")])
    client = make_client(kind, fake, retry=_policy(3))
    with pytest.raises(PbsTimeout) as info:
        invoke(client, lambda c: c.user_create(userid="acme@pbs"))
    assert info.value.request_sent is True
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("action", "what"),
    [
        (lambda c: c.acl_update(path="/datastore/store1/acme", role="DatastoreBackup", auth_id="acme@pbs"), "acl"),
        (lambda c: c.namespace_create("store1", "acme", parent="clients"), "namespace create"),
        (lambda c: c.prune_job_update("t-acme", keep_daily=3), "prune update"),
        (lambda c: c.user_update("acme@pbs", comment="x"), "user update"),
    ],
)
def test_idempotent_writes_are_retried_after_a_dropped_connection(
    action: Any, what: str, no_sleep: list[float]
) -> None:
    fake = FakePbs(
        queue=[httpx.RemoteProtocolError("Server disconnected without sending a response.")],
        responder=lambda r: pbs_data("clients/acme" if r.url.path.endswith("/namespace") else None),
    )
    client = make_client("sync", fake, retry=_policy(2))
    invoke(client, action)
    assert len(fake.requests) == 2, what


@pytest.mark.parametrize(
    "action",
    [
        lambda c: c.user_delete("acme@pbs"),
        lambda c: c.token_update("acme@pbs", "backup", regenerate=True),
        lambda c: c.sync_job_run("job1"),
        lambda c: c.prune_job_delete("t-acme"),
    ],
)
def test_non_idempotent_writes_are_not_retried_after_a_dropped_connection(action: Any, no_sleep: list[float]) -> None:
    fake = FakePbs(queue=[httpx.RemoteProtocolError("Server disconnected without sending a response.")])
    client = make_client("sync", fake, retry=_policy(3))
    with pytest.raises(PbsConnectionError):
        invoke(client, action)
    assert len(fake.requests) == 1


def test_4xx_answers_are_not_retried(no_sleep: list[float]) -> None:
    fake = FakePbs(responder=lambda request: pbs_error(400, "no such user 'acme@pbs'"))
    client = make_client("sync", fake, retry=_policy(5))
    with pytest.raises(NotFound):
        client.user_get("acme@pbs")
    assert len(fake.requests) == 1


def test_transport_failures_map_to_connection_errors_chained_to_the_cause(no_sleep: list[float]) -> None:
    fake = FakePbs(queue=[_connect_error()])
    with pytest.raises(PbsConnectionError) as info:
        make_client("sync", fake).version()
    assert info.value.request_sent is False
    assert info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "cannot connect to https://pbs.test:8007" in str(info.value)


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.25, max_delay=4.0)
    assert [policy.ceiling(n) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    rng = random.Random(7)
    draws = [policy.backoff(3, rng) for _ in range(2000)]
    assert all(0 <= d <= 1.0 for d in draws)
    assert min(draws) < 0.05
    assert max(draws) > 0.95
    assert policy.ceiling(10_000) == 4.0


def test_retry_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay=-1)
    assert RetryPolicy.never().max_attempts == 1


def test_async_client_limits_requests_in_flight_to_max_connections() -> None:
    in_flight = 0
    peak = 0

    class SlowTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1
            return pbs_data([])

    from pbsclient import AsyncPbsClient

    async def main() -> None:
        async with AsyncPbsClient(
            base_url="https://pbs.test:8007", token_id="root@pam!portal", token_secret="s",
            transport=SlowTransport(), max_connections=3,
        ) as client:  # fmt: skip
            results = await asyncio.gather(*(client.snapshot_list("store1", ns=f"ns{i}") for i in range(30)))
            assert len(results) == 30
            assert client.stats.calls == 30

    asyncio.run(main())
    assert peak == 3


def test_http_error_base_class_catches_every_status_error() -> None:
    fake = FakePbs(queue=[pbs_error(400, "namespace too deep, 7 >= max 7")])
    with pytest.raises(PbsHttpError) as info:
        make_client("sync", fake).namespace_create("store1", "x", parent="a/b/c/d/e/f")
    assert type(info.value) is PbsHttpError
