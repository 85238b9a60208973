"""Remotes and sync jobs in the simulator: parameter types as PBS declares them, the stored
forms (remote.cfg, sync.cfg), per-simulator state and schedules."""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, field
from typing import Any

from pbssim import calendar
from pbssim.params import (
    AUTHID,
    CALENDAR_EVENT,
    COMMENT,
    MAX_NAMESPACE_DEPTH,
    NAMESPACE,
    SAFE_ID_RE,
    SINGLE_LINE_COMMENT_RE,
    Param,
    array,
    boolean,
    integer,
    string,
)
from pbssim.state import (
    State,
)

EXTENSION = "sync"


# DNS_NAME_OR_IP_SCHEMA (proxmox-schema api_types), built from its parts as PBS does.
_LABEL = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?)"


_DNS_NAME = rf"(?:(?:{_LABEL}\.)*{_LABEL})"


_OCTET = r"(?:25[0-5]|(?:2[0-4]|1[0-9]|[1-9])?[0-9])"


_IPV4 = rf"(?:(?:{_OCTET}\.){{3}}{_OCTET})"


_H16 = r"(?:[0-9a-fA-F]{1,4})"


_LS32 = rf"(?:(?:{_IPV4}|{_H16}:{_H16}))"


_IPV6 = (
    r"(?:"
    rf"(?:(?:(?:{_H16}:){{6}}){_LS32})|"
    rf"(?:(?:::(?:{_H16}:){{5}}){_LS32})|"
    rf"(?:(?:(?:{_H16})?::(?:{_H16}:){{4}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,3}}{_H16})?::(?:{_H16}:){{1}}){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,4}}{_H16})?::){_LS32})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,5}}{_H16})?::){_H16})|"
    rf"(?:(?:(?:(?:{_H16}:){{0,6}}{_H16})?::))"
    r")"
)


DNS_NAME_OR_IP_RE = rf"^(?:{_DNS_NAME}|(?:{_IPV4}|{_IPV6}))$"


def _verify_group_filter(value: str) -> None:
    parse_group_filter(value)


def _verify_byte_size(value: str) -> None:
    parse_byte_size(value)


REMOTE_ID = string(pattern=SAFE_ID_RE, min_length=3, max_length=32)


FINGERPRINT = string(pattern=r"^(?:[0-9a-fA-F][0-9a-fA-F])(?::[0-9a-fA-F][0-9a-fA-F]){31}$", optional=True)


HOST = string(pattern=DNS_NAME_OR_IP_RE)


PORT = integer(optional=True)  # a u16; the published schema gives no range


REMOTE_PASSWORD = string(pattern=SINGLE_LINE_COMMENT_RE, min_length=1, max_length=1024)


GROUP_FILTER = string(verify=_verify_group_filter)


BYTE_SIZE = string(min_length=1, max_length=64, verify=_verify_byte_size, optional=True)


REMOTE_DELETABLE = ("comment", "fingerprint", "port", "use-node-proxy")


_JOB_OPTIONAL: dict[str, Param] = {
    "ns": NAMESPACE,
    "owner": AUTHID.opt(),
    "remote": REMOTE_ID.opt(),
    "remote-ns": NAMESPACE,
    "remove-vanished": boolean(default=False),
    "max-depth": integer(minimum=0, maximum=MAX_NAMESPACE_DEPTH, optional=True),
    "schedule": CALENDAR_EVENT.opt(),
    "group-filter": array(GROUP_FILTER),
    "transfer-last": integer(minimum=1, optional=True),
    "resync-corrupt": boolean(),
    "encrypted-only": boolean(),
    "verified-only": boolean(),
    "run-on-mount": boolean(),
    "unmount-on-done": boolean(),
    "sync-direction": string(enum=("pull", "push"), optional=True, default="pull"),
    "worker-threads": integer(minimum=1, maximum=32, optional=True, default=1),
    "rate-in": BYTE_SIZE,
    "burst-in": BYTE_SIZE,
    "rate-out": BYTE_SIZE,
    "burst-out": BYTE_SIZE,
    "comment": COMMENT,
    "active-encryption-key": string(pattern=SAFE_ID_RE, min_length=3, max_length=32, optional=True),
    "associated-key": array(string(pattern=SAFE_ID_RE, min_length=3, max_length=32)),
}


JOB_DELETABLE = (
    "remote", "owner", "comment", "schedule", "remove-vanished", "group-filter", "rate-in",
    "burst-in", "rate-out", "burst-out", "ns", "remote-ns", "max-depth", "transfer-last",
    "encrypted-only", "verified-only", "run-on-mount", "unmount-on-done", "sync-direction",
    "worker-threads", "active-encryption-key", "associated-key",
)  # fmt: skip


# The order PBS's SyncJobConfig serialises in (config lines and replies).
_JOB_ORDER = (
    "id", "store", "ns", "owner", "remote", "remote-store", "remote-ns", "remove-vanished",
    "max-depth", "comment", "schedule", "group-filter", "transfer-last", "resync-corrupt",
    "encrypted-only", "verified-only", "run-on-mount", "unmount-on-done", "sync-direction",
    "worker-threads", "rate-in", "burst-in", "rate-out", "burst-out", "active-encryption-key",
    "associated-key",
)  # fmt: skip


BACKUP_TYPES = ("vm", "ct", "host")


