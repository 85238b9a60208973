"""Parameter schemas and validation, written from PBS's documented API types.

Each endpoint method owns an :class:`ObjectSchema` of :class:`Param` entries (name,
type, optional, regex, lengths, enum, range, default). Validation reproduces the
400 texts of ``proxmox-schema`` for both input forms:

- query string / ``application/x-www-form-urlencoded`` bodies
  (``parse_parameter_strings``: reasons end with a period, a missing required
  parameter is only reported when nothing else is wrong), and
- JSON bodies (``verify_json``: reasons without the period, missing properties are
  always reported, wrong JSON types give ``Expected integer value.`` and friends).

Regexes are kept in PBS's own notation (``[:cntrl:]`` classes, ``^...$``) so the
conformance test can compare them with PBS's published schema; they are translated
to Python syntax once, when first used.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pbssim.calendar import verify_calendar_event

# --- regexes in PBS notation (pbs-api-types / proxmox-schema api_types) -------------

SAFE_ID = r"(?:[A-Za-z0-9_][A-Za-z0-9._\-]*)"
USER_NAME = r"(?:[^\s:/[:cntrl:]]+)"
USERID_RE = rf"^{USER_NAME}@{SAFE_ID}$"
TOKENID_RE = rf"^{USER_NAME}@{SAFE_ID}!{SAFE_ID}$"
AUTHID_RE = rf"^(?:{USER_NAME}@{SAFE_ID}|{USER_NAME}@{SAFE_ID}!{SAFE_ID})$"
SAFE_ID_RE = rf"^{SAFE_ID}$"
ACL_PATH_RE = rf"^(?:/|(?:/{SAFE_ID})+)$"
NS_RE = rf"^(?:(?:{SAFE_ID}/){{0,7}}{SAFE_ID})?$"
DIGEST_RE = r"^[a-f0-9]{64}$"
SINGLE_LINE_COMMENT_RE = r"^[[:^cntrl:]]*$"
GROUP_ID_RE = r"^(?:[^\s:/[:cntrl:]]+)$"
BACKUP_ID_RE = r"^[A-Za-z0-9_][A-Za-z0-9._\-]*$"
NODE_RE = r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)$"
UUID_RE = r"^[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$"
UPID_RE = (
    r"^UPID:(?P<node>[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):(?P<pid>[0-9A-Fa-f]{8}):"
    r"(?P<pstart>[0-9A-Fa-f]{8,9}):(?P<task_id>[0-9A-Fa-f]{8,16}):(?P<starttime>[0-9A-Fa-f]{8}):"
    r"(?P<wtype>[^:\s]+):(?P<wid>[^:\s]*):(?P<authid>[^:\s]+):$"
)

MAX_NAMESPACE_DEPTH = 7

ROLE_NAMES = (
    "Admin",
    "Audit",
    "NoAccess",
    "DatastoreAdmin",
    "DatastoreReader",
    "DatastoreBackup",
    "DatastorePowerUser",
    "DatastoreAudit",
    "RemoteAudit",
    "RemoteAdmin",
    "RemoteSyncOperator",
    "RemoteSyncPushOperator",
    "RemoteDatastorePowerUser",
    "RemoteDatastoreAdmin",
    "TapeAudit",
    "TapeAdmin",
    "TapeOperator",
    "TapeReader",
)


@cache
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Translate a PBS (Rust regex) pattern to Python and compile it.

    ``[:cntrl:]`` is the ASCII control class; Rust's ``$`` only matches at the very
    end, so the trailing anchor becomes ``\\Z`` (Python's ``$`` would accept "x\\n").
    """
    py = pattern.replace("[[:^cntrl:]]", r"[^\x00-\x1f\x7f]").replace("[:cntrl:]", r"\x00-\x1f\x7f")
    if py.endswith("$"):
        py = py[:-1] + r"\Z"
    return re.compile(py)


# --- parameter definitions ----------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One property of an endpoint's parameter schema."""

    type: str  # "string" | "integer" | "boolean" | "array"
    optional: bool = False
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    enum: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: Any = None
    items: Param | None = None
    # ApiStringFormat::VerifyFn: raises ValueError(reason); not visible in the schema.
    verify: Callable[[str], None] | None = dataclasses.field(default=None, compare=False)

    def opt(self, default: Any = None) -> Param:
        """The same parameter, optional (and with a default, if given)."""
        return dataclasses.replace(self, optional=True, default=default if default is not None else self.default)

    def req(self) -> Param:
        return dataclasses.replace(self, optional=False)

    def with_default(self, default: Any) -> Param:
        return dataclasses.replace(self, default=default)


