"""Parameter validation texts (reference section 9.3), for query/form and JSON input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pbssim.calendar import next_event, parse_calendar_event, verify_calendar_event
from tests.pbssim.core_support import Pbs, error


@pytest.fixture
def pbs() -> Iterator[Pbs]:
    harness = Pbs()
    yield harness
    harness.close()


def one(name: str, reason: str) -> tuple[int, str]:
    return 400, f"parameter verification failed - '{name}': {reason}"


# Each row: (method, path, query/form parameters, JSON body, parameter, query reason, JSON reason)
ROWS = [
    pytest.param(
        "PUT",
        "/access/acl",
        {"path": "/", "role": "Admin", "auth-id": "root@pam", "bogus": "1"},
        {"path": "/", "role": "Admin", "auth-id": "root@pam", "bogus": "1"},
        "bogus",
        "schema does not allow additional properties.",
        "schema does not allow additional properties",
        id="unknown parameter",
    ),
    pytest.param(
        "POST",
        "/access/users",
        {},
        {},
        "userid",
        "parameter is missing and it is not optional.",
        "property is missing and it is not optional",
        id="missing required parameter",
    ),
    pytest.param(
        "POST",
        "/access/users",
        {"userid": "no realm"},
        {"userid": "no realm"},
        "userid",
        "value does not match the regex pattern",
        "value does not match the regex pattern",
        id="regex mismatch",
    ),
    pytest.param(
        "POST",
        "/access/users",
        {"userid": "a@"},
        {"userid": "a@"},
        "userid",
        "value must be at least 3 characters long",
        "value must be at least 3 characters long",
        id="too short",
    ),
    pytest.param(
        "POST",
        "/access/users",
        {"userid": "a" * 61 + "@pbs"},
        {"userid": "a" * 61 + "@pbs"},
        "userid",
        "value may only be 64 characters long",
        "value may only be 64 characters long",
        id="too long",
    ),
    pytest.param(
        "PUT",
        "/access/acl",
        {"path": "/", "role": "Foo", "auth-id": "root@pam"},
        {"path": "/", "role": "Foo", "auth-id": "root@pam"},
        "role",
        "value 'Foo' is not defined in the enumeration.",
        "value 'Foo' is not defined in the enumeration.",
        id="bad enum value",
    ),
    pytest.param(
        "POST",
        "/config/prune",
        {"id": "job1", "store": "store1", "schedule": "daily", "keep-last": "0"},
        {"id": "job1", "store": "store1", "schedule": "daily", "keep-last": 0},
        "keep-last",
        "value must have a minimum value of 1 (got 0)",
        "value must have a minimum value of 1 (got 0)",
        id="integer below minimum",
    ),
    pytest.param(
        "POST",
        "/config/prune",
        {"id": "job1", "store": "store1", "schedule": "daily", "max-depth": "8"},
        {"id": "job1", "store": "store1", "schedule": "daily", "max-depth": 8},
        "max-depth",
        "value must have a maximum value of 7 (got 8)",
        "value must have a maximum value of 7 (got 8)",
        id="integer above maximum",
    ),
    pytest.param(
        "GET",
        "/access/users",
        {"include_tokens": "maybe"},
        {"include_tokens": "1"},
        "include_tokens",
        "Unable to parse boolean option.",
        "Expected boolean value.",
        id="bad boolean",
    ),
    pytest.param(
        "POST",
        "/config/prune",
        {"id": "job1", "store": "store1", "schedule": "daily", "keep-last": "x"},
        {"id": "job1", "store": "store1", "schedule": "daily", "keep-last": "3"},
        "keep-last",
        "invalid digit found in string",
        "Expected integer value.",
        id="wrong type for an integer",
    ),
    pytest.param(
        "POST",
        "/access/users",
        {"userid": "a@pbs", "comment": "x"},
        {"userid": "a@pbs", "comment": 5},
        "comment",
        None,
        "Expected string value.",
        id="wrong JSON type for a string",
    ),
]


@pytest.mark.parametrize(("method", "path", "form", "body", "name", "query_reason", "json_reason"), ROWS)
def test_parameter_errors_have_pbs_texts_in_both_input_forms(
    pbs: Pbs, method: str, path: str, form: dict, body: dict, name: str, query_reason: str | None, json_reason: str
) -> None:
    if query_reason is not None:
        kwargs = {"params": form} if method == "GET" else {"data": form}
        assert error(pbs.call(method, path, **kwargs)) == one(name, query_reason)
    assert error(pbs.call(method, path, json=body)) == one(name, json_reason)


def test_a_missing_parameter_is_only_reported_in_query_form_when_nothing_else_is_wrong(pbs: Pbs) -> None:
    assert error(pbs.call("POST", "/access/users", data={"bogus": "1"})) == one(
        "bogus", "schema does not allow additional properties."
    )
    assert error(pbs.call("POST", "/access/users", json={"bogus": "1"})) == (
        400,
        "parameter verification failed:\n"
        "- 'bogus': schema does not allow additional properties\n"
        "- 'userid': property is missing and it is not optional",
    )


def test_several_errors_are_listed_one_per_line(pbs: Pbs) -> None:
    response = pbs.call(
        "POST", "/config/prune", data={"id": "x", "store": "store1", "schedule": "daily", "keep-last": "0"}
    )
    assert error(response) == (
        400,
        "parameter verification failed:\n"
        "- 'id': value must be at least 3 characters long\n"
        "- 'keep-last': value must have a minimum value of 1 (got 0)",
    )


def test_a_path_parameter_repeated_in_the_query_is_a_duplicate(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    response = pbs.call("GET", "/access/users/acme@pbs", params={"userid": "acme@pbs"})
    assert error(response) == one("userid", "duplicate parameter.")
    # With a JSON body the path wins silently.
    assert pbs.call("PUT", "/access/users/acme@pbs", json={"userid": "other@pbs", "comment": "x"}).status_code == 200


def test_handler_parameter_errors_use_the_same_format(pbs: Pbs) -> None:
    pbs.ok("POST", "/config/prune", data={"id": "job1", "store": "store1", "schedule": "daily"})
    response = pbs.call("POST", "/config/prune", json={"id": "job1", "store": "store1", "schedule": "daily"})
    assert error(response) == one("id", "job 'job1' already exists.")


@pytest.mark.parametrize("text", ["1", "0", "true", "FALSE", "Yes", "no", "ON", "off"])
def test_booleans_in_query_and_form_accept_pbs_spellings(pbs: Pbs, text: str) -> None:
    assert pbs.call("GET", "/access/users", params={"include_tokens": text}).status_code == 200


def test_arrays_are_repeated_keys_or_json_arrays(pbs: Pbs) -> None:
    pbs.user("acme@pbs", comment="c", firstname="Ann", email="a@example.com")
    pbs.ok("PUT", "/access/users/acme@pbs", data={"delete": ["comment", "firstname"]})
    assert pbs.ok("GET", "/access/users/acme@pbs") == {"userid": "acme@pbs", "email": "a@example.com"}
    pbs.ok("PUT", "/access/users/acme@pbs", json={"delete": ["email"]})
    assert pbs.ok("GET", "/access/users/acme@pbs") == {"userid": "acme@pbs"}
    response = pbs.call("PUT", "/access/users/acme@pbs", json={"delete": ["nope"]})
    assert error(response) == one("delete/[0]", "value 'nope' is not defined in the enumeration.")
    response = pbs.call("PUT", "/access/users/acme@pbs", data={"delete": "nope"})
    assert error(response) == one("delete", "value 'nope' is not defined in the enumeration.")


def test_path_parameters_are_percent_decoded(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    assert pbs.ok("GET", "/access/users/acme%40pbs") == {"userid": "acme@pbs"}


def test_with_a_json_body_the_query_string_is_ignored(pbs: Pbs) -> None:
    response = pbs.call("POST", "/access/users", params={"bogus": "1", "comment": "q"}, json={"userid": "a@pbs"})
    assert response.status_code == 200
    assert pbs.ok("GET", "/access/users/a@pbs") == {"userid": "a@pbs"}


def test_form_bodies_and_query_strings_are_both_read(pbs: Pbs) -> None:
    response = pbs.call("POST", "/access/users", params={"comment": "from query"}, data={"userid": "a@pbs"})
    assert response.status_code == 200
    assert pbs.ok("GET", "/access/users/a@pbs")["comment"] == "from query"


def test_a_json_body_that_is_not_an_object_is_refused(pbs: Pbs) -> None:
    assert error(pbs.call("POST", "/access/users", json=["a"])) == (400, "Expected object - got array.")


# --- calendar events (prune schedules) --------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        "daily",
        "hourly",
        "weekly",
        "monthly",
        "yearly",
        "minutely",
        "02:00",
        "*:0/30",
        "mon..fri 02:00",
        "sat 03:00",
        "*-*-* 02:00",
        "mon,wed,fri 22:15",
        "2026-01-01 00:00",
        "sun 04:00 UTC",
    ],
)
def test_prune_schedules_accept_systemd_calendar_events(pbs: Pbs, schedule: str) -> None:
    pbs.ok("POST", "/config/prune", data={"id": "job1", "store": "store1", "schedule": schedule})


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("garbage", "unable to parse calendar event at 'garbage' - Context(\"weekday\")"),
        ("99:99", "unable to parse calendar event at '99:99' - Context(\"date or time specification\")"),
        ("daily 02:00", "unable to parse calendar event at 'daily' - Context(\"weekday\")"),
        ("02:00 every day", "unable to parse calendar event at ' every day' - Nom(Eof)"),
    ],
)
def test_garbage_schedules_are_refused_by_the_parameter_check(pbs: Pbs, schedule: str, reason: str) -> None:
    response = pbs.call("POST", "/config/prune", data={"id": "job1", "store": "store1", "schedule": schedule})
    assert error(response) == one("schedule", reason)


def test_next_run_follows_the_schedule() -> None:
    monday_noon = 1767009600  # 2025-12-29 12:00 UTC, a Monday
    assert next_event(parse_calendar_event("daily"), monday_noon) == monday_noon + 12 * 3600
    assert next_event(parse_calendar_event("*:0/30"), monday_noon) == monday_noon + 1800
    assert next_event(parse_calendar_event("sat 03:00"), monday_noon) == monday_noon + 4 * 86400 + 15 * 3600
    assert next_event(parse_calendar_event("mon..fri 02:00"), monday_noon) == monday_noon + 14 * 3600
    verify_calendar_event("weekly")