@dataclass(frozen=True)
class GroupFilter:
    kind: str  # "type" | "group" | "regex"
    value: str
    exclude: bool = False

    def __str__(self) -> str:
        return f"{'exclude:' if self.exclude else ''}{self.kind}:{self.value}"

    def matches(self, backup_type: str, backup_id: str) -> bool:
        if self.kind == "type":
            return backup_type == self.value
        if self.kind == "group":
            return f"{backup_type}/{backup_id}" == self.value
        return re.search(self.value, f"{backup_type}/{backup_id}") is not None


def parse_group_filter(text: str) -> GroupFilter:
    """``GroupFilter::from_str`` (pbs-api-types jobs.rs)."""
    exclude = False
    rest = text
    if rest.startswith("exclude:"):
        exclude, rest = True, rest[8:]
    elif rest.startswith("include:"):
        rest = rest[8:]
    kind, sep, value = rest.partition(":")
    if not sep:
        raise ValueError("input doesn't match expected format '<group:GROUP||type:<vm|ct|host>|regex:REGEX>'")
    if kind == "type":
        if value not in BACKUP_TYPES:
            raise ValueError(f"unable to parse backup type '{value}'")
    elif kind == "group":
        btype, slash, bid = value.partition("/")
        if not slash or btype not in BACKUP_TYPES or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._\-]*", bid):
            raise ValueError("value does not match the regex pattern")
    elif kind == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex parse error: {exc}") from None
    else:
        raise ValueError(f"expected 'group', 'type' or 'regex' prefix, got '{kind}'")
    return GroupFilter(kind, value, exclude)


def apply_filters(filters: list[GroupFilter], backup_type: str, backup_id: str) -> bool:
    """``BackupGroup::apply_filters``: any include filter (or none), and no exclude filter."""
    includes = [f for f in filters if not f.exclude]
    included = not includes or any(f.matches(backup_type, backup_id) for f in includes)
    return included and not any(f.matches(backup_type, backup_id) for f in filters if f.exclude)


_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "PiB")


def parse_byte_size(text: str) -> tuple[float, str]:
    """``HumanByte::from_str``: a number with an optional unit (default bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not match:
        raise ValueError(f"unable to parse size '{text}'")
    unit = match.group(2) or "B"
    if unit not in _SIZE_UNITS:
        raise ValueError(f"unknown size unit '{unit}'")
    return float(match.group(1)), unit


def format_byte_size(text: str) -> str:
    """``HumanByte``'s Display: ``10MiB`` is stored and shown as ``10 MiB``."""
    number, unit = parse_byte_size(text)
    rounded = round(number, 3)
    shown = str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"
    return f"{shown} {unit}"


def _stored_job(values: dict[str, Any]) -> dict[str, Any]:
    """The config as PBS saves it: typed values re-serialised (filters, sizes), PBS's order."""
    out: dict[str, Any] = {}
    for key in _JOB_ORDER:
        if key not in values or values[key] is None:
            continue
        value = values[key]
        if key == "group-filter":
            value = [str(parse_group_filter(v)) for v in value]
        elif key in ("rate-in", "burst-in", "rate-out", "burst-out"):
            value = format_byte_size(value)
        out[key] = value
    return out


@dataclass
class JobState:
    """``jobstate`` file of one sync job."""

    created: int
    last_run_upid: str | None = None
    last_run_state: str | None = None
    last_run_endtime: int | None = None


@dataclass
class SyncExtension:
    remotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_states: dict[str, JobState] = field(default_factory=dict)
    task_logs: dict[str, list[str]] = field(default_factory=dict)


# Simulator -> {"host:port": Simulator reached in-process instead of over the network}.
# Kept beside the PBS state (a reset empties PBS, not the test's wiring).
_LINKS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def init_state(state: State) -> None:
    state.extensions[EXTENSION] = SyncExtension()


def snapshot_state(state: State) -> dict[str, Any]:
    ext = extension(state)
    return {
        "remotes": [dict(r) for r in ext.remotes.values()],
        "jobs": [_status(ext, job) for job in ext.jobs.values()],
    }


def extension(state: State) -> SyncExtension:
    ext = state.extensions.get(EXTENSION)
    if ext is None:
        ext = state.extensions[EXTENSION] = SyncExtension()
    return ext


def link_remote(sim: Any, address: str, remote_sim: Any) -> None:
    """Route pulls of ``sim`` to remotes at ``address`` ("host:port") to ``remote_sim``'s
    in-process transport (no socket, no TLS; every API check still applies)."""
    _LINKS.setdefault(sim, {})[address] = remote_sim


def task_log(sim: Any, upid: str) -> list[str]:
    """The log lines of a sync task (what PBS shows in the task viewer)."""
    return list(extension(sim.state).task_logs.get(upid, []))


def _direction(job: dict[str, Any]) -> str:
    return job.get("sync-direction") or "pull"


def _status(ext: SyncExtension, job: dict[str, Any]) -> dict[str, Any]:
    out = dict(job)
    js = ext.job_states.get(job["id"])
    if js is None:
        return out
    last = js.created
    if js.last_run_upid is not None:
        out["last-run-upid"] = js.last_run_upid
    if js.last_run_state is not None:
        out["last-run-state"] = js.last_run_state
        out["last-run-endtime"] = js.last_run_endtime
        last = js.last_run_endtime or last
    schedule = job.get("schedule")
    if schedule:
        nxt = next_event(schedule, last)
        if nxt is not None:
            out["next-run"] = nxt
    return out


def next_event(spec: str, after: int) -> int | None:
    """``compute_next_event`` of a job's schedule after ``after`` (None if it never runs)."""
    try:
        return calendar.next_event(calendar.parse_calendar_event(spec), after)
    except ValueError:
        return None
