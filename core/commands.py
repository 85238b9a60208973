"""Shared bits of the pbshost and tenant commands: --json output and exit codes."""

from __future__ import annotations

import json
import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

EXIT_FAILED = 1  # the operation ran and failed (PBS error, failed run)
EXIT_USAGE = 2  # bad input: nothing was done


def json_parent() -> ArgumentParser:
    parent = ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="Machine-readable output on stdout.")
    return parent


def validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


def fail(message: str, *, code: int = EXIT_FAILED) -> CommandError:
    return CommandError(message, returncode=code)


def emit(command: BaseCommand, options: dict[str, Any], data: Any, text: str) -> None:
    """Print ``data`` as JSON with --json, else ``text``."""
    if options.get("json"):
        command.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        command.stdout.write(text)


def read_secret_file(path: str) -> str:
    """A secret from a file ('-' = stdin), stripped; never from the command line."""
    if path == "-":
        import sys

        value = sys.stdin.readline().strip()
    else:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise fail(f"cannot read {path}: {exc.strerror}", code=EXIT_USAGE) from exc
    if not value:
        raise fail(f"{path} is empty", code=EXIT_USAGE)
    return value


def check_new_file(path: str) -> Path:
    target = Path(path)
    if target.exists():
        raise fail(f"{path} exists; credentials are only written to a new file", code=EXIT_USAGE)
    if not target.parent.exists():
        raise fail(f"directory {target.parent} does not exist", code=EXIT_USAGE)
    return target


def write_new_private_file(path: Path, content: str) -> None:
    """Create ``path`` (it must not exist) readable by the owner only, and write it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
