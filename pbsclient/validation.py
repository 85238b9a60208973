"""Check identifiers against PBS's own rules before any PBS call.

The regexes and limits are PBS 4.2's (pbs-api-types / proxmox-schema, see the
API reference). Each ``validate_*`` returns the (possibly normalised) value or
raises ``PbsValidationError`` (a ``ValueError``) with a message a person can act
on, e.g. "token id 'acme@pbs!x...' is 70 characters; PBS allows at most 64".
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_ACL_PATH_LENGTH",
    "MAX_AUTHID_LENGTH",
    "MAX_NAMESPACE_DEPTH",
    "MAX_NAMESPACE_LENGTH",
    "ROLES",
    "PbsValidationError",
    "validate_acl_path",
    "validate_authid",
    "validate_calendar_event",
    "validate_fingerprint",
    "validate_job_id",
    "validate_namespace",
    "validate_namespace_component",
    "validate_remote_name",
    "validate_role",
    "validate_store_name",
    "validate_token_name",
    "validate_tokenid",
    "validate_userid",
]


class PbsValidationError(ValueError):
    """A value PBS would refuse; the message says why and what PBS allows."""


SAFE_ID = r"[A-Za-z0-9_][A-Za-z0-9._\-]*"
_SAFE_ID_RE = re.compile(rf"^{SAFE_ID}$")
# Userid name part: anything but whitespace, ':', '/' and control characters.
_USER_NAME_RE = re.compile(r"^[^\s:/\x00-\x1f\x7f]+$")
_FINGERPRINT_RE = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){31}$")
_ACL_PATH_RE = re.compile(rf"^(?:/|(?:/{SAFE_ID})+)$")

MAX_AUTHID_LENGTH = 64
MAX_NAMESPACE_DEPTH = 7
MAX_NAMESPACE_LENGTH = 256  # 32 * 8 in pbs-api-types
MAX_NAMESPACE_COMPONENT = 32
MAX_ACL_PATH_LENGTH = 128

_SAFE_ID_HELP = "letters, digits, '_', '.' and '-', not starting with '.' or '-'"


def _fail(message: str) -> PbsValidationError:
    return PbsValidationError(message)


def _check_safe_id(value: object, what: str, *, min_len: int, max_len: int | None) -> str:
    if not isinstance(value, str):
        raise _fail(f"{what} must be a string, not {type(value).__name__}")
    if len(value) < min_len:
        if not value:
            raise _fail(f"{what} is empty; PBS needs at least {min_len} characters")
        raise _fail(f"{what} '{value}' is {len(value)} characters; PBS needs at least {min_len}")
    if max_len is not None and len(value) > max_len:
        raise _fail(f"{what} '{value}' is {len(value)} characters; PBS allows at most {max_len}")
    if not _SAFE_ID_RE.fullmatch(value):
        raise _fail(f"{what} '{value}' may only contain {_SAFE_ID_HELP}")
    return value


# --- users and tokens ----------------------------------------------------------


def validate_userid(userid: str) -> str:
    """``name@realm``: 3..64 chars; realm SAFE_ID 2..32 (after the last '@'); name without
    whitespace, ':', '/' or control characters, and (portal rule) not starting with '.'."""
    if not isinstance(userid, str):
        raise _fail(f"user id must be a string, not {type(userid).__name__}")
    if "@" not in userid:
        raise _fail(f"user id '{userid}' has no realm; PBS user ids look like 'name@realm' (e.g. 'acme@pbs')")
    name, realm = userid.rsplit("@", 1)
    if not name:
        raise _fail(f"user id '{userid}' has an empty name before '@'")
    if not _USER_NAME_RE.fullmatch(name):
        raise _fail(
            f"user name '{name}' in '{userid}' contains whitespace, ':', '/' or a control character; "
            "PBS does not allow those"
        )
    if name.startswith("."):
        raise _fail(
            f"user name '{name}' starts with '.'; PBS refuses URL path components starting with '.', "
            "so such a user could not be managed through the API"
        )
    if len(realm) < 2 or len(realm) > 32 or not _SAFE_ID_RE.fullmatch(realm):
        raise _fail(f"realm '{realm}' in '{userid}' must be 2..32 characters of {_SAFE_ID_HELP}")
    if len(userid) < 3 or len(userid) > MAX_AUTHID_LENGTH:
        raise _fail(f"user id '{userid}' is {len(userid)} characters; PBS allows 3..{MAX_AUTHID_LENGTH}")
    return userid


def validate_token_name(name: str) -> str:
    """Token name (the part after '!'): SAFE_ID. The full token id limit is checked separately."""
    return _check_safe_id(name, "token name", min_len=1, max_len=None)


def validate_tokenid(tokenid: str) -> str:
    """Full token id ``user@realm!name``: a valid userid, a valid token name, <= 64 chars.

    PBS only enforces the 64-character limit when it writes user.cfg, so a
    too-long id fails late and confusingly; we refuse it here.
    """
    if not isinstance(tokenid, str):
        raise _fail(f"token id must be a string, not {type(tokenid).__name__}")
    if "!" not in tokenid:
        raise _fail(f"token id '{tokenid}' has no '!'; PBS token ids look like 'user@realm!name'")
    userid, name = tokenid.rsplit("!", 1)
    validate_userid(userid)
    validate_token_name(name)
    if len(tokenid) > MAX_AUTHID_LENGTH:
        raise _fail(f"token id '{tokenid}' is {len(tokenid)} characters; PBS allows at most {MAX_AUTHID_LENGTH}")
    return tokenid


def validate_authid(auth_id: str) -> str:
    """A user id or a token id (what PBS calls an Authid, e.g. for ACLs)."""
    if isinstance(auth_id, str) and "!" in auth_id:
        return validate_tokenid(auth_id)
    return validate_userid(auth_id)


# --- namespaces ------------------------------------------------------------------


def validate_namespace_component(name: str) -> str:
    """One namespace level: SAFE_ID, 1..32 chars."""
    return _check_safe_id(name, "namespace name", min_len=1, max_len=MAX_NAMESPACE_COMPONENT)


def validate_namespace(ns: str, *, allow_root: bool = True) -> str:
    """A namespace path like ``clients/acme``: components joined by '/', at most 7 deep,
    at most 256 chars. The root namespace is ``""`` (refused with allow_root=False)."""
    if not isinstance(ns, str):
        raise _fail(f"namespace must be a string, not {type(ns).__name__}")
    if ns == "":
        if not allow_root:
            raise _fail("the root namespace cannot be used here; give a namespace like 'clients/acme'")
        return ns
    if len(ns) > MAX_NAMESPACE_LENGTH:
        raise _fail(f"namespace '{ns[:40]}...' is {len(ns)} characters; PBS allows at most {MAX_NAMESPACE_LENGTH}")
    parts = ns.split("/")
    if len(parts) > MAX_NAMESPACE_DEPTH:
        raise _fail(f"namespace '{ns}' is {len(parts)} levels deep; PBS allows at most {MAX_NAMESPACE_DEPTH}")
    for part in parts:
        if part == "":
            raise _fail(f"namespace '{ns}' has an empty level (leading, trailing or doubled '/')")
        try:
            validate_namespace_component(part)
        except PbsValidationError as exc:
            raise _fail(f"namespace '{ns}': {exc}") from None
    return ns


# --- ACL paths ---------------------------------------------------------------------

_ACCESS_CHILDREN = {"acl", "users", "domains"}
_SYSTEM_LEAVES = {"certificates", "disks", "log", "notifications", "status", "tasks", "time"}
_SYSTEM_WITH_ONE = {"services", "s3-endpoint", "encryption-keys"}
_TAPE_WITH_ONE = {"device", "pool", "job"}


def _acl_shape_ok(parts: list[str]) -> bool:
    """Mirror of PBS's check_acl_path (pbs-config/src/acl.rs)."""
    if not parts:
        return True  # "/"
    head, rest = parts[0], parts[1:]
    n = len(rest)
    if head == "access":
        if n == 0:
            return True
        if rest[0] in _ACCESS_CHILDREN:
            return n == 1
        if rest[0] == "openid":
            return n <= 2
        return False
    if head == "datastore":
        # /datastore, /datastore/{store}, /datastore/{store}/{ns1}/.../{ns7}
        return n <= 1 + MAX_NAMESPACE_DEPTH
    if head == "remote":
        # /remote, /remote/{remote}, /remote/{remote}/{store}[/{ns...7}]
        return n <= 2 + MAX_NAMESPACE_DEPTH
    if head == "system":
        if n == 0:
            return True
        if rest[0] in _SYSTEM_LEAVES:
            return n == 1
        if rest[0] in _SYSTEM_WITH_ONE:
            return n <= 2
        if rest[0] == "network":
            if n == 1:
                return True
            if rest[1] == "dns":
                return n == 2
            if rest[1] == "interfaces":
                return n <= 3
        return False
    if head == "tape":
        if n == 0:
            return True
        return rest[0] in _TAPE_WITH_ONE and n <= 2
    return False


