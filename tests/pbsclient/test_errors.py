"""Every PBS error answer from the API reference (sections 9.2, 9.3, 9.4, 13) maps onto
the right exception, with status, method, path and PBS's message."""

from __future__ import annotations

import pytest

from pbsclient.errors import (
    AlreadyExists,
    AuthenticationFailed,
    FingerprintMismatch,
    InvalidParameter,
    NotFound,
    PbsConnectionError,
    PbsError,
    PbsHttpError,
    PbsTimeout,
    PbsTlsError,
    PermissionDenied,
    ServerError,
    error_from_response,
    is_retryable,
    is_safe_to_repeat,
    parse_parameter_errors,
)

# (status, body, expected class) straight from the reference tables.
REFERENCE_ROWS = [
    # 9.2 status codes actually used
    (401, "authentication failed", AuthenticationFailed),
    (401, "permission check failed.", AuthenticationFailed),
    (403, "permission check failed", PermissionDenied),
    (403, "permission check failed - missing Datastore.Audit|Datastore.Backup on /datastore/s1/acme", PermissionDenied),
    (400, "missing permissions 'Datastore.Modify' on '/datastore/s1/acme'", PermissionDenied),
    (400, "permission check failed", PermissionDenied),  # sync job access check
    (400, "permission check failed, 'acme@pbs!t' is missing access", PermissionDenied),
    (404, "Path '/api2/json/admin/datastore/s1' not found.", NotFound),
    (400, "Unsupported output format 'xml'.", PbsHttpError),
    (400, 'unsupported content type Ok("text/plain")', PbsHttpError),
    (400, "Request body too large", PbsHttpError),
    (414, "", PbsHttpError),
    (400, "path contains illegal components", PbsHttpError),
    (400, "detected modified configuration - file changed by other user? Try again.", PbsHttpError),
    # 9.4 already exists / not found
    (400, "user 'acme@pbs' already exists.", AlreadyExists),
    (400, "token 't' for user 'u@pbs' already exists.", AlreadyExists),
    (400, "parameter verification failed - 'id': job 'x' already exists.", AlreadyExists),
    (400, "parameter verification failed - 'name': remote 'x' already exists.", AlreadyExists),
    (400, "parameter verification failed - 'name': datastore 'x' already exists.", AlreadyExists),
    (400, "no such user 'u@pbs'", NotFound),
    (400, "user 'u@pbs' does not exist.", NotFound),
    (400, "no such token 'u@pbs!t'", NotFound),
    (400, "token 't' of user 'u@pbs' does not exist.", NotFound),
    (400, "no such prune 'id'", NotFound),
    (400, "no such remote 'n'", NotFound),
    (404, "remote 'n' does not exist.", NotFound),
    (404, "job 'id' does not exist.", NotFound),
    (404, "datastore 'n' does not exist.", NotFound),
    (400, "no such sync 'id'", NotFound),
    (400, "no such datastore 'x'", NotFound),
    (400, "no such user.", NotFound),
    (400, "no such API token.", NotFound),
    (404, "namespace not found", NotFound),
    (400, "cannot create new namespace, parent a doesn't already exists", NotFound),
    # other 400s that are neither
    (400, "namespace too deep, 7 >= max 7", PbsHttpError),
    (400, "only partially deleted due to existing groups but `delete-groups` not true", PbsHttpError),
    (400, "Cannot create/delete root namespace!", PbsHttpError),
    (400, "parameter 'group' - groups are currently not supported.", PbsHttpError),
    (400, "missing 'userid' or 'group' parameter.", PbsHttpError),
    (400, "invalid acl path '/foo'.", PbsHttpError),
    (400, "unknown realm 'foo'", PbsHttpError),
    # 9.3 and 13: parameter verification
    (400, "parameter verification failed - 'userid': schema does not allow additional properties.", InvalidParameter),
    (400, "parameter verification failed - 'ns': schema does not allow additional properties.", InvalidParameter),
    (400, "parameter verification failed - 'keep-last': datastore prune settings have been replaced by prune jobs",
     InvalidParameter),
    (400, "parameter verification failed - 'name': remote 'x' is used by sync job y", InvalidParameter),
    # 5xx
    (500, "internal error", ServerError),
    (502, "<html>Bad Gateway</html>", ServerError),
    (503, "", ServerError),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "expected"), REFERENCE_ROWS)
def test_each_reference_error_maps_to_its_exception(status: int, body: str, expected: type[PbsError]) -> None:
    exc = error_from_response(status, body, method="POST", path="/access/users", host="pbs1")
    assert type(exc) is expected
    assert exc.status == status
    assert exc.method == "POST"
    assert exc.path == "/access/users"
    assert exc.message == (body or f"HTTP {status} without a message")