def string(
    *,
    pattern: str | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    enum: Iterable[str] | None = None,
    verify: Callable[[str], None] | None = None,
    optional: bool = False,
    default: str | None = None,
) -> Param:
    return Param(
        "string",
        optional=optional,
        pattern=pattern,
        min_length=min_length,
        max_length=max_length,
        enum=tuple(enum) if enum is not None else None,
        verify=verify,
        default=default,
    )


def integer(
    *, minimum: int | None = None, maximum: int | None = None, optional: bool = False, default: int | None = None
) -> Param:
    return Param("integer", optional=optional, minimum=minimum, maximum=maximum, default=default)


def boolean(*, optional: bool = True, default: bool | None = None) -> Param:
    return Param("boolean", optional=optional, default=default)


def array(items: Param, *, optional: bool = True) -> Param:
    return Param("array", optional=optional, items=items)


# Shared type definitions (pbs-api-types), required by default; use .opt() where optional.
USERID = string(pattern=USERID_RE, min_length=3, max_length=64)
AUTHID = string(pattern=AUTHID_RE, min_length=3, max_length=64)
TOKEN_NAME = string(pattern=SAFE_ID_RE)
ACL_PATH = string(pattern=ACL_PATH_RE, min_length=1, max_length=128)
ROLE = string(enum=ROLE_NAMES)
DIGEST = string(pattern=DIGEST_RE, optional=True)
COMMENT = string(pattern=SINGLE_LINE_COMMENT_RE, max_length=128, optional=True)
FIRST_LAST_EMAIL = string(pattern=SINGLE_LINE_COMMENT_RE, min_length=2, max_length=64, optional=True)
PASSWORD = string(pattern=SINGLE_LINE_COMMENT_RE, min_length=8, max_length=64, optional=True)
ENABLE = boolean(default=True)
EXPIRE = integer(minimum=0, optional=True, default=0)
GROUP_ID = string(pattern=GROUP_ID_RE, min_length=3, max_length=64, optional=True)
DATASTORE = string(pattern=SAFE_ID_RE, min_length=3, max_length=32)
NAMESPACE = string(pattern=NS_RE, max_length=256, optional=True)
NS_MAX_DEPTH = integer(minimum=0, maximum=MAX_NAMESPACE_DEPTH, optional=True)
JOB_ID = string(pattern=SAFE_ID_RE, min_length=3, max_length=32)
KEEP = integer(minimum=1, optional=True)
BACKUP_TYPE = string(enum=("vm", "ct", "host"), optional=True)
BACKUP_ID = string(pattern=BACKUP_ID_RE, optional=True)
NODE = string(pattern=NODE_RE)
UPID = string(pattern=UPID_RE, min_length=36)
KEEP_NAMES = ("keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")