def validate_acl_path(path: str) -> str:
    """An ACL path: ``/`` or ``/SAFE_ID/...``, 1..128 chars, and one of the shapes PBS
    accepts (``/datastore/{store}/{ns...}``, ``/remote/...``, ``/system/...``, ...).

    Namespace components follow the store directly: namespace ``acme/prod`` on
    store ``s1`` is ``/datastore/s1/acme/prod``.
    """
    if not isinstance(path, str):
        raise _fail(f"ACL path must be a string, not {type(path).__name__}")
    if not path:
        raise _fail("ACL path is empty; use '/' for the root")
    if len(path) > MAX_ACL_PATH_LENGTH:
        raise _fail(f"ACL path '{path[:40]}...' is {len(path)} characters; PBS allows at most {MAX_ACL_PATH_LENGTH}")
    if not _ACL_PATH_RE.fullmatch(path):
        raise _fail(
            f"ACL path '{path}' is malformed; it must start with '/' and each part must be "
            f"{_SAFE_ID_HELP} (no trailing '/')"
        )
    parts = [p for p in path.split("/") if p]
    if not _acl_shape_ok(parts):
        raise _fail(
            f"ACL path '{path}' is not one PBS accepts; datastore paths look like "
            "'/datastore/<store>' or '/datastore/<store>/<ns1>/.../<ns7>' (at most 7 namespace levels)"
        )
    return path


