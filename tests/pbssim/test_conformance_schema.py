"""The simulator's parameter definitions match PBS's published API schema.

For every endpoint and method the simulator serves, its parameter schema (names,
optional or not, types, enums, lengths, ranges, regexes, defaults, whether unknown
parameters are allowed) is compared with PBS's own API-viewer schema, so our
definitions cannot drift from PBS.

The schema is third-party data kept beside the repository, never inside it:
``<repo>/../shared/pbs-api-schema/pbs-api-schema.json``. Without it these tests fail
and say where the file is expected.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pbssim.params import Param
from pbssim.router import Endpoint
from pbssim.simulator import Simulator

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT.parent / "shared" / "pbs-api-schema" / "pbs-api-schema.json"


@cache
def published_schema() -> dict[tuple[str, str], dict[str, Any]]:
    """(path, method) -> the method's ``parameters`` object from PBS's schema."""
    if not SCHEMA_PATH.is_file():
        pytest.fail(
            f"PBS's published API schema is missing: expected it at {SCHEMA_PATH} "
            "(the reference data directory 'shared/pbs-api-schema/' next to the repository). "
            "Put pbs-api-schema.json there; it must not be copied into the repository."
        )
    nodes = json.loads(SCHEMA_PATH.read_text())
    methods: dict[tuple[str, str], dict[str, Any]] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        for method, info in (node.get("info") or {}).items():
            methods[(node["path"], method)] = info["parameters"]
        stack.extend(node.get("children") or [])
    return methods


def served_endpoints() -> list[Endpoint]:
    return sorted(Simulator().router.endpoints(), key=lambda e: (e.template, e.method))


def _schema_pattern(pattern: str | None) -> str | None:
    # The schema writes regexes as "/regex/".
    if pattern is None:
        return None
    assert pattern.startswith("/"), pattern
    assert pattern.endswith("/"), pattern
    return pattern[1:-1]


def differences(name: str, ours: Param, theirs: dict[str, Any]) -> list[str]:
    """What differs between our definition of one parameter and PBS's."""
    problems = []

    def compare(what: str, mine: Any, published: Any) -> None:
        if mine != published:
            problems.append(f"{name}: {what} is {mine!r}, PBS says {published!r}")

    compare("type", ours.type, theirs.get("type"))
    compare("optional", ours.optional, bool(theirs.get("optional", 0)))
    compare("minLength", ours.min_length, theirs.get("minLength"))
    compare("maxLength", ours.max_length, theirs.get("maxLength"))
    compare("minimum", ours.minimum, theirs.get("minimum"))
    compare("maximum", ours.maximum, theirs.get("maximum"))
    compare("enum", list(ours.enum) if ours.enum is not None else None, theirs.get("enum"))
    compare("pattern", ours.pattern, _schema_pattern(theirs.get("pattern")))
    compare("default", ours.default, theirs.get("default"))
    if ours.type == "array":
        assert ours.items is not None
        problems += differences(f"{name}[]", ours.items, {**theirs.get("items", {}), "optional": 0})
    return problems


def test_the_published_schema_is_where_the_tests_expect_it() -> None:
    assert published_schema(), f"{SCHEMA_PATH} holds no API nodes"


def test_the_simulator_serves_the_core_endpoints() -> None:
    served = {(e.method, e.template) for e in served_endpoints()}
    for wanted in [
        ("PUT", "/access/acl"),
        ("GET", "/access/permissions"),
        ("PUT", "/access/users/{userid}/token/{token-name}"),
        ("POST", "/admin/datastore/{store}/namespace"),
        ("GET", "/admin/datastore/{store}/snapshots"),
        ("POST", "/config/prune"),
        ("GET", "/status/datastore-usage"),
        ("GET", "/nodes/{node}/certificates/info"),
    ]:
        assert wanted in served


@pytest.mark.parametrize("endpoint", served_endpoints(), ids=lambda e: f"{e.method} {e.template}")
def test_parameters_match_the_published_schema(endpoint: Endpoint) -> None:
    schema = published_schema()
    published = schema.get((endpoint.template, endpoint.method))
    assert published is not None, f"PBS has no {endpoint.method} {endpoint.template}"
    properties: dict[str, Any] = published.get("properties", {})
    problems: list[str] = []
    if set(endpoint.schema.properties) != set(properties):
        problems.append(
            f"parameter names differ: only ours {sorted(set(endpoint.schema.properties) - set(properties))}, "
            f"only PBS's {sorted(set(properties) - set(endpoint.schema.properties))}"
        )
    for name in sorted(set(endpoint.schema.properties) & set(properties)):
        problems += differences(name, endpoint.schema.properties[name], properties[name])
    additional = bool(published.get("additionalProperties", False))
    if endpoint.schema.additional_properties != additional:
        problems.append(f"additionalProperties is {endpoint.schema.additional_properties}, PBS says {additional}")
    assert not problems, "\n".join(problems)
