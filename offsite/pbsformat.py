"""PBS value formats used by sync jobs, as PBS parses and stores them (no Django, no I/O).

- group filters: ``[exclude:|include:]<type:<vm|ct|host>|group:TYPE/ID|regex:RE>``; PBS stores
  ``include:type:vm`` as ``type:vm`` (the include prefix is the default and is dropped);
- byte sizes (rate-in, burst-in): ``10MiB`` is stored as ``10 MiB``;
- deterministic ids for the remotes and jobs the portal makes (SAFE_ID, 3..32 chars).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-]*$")
BACKUP_TYPES = ("vm", "ct", "host")
_BACKUP_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-]*$")


@dataclass(frozen=True)
class GroupFilter:
    """One parsed group filter: kind is "type", "group" or "regex"."""

    kind: str
    value: str
    exclude: bool = False

    def __str__(self) -> str:
        # PBS's Display: the exclude prefix is kept, include is implicit.
        return f"{'exclude:' if self.exclude else ''}{self.kind}:{self.value}"

    def matches(self, backup_type: str, backup_id: str) -> bool:
        if self.kind == "type":
            return backup_type == self.value
        if self.kind == "group":
            return f"{backup_type}/{backup_id}" == self.value
        # PBS uses Regex::is_match: unanchored search on "type/id".
        return re.search(self.value, f"{backup_type}/{backup_id}") is not None


def parse_group_filter(text: str) -> GroupFilter:
    """Parse one group-filter value; raise ValueError with PBS's wording when it is invalid."""
    exclude = False
    rest = text
    if rest.startswith("exclude:"):
        exclude, rest = True, rest[len("exclude:") :]
    elif rest.startswith("include:"):
        rest = rest[len("include:") :]
    kind, sep, value = rest.partition(":")
    if not sep:
        raise ValueError(
            "input doesn't match expected format '<group:GROUP||type:<vm|ct|host>|regex:REGEX>'"
        )
    if kind == "type":
        if value not in BACKUP_TYPES:
            raise ValueError(f"unable to parse backup type '{value}'")
    elif kind == "group":
        btype, slash, bid = value.partition("/")
        if not slash or btype not in BACKUP_TYPES or not _BACKUP_ID_RE.fullmatch(bid):
            raise ValueError("value does not match the regex pattern")
    elif kind == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex parse error: {exc}") from exc
    else:
        raise ValueError(f"expected 'group', 'type' or 'regex' prefix, got '{kind}'")
    return GroupFilter(kind=kind, value=value, exclude=exclude)


def normalize_group_filters(values: list[str]) -> list[str]:
    """The stored form of a group-filter list (``include:type:vm`` -> ``type:vm``)."""
    return [str(parse_group_filter(v)) for v in values]


def group_passes(filters: list[GroupFilter], backup_type: str, backup_id: str) -> bool:
    """PBS's apply_filters: included by any include filter (or none given), and by no exclude."""
    includes = [f for f in filters if not f.exclude]
    included = not includes or any(f.matches(backup_type, backup_id) for f in includes)
    return included and not any(f.matches(backup_type, backup_id) for f in filters if f.exclude)


_SIZE_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "PB": 10**15,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "PiB": 2**50,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_byte_size(text: str) -> tuple[float, str]:
    """Parse a PBS byte size (``10MiB``, ``1.5 GB``, ``4096``) into (number, unit)."""
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise ValueError(f"unable to parse size '{text}'")
    number, unit = float(match.group(1)), match.group(2) or "B"
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown size unit '{unit}'")
    return number, unit


def normalize_byte_size(text: str) -> str:
    """The stored form: number, one space, unit (``10MiB`` -> ``10 MiB``)."""
    number, unit = parse_byte_size(text)
    rounded = round(number, 3)
    shown = str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"
    return f"{shown} {unit}"


def byte_size_bytes(text: str) -> int:
    number, unit = parse_byte_size(text)
    return int(number * _SIZE_UNITS[unit])


def ns_join(*parts: str) -> str:
    """Join namespace paths, skipping empty ones (the root)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def ns_depth(ns: str) -> int:
    return len([c for c in ns.split("/") if c]) if ns else 0


def bounded_id(prefix: str, name: str, *, limit: int = 32) -> str:
    """``prefix + name`` as a SAFE_ID of at most ``limit`` chars; long names get a hash tail so
    distinct names never collide after truncation."""
    candidate = f"{prefix}{name}"
    if len(candidate) <= limit:
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = candidate[: limit - len(digest) - 1].rstrip("-._")
    return f"{head}-{digest}"


def datastore_job_id(policy_id: int) -> str:
    return f"offsite-{policy_id}"


def tenant_job_id(policy_id: int, slug: str) -> str:
    # The policy id keeps two policies of one tenant (two targets on one host) apart.
    return bounded_id(f"offsite-{policy_id}-", slug)


def remote_name_for(source_host_name: str) -> str:
    return bounded_id("portal-", source_host_name)