# The roles PBS 4.2 knows (pbs-api-types acl.rs); PUT /access/acl takes one of these.
ROLES = (
    "Admin", "Audit", "NoAccess", "DatastoreAdmin", "DatastoreReader", "DatastoreBackup",
    "DatastorePowerUser", "DatastoreAudit", "RemoteAudit", "RemoteAdmin", "RemoteSyncOperator",
    "RemoteSyncPushOperator", "RemoteDatastorePowerUser", "RemoteDatastoreAdmin", "TapeAudit",
    "TapeAdmin", "TapeOperator", "TapeReader",
)  # fmt: skip


def validate_role(role: str) -> str:
    """A PBS role name (case-sensitive), e.g. ``DatastoreBackup``."""
    if role not in ROLES:
        close = [r for r in ROLES if r.lower() == str(role).lower()]
        hint = f" (did you mean '{close[0]}'?)" if close else f"; PBS knows: {', '.join(ROLES)}"
        raise _fail(f"role '{role}' is not a PBS role{hint}")
    return role


# --- jobs, stores, remotes ------------------------------------------------------------


def validate_job_id(job_id: str) -> str:
    """Prune/sync job id: SAFE_ID, 3..32 chars."""
    return _check_safe_id(job_id, "job id", min_len=3, max_len=32)


def validate_store_name(store: str) -> str:
    """Datastore name: SAFE_ID, 3..32 chars."""
    return _check_safe_id(store, "datastore name", min_len=3, max_len=32)


def validate_remote_name(name: str) -> str:
    """Remote name: SAFE_ID, 3..32 chars."""
    return _check_safe_id(name, "remote name", min_len=3, max_len=32)


# --- TLS fingerprint ---------------------------------------------------------------


def validate_fingerprint(fingerprint: str) -> str:
    """A SHA-256 certificate fingerprint in PBS format: 32 hex pairs joined by ':'.

    Upper-case input is accepted; the result is lower case (as PBS writes it).
    """
    if not isinstance(fingerprint, str):
        raise _fail(f"fingerprint must be a string, not {type(fingerprint).__name__}")
    value = fingerprint.strip()
    if not _FINGERPRINT_RE.fullmatch(value):
        hex_only = re.sub(r"[^0-9a-fA-F]", "", value)
        hint = ""
        if len(hex_only) == 64 and ":" not in value:
            hint = " (it looks like the hex digits are there but the ':' separators are missing)"
        elif hex_only and len(hex_only) != 64:
            hint = f" (it has {len(hex_only)} hex digits; a SHA-256 fingerprint has 64)"
        raise _fail(
            f"fingerprint '{value[:120]}' is not a SHA-256 fingerprint in PBS format: "
            f"32 hex pairs separated by ':', e.g. 'ab:01:...:ff' (95 characters){hint}"
        )
    return value.lower()


# --- calendar events (systemd style, as proxmox-time parses them) ---------------------

