"""Typed readers shared by the response models: PBS answers parsed at the boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

Json = Mapping[str, Any]


def _obj(data: object) -> Json:
    if type(data) is dict:  # fast path: what json.loads produces (ABC checks are slow)
        return data
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _str(data: Json, key: str) -> str:
    value = data[key]
    if type(value) is not str:
        raise TypeError(f"'{key}' should be a string, got {type(value).__name__}")
    return value


def _opt_str(data: Json, key: str) -> str | None:
    value = data.get(key)
    if value is None or type(value) is str:
        return value
    if not isinstance(value, str):
        raise TypeError(f"'{key}' should be a string, got {type(value).__name__}")
    return value


def _int(data: Json, key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if type(value) is int:
        return value
    if value is None:
        raise KeyError(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"'{key}' should be an integer, got {type(value).__name__}")
    return int(value)


def _opt_int(data: Json, key: str) -> int | None:
    value = data.get(key)
    if value is None or type(value) is int:
        return value
    return _int(data, key)


def _bool(data: Json, key: str, default: bool) -> bool:
    """PBS sends JSON booleans; older configs may carry 0/1 or "1"/"true"."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        return value.lower() in {"1", "true", "yes", "on"}
    raise TypeError(f"'{key}' should be a boolean, got {value!r}")


def _str_tuple(data: Json, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):  # a single value where PBS usually sends a list
        return (value,)
    if not isinstance(value, list):
        raise TypeError(f"'{key}' should be a list, got {type(value).__name__}")
    return tuple(str(item) for item in value)


def _expire(data: Json) -> int | None:
    """PBS: missing or 0 = never expires. We return None for "never"."""
    value = _opt_int(data, "expire")
    return value or None


def _extra(data: Json, known: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in known}


def _extra_field() -> Any:
    return field(default_factory=dict, compare=False, repr=False)
