"""Offsite building blocks: constants, errors, the PBS client and the sync options rule."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from offsite.pbsformat import (
    normalize_byte_size,
    normalize_group_filters,
    ns_depth,
)
from pbsclient import validation

log = logging.getLogger(__name__)


PULL_TOKEN_NAME = "pull"  # noqa: S105 (a token name, not a secret)


PULL_ROLE = "DatastoreReader"


ROOT_AUTH_ID = "root@pam"


MAX_NAMESPACE_DEPTH = 7


class OffsiteError(Exception):
    """An offsite operation could not be done; ``str()`` says what and why (never a secret).
    ``policy_id`` is set when a policy was saved but PBS could not be converged yet."""

    policy_id: int | None = None

    def hint(self) -> str:
        if self.policy_id is None:
            return str(self)
        return f"{self} (policy {self.policy_id} is saved: fix this, then apply it again)"


@dataclass(frozen=True)
class MissingPrivilege:
    host: str
    auth_id: str
    privilege: str
    path: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.auth_id} lacks {self.privilege} on {self.path} on host {self.host}"
            f" ({self.reason})"
        )


class PrivilegeMissing(OffsiteError):
    """PBS would refuse the sync job: names each missing privilege, path and reason."""

    def __init__(self, missing: list[MissingPrivilege]) -> None:
        self.missing = missing
        super().__init__("missing privileges: " + "; ".join(str(m) for m in missing))


def _client(host: Any, purpose: str = "automation") -> Any:
    from tenants.pbs import client_for_host

    return client_for_host(host, purpose=purpose)


def _host_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise OffsiteError(f"host URL {url!r} has no host name")
    return parts.hostname, parts.port or 8007


def _check(errors: dict[str, str], name: str, func: Any, value: Any) -> None:
    try:
        func(value)
    except ValueError as exc:
        errors[name] = str(exc)


def sync_options_clean(
    *,
    schedule: str = "",
    rate_in: str = "",
    burst_in: str = "",
    transfer_last: int | None = None,
    group_filters: Iterable[str] = (),
    owner: str = "",
    max_depth: int | None = None,
    target_ns: str = "",
    remote_ns: str = "",
) -> dict[str, Any]:
    """Validate sync job options as PBS would and return their stored forms.

    Raises ValidationError (field -> message). Stored forms follow PBS: ``include:type:vm``
    becomes ``type:vm``, ``10MiB`` becomes ``10 MiB``.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    if schedule:
        _check(errors, "schedule", validation.validate_calendar_event, schedule)
    cleaned["schedule"] = schedule
    for name, value in (("rate_in", rate_in), ("burst_in", burst_in)):
        try:
            cleaned[name] = normalize_byte_size(value) if value else ""
        except ValueError as exc:
            errors[name] = str(exc)
    if transfer_last is not None and transfer_last < 1:
        errors["transfer_last"] = f"value must have a minimum value of 1 (got {transfer_last})"
    cleaned["transfer_last"] = transfer_last
    try:
        cleaned["group_filters"] = normalize_group_filters([g for g in group_filters if g])
    except ValueError as exc:
        errors["group_filters"] = str(exc)
    if owner:
        _check(
            errors,
            "owner",
            validation.validate_tokenid if "!" in owner else validation.validate_userid,
            owner,
        )
    cleaned["owner"] = owner
    if max_depth is not None and not 0 <= max_depth <= MAX_NAMESPACE_DEPTH:
        errors["max_depth"] = "max-depth must be between 0 and 7"
    for name, ns in (("target_ns", target_ns), ("remote_ns", remote_ns)):
        if ns:
            _check(errors, name, validation.validate_namespace, ns)
        if max_depth is not None and ns and ns_depth(ns) + max_depth > MAX_NAMESPACE_DEPTH:
            errors.setdefault(
                "max_depth",
                f"namespace '{ns}' depth {ns_depth(ns)} plus max-depth {max_depth} exceeds 7",
            )
    cleaned["max_depth"] = max_depth
    cleaned["target_ns"] = target_ns.strip("/")
    if errors:
        raise ValidationError(errors)
    return cleaned