_SPECIAL_EVENTS = {
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "annually",
    "quarterly",
    "semiannually",
    "semi-annually",
}
_WEEKDAYS = {
    "mon": 0, "monday": 0, "tue": 1, "tuesday": 1, "wed": 2, "wednesday": 2,
    "thu": 3, "thursday": 3, "fri": 4, "friday": 4, "sat": 5, "saturday": 5,
    "sun": 6, "sunday": 6,
}  # fmt: skip
_NUM = re.compile(r"^\d+$")


def _check_value_list(text: str, what: str, low: int, high: int, event: str) -> None:
    """A comma list of ``*``, ``N``, ``N..M``, ``N/R``, ``*/R`` or ``N..M/R``."""
    for item in text.split(","):
        if item == "":
            raise _fail(f"calendar event '{event}': empty {what} value")
        base, _, repeat = item.partition("/")
        if repeat and (not _NUM.fullmatch(repeat) or int(repeat) == 0):
            raise _fail(f"calendar event '{event}': repetition '/{repeat}' in {what} must be a positive number")
        if base == "*":
            continue
        start, dots, end = base.partition("..")
        for number in (start, end) if dots else (start,):
            if not _NUM.fullmatch(number):
                raise _fail(f"calendar event '{event}': '{item}' is not a valid {what}")
            if not low <= int(number) <= high:
                raise _fail(f"calendar event '{event}': {what} {int(number)} is outside {low}..{high}")
        if dots and int(start) > int(end):
            raise _fail(f"calendar event '{event}': {what} range '{base}' runs backwards")


def _check_weekdays(text: str, event: str) -> None:
    for item in text.split(","):
        start, dots, end = item.partition("..")
        for day in (start, end) if dots else (start,):
            if day not in _WEEKDAYS:
                raise _fail(f"calendar event '{event}': '{day}' is not a weekday (use mon, tue, ... sun)")


def _check_time(text: str, event: str) -> None:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise _fail(f"calendar event '{event}': time '{text}' must be HH:MM or HH:MM:SS")
    _check_value_list(parts[0], "hour", 0, 23, event)
    _check_value_list(parts[1], "minute", 0, 59, event)
    if len(parts) == 3:
        _check_value_list(parts[2], "second", 0, 59, event)


def _check_date(text: str, event: str) -> None:
    parts = text.split("-")
    if len(parts) == 2:
        parts = ["*", *parts]
    if len(parts) != 3:
        raise _fail(f"calendar event '{event}': date '{text}' must be YYYY-MM-DD or MM-DD")
    _check_value_list(parts[0], "year", 1970, 9999, event)
    _check_value_list(parts[1], "month", 1, 12, event)
    _check_value_list(parts[2], "day", 1, 31, event)


def validate_calendar_event(event: str) -> str:
    """A systemd-style calendar event as PBS schedules take them.

    Accepts the keywords (``daily``, ``hourly``, ``weekly``, ``monthly``,
    ``yearly``, ``minutely``, ...) and ``[weekdays] [date] [time]`` forms such
    as ``02:30``, ``*:0/30``, ``sat 03:00``, ``mon..fri 02:00``,
    ``mon,wed,fri 22:15``, ``*-*-01 04:00``. PBS has the final word (it parses
    with proxmox-time); this catches typos before a call.
    """
    if not isinstance(event, str):
        raise _fail(f"calendar event must be a string, not {type(event).__name__}")
    text = event.strip()
    if not text:
        raise _fail("calendar event is empty; use e.g. 'daily', '02:30' or 'mon..fri 02:00'")
    lowered = text.lower()
    if lowered in _SPECIAL_EVENTS:
        return text
    tokens = lowered.split()
    if len(tokens) > 3:
        raise _fail(f"calendar event '{event}' has too many parts; expected '[weekdays] [date] [time]'")
    seen_time = seen_date = False
    for index, token in enumerate(tokens):
        if token in _SPECIAL_EVENTS:
            raise _fail(f"calendar event '{event}': '{token}' can only be used on its own")
        if token[0].isalpha() and token[:3] in _WEEKDAYS:
            if index != 0:
                raise _fail(f"calendar event '{event}': weekdays must come first")
            _check_weekdays(token, event)
        elif ":" in token:
            if seen_time:
                raise _fail(f"calendar event '{event}' has two times")
            _check_time(token, event)
            seen_time = True
        elif "-" in token and not seen_time:
            if seen_date:
                raise _fail(f"calendar event '{event}' has two dates")
            _check_date(token, event)
            seen_date = True
        else:
            raise _fail(
                f"calendar event '{event}': cannot understand '{token}'; expected e.g. 'daily', "
                "'02:30', '*:0/30', 'sat 03:00' or 'mon..fri 02:00'"
            )
    return text
