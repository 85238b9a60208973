"""A plain HTML reference of the REST API, built from the OpenAPI schema.

Served instead of a JavaScript schema viewer: no CDN, no inline script or style, so
the page keeps the strict CSP of the rest of the portal. The machine-readable schema
stays at /api/v1/schema/.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from drf_spectacular.generators import SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass
class Parameter:
    name: str
    where: str
    type: str
    required: bool
    description: str


@dataclass
class Operation:
    method: str
    path: str
    operation_id: str
    description: str
    parameters: list[Parameter]
    request_body: str
    responses: list[tuple[str, str]]


@dataclass
class Section:
    tag: str
    operations: list[Operation] = field(default_factory=list)


@dataclass
class Schema:
    name: str
    properties: list[Parameter]


@dataclass
class Reference:
    title: str
    version: str
    description: str
    sections: list[Section]
    schemas: list[Schema]


_ENUM_LINE = re.compile(r"^\* `[^`]*` - .*$", re.M)


def _describe(text: str) -> str:
    """Drop the generated enum bullet list (the type column lists the values already)."""
    return _ENUM_LINE.sub("", text or "").strip()


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {_type_of(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"] if v not in ("", None))
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            return " | ".join(_type_of(s) for s in schema[combined])
    kind = schema.get("type", "object")
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def _body_type(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    content = body.get("content", {})
    media = content.get("application/json") or next(iter(content.values()), {})
    return _type_of(media.get("schema", {}))


def build_reference(schema: dict[str, Any]) -> Reference:
    sections: dict[str, Section] = {}
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            tag = (op.get("tags") or ["other"])[0]
            parameters = [
                Parameter(
                    p["name"], p["in"], _type_of(p.get("schema", {})), bool(p.get("required")),
                    _describe(p.get("description", "")),
                )
                for p in op.get("parameters", [])
            ]
            responses = [
                (code, _body_type(resp) or resp.get("description", ""))
                for code, resp in sorted(op.get("responses", {}).items())
            ]
            sections.setdefault(tag, Section(tag)).operations.append(
                Operation(
                    method.upper(), path, op.get("operationId", ""), op.get("description", ""), parameters,
                    _body_type(op.get("requestBody")), responses,
                )
            )
    schemas = []
    for name, definition in sorted(schema.get("components", {}).get("schemas", {}).items()):
        required = set(definition.get("required", []))
        properties = [
            Parameter(
                prop, "body", _type_of(spec) + (" (read-only)" if spec.get("readOnly") else ""),
                prop in required, _describe(spec.get("description", "")),
            )
            for prop, spec in definition.get("properties", {}).items()
        ]
        schemas.append(Schema(name, properties))
    info = schema.get("info", {})
    return Reference(
        info.get("title", "API"), str(info.get("version", "")), info.get("description", ""),
        sorted(sections.values(), key=lambda s: s.tag), schemas,
    )


@functools.cache
def api_reference() -> Reference:
    """The reference of this code's API (the schema only changes with a deploy)."""
    return build_reference(SchemaGenerator().get_schema(request=None, public=True))
