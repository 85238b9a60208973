"""Request checking and reply formatting as the PBS REST server does it."""

from __future__ import annotations

import json
from typing import Any

from pbssim.params import (
    check_string,
    compile_pattern,
)
from pbssim.simulator.tickets import JSON_CONTENT_TYPE, Reply


def synthetic_files(backup_type: str, size: int | None) -> list[tuple[str, int | None]]:
    """Plausible archive names whose sizes add up to ``size`` (index.json.blob included)."""
    names = {
        "vm": ("index.json.blob", "qemu-server.conf.blob", "drive-scsi0.img.fidx"),
        "ct": ("index.json.blob", "pct.conf.blob", "root.pxar.didx"),
        "host": ("index.json.blob", "catalog.pcat1.didx", "root.pxar.didx"),
    }[backup_type]
    if size is None:
        return [(name, None) for name in names[1:]]
    manifest = min(size, 512)
    config = min(size - manifest, 400)
    return [(names[0], manifest), (names[1], config), (names[2], size - manifest - config)]


def _check(param: Any, value: Any, label: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{label} must be a string")
    try:
        check_string(param, value)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None


def _check_pattern(pattern: str, value: Any, label: str) -> None:
    if not isinstance(value, str) or not compile_pattern(pattern).match(value):
        raise ValueError(f"{label}: invalid value {value!r}")


def _parse_cookies(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            cookies.setdefault(name, value)
    return cookies


def _error(status: int, message: str) -> Reply:
    return status, {"Content-Type": JSON_CONTENT_TYPE}, message.encode()


def _format_error(extjs: bool, status: int, message: str, errors: list[tuple[str, str]] | None = None) -> Reply:
    """Plain-text body with a JSON Content-Type; on /api2/extjs a 200 with success=false."""
    if not extjs:
        return _error(status, message)
    body: dict[str, Any] = {
        "success": False,
        "status": status,
        "message": "parameter verification errors" if errors else message,
        "errors": dict(errors or []),
        "data": None,
    }
    return 200, {"Content-Type": JSON_CONTENT_TYPE}, json.dumps(body, separators=(",", ":")).encode()
