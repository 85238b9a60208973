"""Endpoint building blocks: a Call (method, path, parameters, parser) and its helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from pbsclient import validation as v

Method = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True, slots=True)
class Call[T]:
    """One PBS request: ``path`` is human-readable (for logs and errors), ``url`` is the
    percent-encoded form below /api2/json. ``secrets`` are parameter values that must be
    scrubbed from any message (e.g. a remote's password)."""

    method: Method
    path: str
    url: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()


def _path(template: str, *args: str) -> tuple[str, str]:
    return template.format(*args), template.format(*(quote(arg, safe="") for arg in args))


def _call[T](
    method: Method,
    template: str,
    args: Sequence[str],
    parse: Callable[[Any], T],
    params: Mapping[str, Any] | None = None,
    secrets: tuple[str, ...] = (),
) -> Call[T]:
    path, url = _path(template, *args)
    clean = {key: value for key, value in (params or {}).items() if value is not None}
    return Call(method=method, path=path, url=url, parse=parse, params=clean, secrets=secrets)


def _list_of[M](parse: Callable[[Any], M]) -> Callable[[Any], list[M]]:
    def parse_list(data: Any) -> list[M]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise TypeError(f"expected a JSON list, got {type(data).__name__}")
        return [parse(item) for item in data]

    return parse_list


def _none(_: Any) -> None:
    return None


def _string(data: Any) -> str:
    if not isinstance(data, str):
        raise TypeError(f"expected a string, got {type(data).__name__}")
    return data


def _optional_string(data: Any) -> str | None:
    return None if data is None else _string(data)


def _delete_list(delete: Iterable[str] | None, allowed: Iterable[str], what: str) -> list[str] | None:
    """PBS's ``delete`` array (unset these properties); accepts snake_case names too."""
    if delete is None:
        return None
    if isinstance(delete, str):
        delete = [delete]
    allowed_set = set(allowed)
    names = [name.replace("_", "-") for name in delete]
    unknown = [name for name in names if name not in allowed_set]
    if unknown:
        raise v.PbsValidationError(
            f"cannot delete {', '.join(map(repr, unknown))} from a {what}; PBS allows: {', '.join(sorted(allowed_set))}"
        )
    return names or None