class ObjectSchema:
    """The parameter schema of one endpoint method."""

    def __init__(self, properties: Mapping[str, Param] | None = None, *, additional_properties: bool = False) -> None:
        # proxmox-schema keeps properties sorted by name; "missing" errors follow that order.
        self.properties: dict[str, Param] = dict(sorted((properties or {}).items()))
        self.additional_properties = additional_properties

    # -- query string / form body ----------------------------------------------------

    def parse_strings(self, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """``parse_parameter_strings(data, test_required=true)``."""
        params: dict[str, Any] = {}
        errors = ParameterError()
        for key, value in pairs:
            prop = self.properties.get(key)
            if prop is None:
                if self.additional_properties:
                    params.setdefault(key, value)
                else:
                    errors.push(key, "schema does not allow additional properties.")
                continue
            if prop.type == "array":
                items = params.setdefault(key, [])
                try:
                    items.append(parse_simple_value(_items(prop), value))
                except ValueError as exc:
                    errors.push(key, str(exc))
                continue
            try:
                parsed = parse_simple_value(prop, value)
            except ValueError as exc:
                errors.push(key, str(exc))
                continue
            if key in params:
                errors.push(key, "duplicate parameter.")
            else:
                params[key] = parsed
        if not errors:
            for name, prop in self.properties.items():
                if not prop.optional and name not in params:
                    errors.push(name, "parameter is missing and it is not optional.")
        if errors:
            raise errors
        return params

    # -- JSON body -----------------------------------------------------------------------

    def verify_json(self, data: Any) -> dict[str, Any]:
        """``verify_json_object``: check a decoded JSON body against the schema."""
        if isinstance(data, list):
            raise ValueError("Expected object - got array.")
        if not isinstance(data, dict):
            raise ValueError("Expected object - got scalar value.")
        errors = ParameterError()
        # serde_json's map is ordered by key, so errors come in key order.
        for key in sorted(data):
            value = data[key]
            prop = self.properties.get(key)
            if prop is None:
                if not self.additional_properties:
                    errors.push(key, "schema does not allow additional properties")
                continue
            try:
                verify_json_value(prop, value)
            except ParameterError as nested:
                for name, reason in nested.errors:
                    errors.push(f"{key}/{name}", reason)
            except ValueError as exc:
                errors.push(key, str(exc))
        for name, prop in self.properties.items():
            if not prop.optional and data.get(name) is None:
                errors.push(name, "property is missing and it is not optional")
        if errors:
            raise errors
        return {k: v for k, v in data.items() if v is not None}


class ParameterError(ValueError):
    """proxmox-schema's ParameterError: a list of (parameter, reason)."""

    def __init__(self, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.errors: list[tuple[str, str]] = list(errors or [])

    def push(self, name: str, reason: str) -> None:
        self.errors.append((name, reason))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def __str__(self) -> str:
        if len(self.errors) == 1:
            name, reason = self.errors[0]
            return f"parameter verification failed - '{name}': {reason}"
        lines = [f"- '{name}': {reason}" for name, reason in self.errors]
        return "parameter verification failed:\n" + "\n".join(lines)


def param_error(name: str, reason: str) -> ParameterError:
    """``param_bail!(name, reason)``."""
    return ParameterError([(name, reason)])


_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_DIGITS_RE = re.compile(r"[+-]?[0-9]*\Z")
ISIZE_MIN, ISIZE_MAX = -(2**63), 2**63 - 1


def parse_boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "on", "yes", "true"):
        return True
    if lowered in ("0", "off", "no", "false"):
        return False
    raise ValueError("Unable to parse boolean option.")


def _parse_isize(value: str) -> int:
    """Rust's ``str::parse::<isize>()`` with its error texts."""
    if value == "":
        raise ValueError("cannot parse integer from empty string")
    if not _INT_RE.match(value):
        raise ValueError("invalid digit found in string")
    number = int(value)
    if number > ISIZE_MAX:
        raise ValueError("number too large to fit in target type")
    if number < ISIZE_MIN:
        raise ValueError("number too small to fit in target type")
    return number


def _items(prop: Param) -> Param:
    if prop.items is None:
        raise TypeError("array parameter without an item schema")
    return prop.items


def parse_simple_value(prop: Param, value: str) -> Any:
    """Parse one query/form value and check its constraints (reason in ValueError)."""
    if prop.type == "boolean":
        return parse_boolean(value)
    if prop.type == "integer":
        number = _parse_isize(value)
        check_integer(prop, number)
        return number
    if prop.type == "string":
        check_string(prop, value)
        return value
    raise ValueError(f"unable to parse {prop.type} value")


def check_integer(prop: Param, value: int) -> None:
    if prop.minimum is not None and value < prop.minimum:
        raise ValueError(f"value must have a minimum value of {prop.minimum} (got {value})")
    if prop.maximum is not None and value > prop.maximum:
        raise ValueError(f"value must have a maximum value of {prop.maximum} (got {value})")


def check_string(prop: Param, value: str) -> None:
    length = len(value)
    if prop.min_length is not None and length < prop.min_length:
        raise ValueError(f"value must be at least {prop.min_length} characters long")
    if prop.max_length is not None and length > prop.max_length:
        raise ValueError(f"value may only be {prop.max_length} characters long")
    if prop.pattern is not None and not compile_pattern(prop.pattern).match(value):
        raise ValueError("value does not match the regex pattern")
    if prop.enum is not None and value not in prop.enum:
        raise ValueError(f"value '{value}' is not defined in the enumeration.")
    if prop.verify is not None:
        prop.verify(value)


def verify_json_value(prop: Param, value: Any) -> None:
    if prop.type == "boolean":
        if not isinstance(value, bool):
            raise ValueError("Expected boolean value.")
    elif prop.type == "integer":
        if isinstance(value, bool) or not isinstance(value, int) or not ISIZE_MIN <= value <= ISIZE_MAX:
            raise ValueError("Expected integer value.")
        check_integer(prop, value)
    elif prop.type == "string":
        if not isinstance(value, str):
            raise ValueError("Expected string value.")
        check_string(prop, value)
    elif prop.type == "array":
        if isinstance(value, dict):
            raise ValueError("Expected array - got object.")
        if not isinstance(value, list):
            raise ValueError("Expected array - got scalar value.")
        for index, item in enumerate(value):
            try:
                verify_json_value(_items(prop), item)
            except ValueError as exc:
                raise ParameterError([(f"[{index}]", str(exc))]) from None


CALENDAR_EVENT = string(verify=verify_calendar_event)