def test_single_parameter_error_is_parsed() -> None:
    exc = error_from_response(
        400, "parameter verification failed - 'userid': value does not match the regex pattern", method="POST"
    )
    assert isinstance(exc, InvalidParameter)
    assert exc.errors == {"userid": "value does not match the regex pattern"}


def test_multi_line_parameter_error_is_parsed_into_every_parameter() -> None:
    body = (
        "parameter verification failed:\n"
        "- 'store': value must be at least 3 characters long\n"
        "- 'keep-last': value must have a minimum value of 1 (got 0)\n"
        "- 'schedule': parameter is missing and it is not optional."
    )
    exc = error_from_response(400, body)
    assert isinstance(exc, InvalidParameter)
    assert exc.errors == {
        "store": "value must be at least 3 characters long",
        "keep-last": "value must have a minimum value of 1 (got 0)",
        "schedule": "parameter is missing and it is not optional.",
    }


def test_json_body_reason_without_period_is_kept_verbatim() -> None:
    assert parse_parameter_errors(
        "parameter verification failed - 'userid': schema does not allow additional properties"
    ) == {"userid": "schema does not allow additional properties"}


def test_error_str_names_host_method_path_status_and_message() -> None:
    exc = error_from_response(400, "no such user 'a@pbs'", method="GET", path="/access/users/a@pbs", host="pbs1")
    assert str(exc) == "[pbs1] GET /access/users/a@pbs -> 400: no such user 'a@pbs'"


def test_very_long_bodies_are_truncated() -> None:
    exc = error_from_response(502, "x" * 10_000)
    assert len(exc.message) < 2100


def test_fingerprint_mismatch_message_has_both_fingerprints() -> None:
    expected = ":".join(["aa"] * 32)
    presented = ":".join(["bb"] * 32)
    exc = FingerprintMismatch(expected=expected, presented=presented, method="GET", path="/version")
    assert expected in str(exc)
    assert presented in str(exc)
    assert isinstance(exc, PbsTlsError)
    assert isinstance(exc, PbsConnectionError)
    assert exc.status is None


class TestRetryDecision:
    def test_server_errors_are_retryable_only_for_requests_safe_to_repeat(self) -> None:
        assert is_retryable(ServerError("x", status=503, method="GET", path="/version"))
        assert is_retryable(ServerError("x", status=500, method="PUT", path="/access/acl"))
        assert is_retryable(ServerError("x", status=500, method="POST", path="/admin/datastore/s1/namespace"))
        assert not is_retryable(ServerError("x", status=500, method="POST", path="/access/users/u@pbs/token/t"))
        assert not is_retryable(ServerError("x", status=500, method="POST", path="/access/users"))
        assert not is_retryable(ServerError("x", status=500, method="PUT", path="/access/users/u@pbs/token/t"))
        assert not is_retryable(ServerError("x", status=500, method="DELETE", path="/config/prune/t-acme"))
        assert not is_retryable(ServerError("x", status=500, method="POST", path="/admin/sync/job1/run"))

    def test_connection_errors_before_sending_are_always_retryable(self) -> None:
        exc = PbsConnectionError("refused", method="POST", path="/access/users/u@pbs/token/t", request_sent=False)
        assert is_retryable(exc)

    def test_connection_errors_after_sending_follow_the_idempotency_rule(self) -> None:
        assert not is_retryable(PbsTimeout("read timeout", method="POST", path="/access/users"))
        assert is_retryable(PbsTimeout("read timeout", method="GET", path="/access/users"))

    def test_tls_failures_and_client_errors_are_never_retried(self) -> None:
        assert not is_retryable(PbsTlsError("bad chain", method="GET", path="/version"))
        pin = FingerprintMismatch(expected="a", presented="b", method="GET", path="/version")
        assert not is_retryable(pin)
        assert not is_retryable(NotFound("no such user 'u'", status=400, method="GET", path="/access/users/u"))
        assert not is_retryable(AuthenticationFailed("authentication failed", status=401, method="GET", path="/"))
        assert not is_retryable(ValueError("not a PBS error"))

    def test_method_and_path_arguments_override_the_recorded_ones(self) -> None:
        exc = ServerError("x", status=500, method="POST", path="/access/users")
        assert is_retryable(exc, "GET", "/access/users")

    def test_safe_to_repeat_table(self) -> None:
        assert is_safe_to_repeat("get", "/anything")
        assert is_safe_to_repeat("PUT", "/config/prune/t-acme")
        assert is_safe_to_repeat("PUT", "/access/users/acme@pbs")
        assert not is_safe_to_repeat("PUT", "/access/users/acme@pbs/token/backup")
        assert not is_safe_to_repeat("POST", "/config/prune")
