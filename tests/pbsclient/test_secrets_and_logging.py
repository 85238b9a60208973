"""The token secret reaches PBS in the Authorization header and nowhere else: not in reprs,
URLs, exceptions or logs. Every call is logged with host, method, path, status and duration."""

from __future__ import annotations

import logging
import pickle

import httpx
import pytest

from pbsclient import PbsClient
from pbsclient.auth import PbsTokenAuth
from pbsclient.errors import (
    AuthenticationFailed,
    InvalidParameter,
    NotFound,
    PbsConnectionError,
    PbsHttpError,
    ServerError,
)
from pbsclient.models import TokenSecret
from pbsclient.validation import PbsValidationError
from tests.pbsclient.support import SECRET, TOKEN_ID, FakePbs, invoke, make_client, pbs_data, pbs_error


def test_authorization_header_is_pbs_token_format_with_a_colon() -> None:
    fake = FakePbs(responder=lambda request: pbs_data({"pong": True}))
    make_client("sync", fake).ping()
    assert fake.last.headers["Authorization"] == f"PBSAPIToken={TOKEN_ID}:{SECRET}"
    assert SECRET not in str(fake.last.url)
    assert "Cookie" not in fake.last.headers


def test_reprs_do_not_contain_the_secret() -> None:
    fake = FakePbs()
    client = make_client("sync", fake)
    assert SECRET not in repr(client)
    assert TOKEN_ID in repr(client)
    auth = PbsTokenAuth(TOKEN_ID, SECRET)
    assert repr(auth) == f"PbsTokenAuth(token_id='{TOKEN_ID}')"
    assert SECRET not in repr(vars(client))
    fake_async = FakePbs()
    assert SECRET not in repr(make_client("async", fake_async))


def test_request_reprs_mask_the_header() -> None:
    fake = FakePbs(responder=lambda request: pbs_data({"pong": True}))
    make_client("sync", fake).ping()
    assert SECRET not in repr(fake.last.headers)


def test_token_secret_model_hides_its_value() -> None:
    created = TokenSecret(tokenid="acme@pbs!backup", value="f00dfeed-0000-4000-8000-000000000000")
    assert "f00dfeed" not in repr(created)
    assert "f00dfeed" not in str(created)
    assert created.value.startswith("f00dfeed")


def test_auth_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(PbsTokenAuth(TOKEN_ID, SECRET))


@pytest.mark.parametrize("secret", ["", "line\nbreak", "tab\there"])
def test_bad_secrets_are_refused_without_echoing_them(secret: str) -> None:
    with pytest.raises(PbsValidationError) as info:
        PbsTokenAuth(TOKEN_ID, secret)
    if secret:
        assert secret not in str(info.value)


def test_a_secret_echoed_by_the_server_is_scrubbed_from_errors() -> None:
    fake = FakePbs(responder=lambda request: pbs_error(400, f"parameter verification failed - 'x': got {SECRET}"))
    with pytest.raises(InvalidParameter) as info:
        make_client("sync", fake).version()
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert "***" in info.value.message


def test_a_remote_password_echoed_by_the_server_is_scrubbed() -> None:
    password = "remote-password-123"
    fake = FakePbs(responder=lambda request: pbs_error(400, f"bad password {password}"))
    with pytest.raises(PbsHttpError) as info:
        make_client("sync", fake).remote_create("dr1", host="h", auth_id="sync@pbs", password=password)
    assert password not in str(info.value)


def test_authentication_failure_carries_no_secret() -> None:
    fake = FakePbs(responder=lambda request: httpx.Response(401, content=b"authentication failed"))
    with pytest.raises(AuthenticationFailed) as info:
        make_client("sync", fake).user_list()
    text = f"{info.value} {info.value!r} {info.value.args}"
    assert SECRET not in text
    assert info.value.path == "/access/users"


def test_every_call_is_logged_with_host_method_path_status_and_duration(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePbs(queue=[pbs_data({"pong": True}), pbs_error(400, "no such user 'acme@pbs'")])
    client = make_client("sync", fake)
    with caplog.at_level(logging.DEBUG, logger="pbsclient"):
        client.ping()
        with pytest.raises(NotFound):
            client.user_get("acme@pbs")
    records = [r for r in caplog.records if r.name == "pbsclient"]
    assert len(records) == 2
    first, second = records
    assert (first.pbs_host, first.pbs_method, first.pbs_path, first.pbs_status) == ("pbs1", "GET", "/ping", 200)
    assert isinstance(first.pbs_duration_ms, float)
    assert first.levelno == logging.DEBUG
    assert second.pbs_status == 400
    assert second.pbs_path == "/access/users/acme@pbs"
    assert "pbs1 GET /ping -> 200 in" in first.getMessage()


def test_logs_never_contain_secrets_even_for_failures_and_retries(caplog: pytest.LogCaptureFixture) -> None:
    from pbsclient import RetryPolicy

    token_value = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    fake = FakePbs(
        queue=[
            httpx.ConnectError("refused"),
            pbs_error(503, "busy"),
            pbs_data({"tokenid": "a@pbs!t", "value": token_value}),
        ],
    )
    client = make_client("sync", fake, retry=RetryPolicy(max_attempts=3, base_delay=0, max_delay=0))
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ServerError):  # a 503 on a create is not retried
            client.token_create("a@pbs", "t")
        created = client.token_create("a@pbs", "t")
    assert created.value == token_value
    assert SECRET not in caplog.text
    assert token_value not in caplog.text
    assert "retry 1/2" in caplog.text


def test_writes_are_logged_at_info_and_connection_failures_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePbs(queue=[pbs_data(None), httpx.ConnectError("refused")])
    client = make_client("sync", fake)
    with caplog.at_level(logging.DEBUG, logger="pbsclient"):
        client.user_delete("acme@pbs")
        with pytest.raises(PbsConnectionError):
            client.version()
    levels = [r.levelno for r in caplog.records if r.name == "pbsclient"]
    assert levels == [logging.INFO, logging.WARNING]


def test_malformed_pin_is_refused_at_construction_even_with_a_transport() -> None:
    with pytest.raises(PbsValidationError, match="not a SHA-256 fingerprint in PBS format"):
        PbsClient(
            base_url="https://pbs.test:8007", token_id=TOKEN_ID, token_secret=SECRET, fingerprint="sha256:nope",
            transport=httpx.MockTransport(lambda r: pbs_data(None)),
        )  # fmt: skip


def test_invoke_runs_async_clients() -> None:
    fake = FakePbs(responder=lambda request: pbs_data({"pong": True}))
    assert invoke(make_client("async", fake), lambda c: c.ping()) is True
