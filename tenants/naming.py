"""Every PBS name the portal derives from a tenant's slug, and the rules that keep them valid.

The slug is the one name staff choose; the PBS user, its tokens, the namespace, the ACL path
and the prune job id all follow from it (see docs/tenants.md). A slug is accepted only if
every derived name passes PBS's own limits (pbsclient.validation), so nothing fails half-way
through onboarding because of a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from pbsclient import validation

BACKUP_TOKEN_NAME = "backup"  # noqa: S105 (a token name, not a secret)
RESTORE_TOKEN_PREFIX = "restore-"  # noqa: S105 (a token name prefix)
PRUNE_JOB_PREFIX = "t-"
# PBS caps a job id at 32 characters: "t-" + slug must fit.
SLUG_MAX_LENGTH = 32 - len(PRUNE_JOB_PREFIX)
# A restore token name must leave room for at least this many characters after "restore-".
MIN_RESTORE_NAME_ROOM = 8
# Lower case only: PBS user ids are case sensitive, so "Acme" and "acme" would be two users.
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
RESTORE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
# Names that would confuse staff reading PBS's user list next to its built-in accounts.
RESERVED_SLUGS = frozenset({"root", "admin", "backup", "portal", "pbs", "proxmox", "clients", "new", "hosts"})
# Marks PBS users the portal made, so drift checks tell them from the MSP's own accounts.
PORTAL_COMMENT_PREFIX = "pbs-portal tenant"


@dataclass(frozen=True)
class TenantNames:
    """The PBS names of one tenant: derived from the settings before it exists, read from its
    stored columns after (``stored_names``)."""

    slug: str
    realm: str
    parent: str
    # Set by ``stored_names``: the names the tenant was created with win over derived ones.
    stored_userid: str = ""
    stored_namespace: str = ""
    stored_prune_job_id: str = ""

    @property
    def userid(self) -> str:
        return self.stored_userid or f"{self.slug}@{self.realm}"

    @property
    def backup_token_name(self) -> str:
        return BACKUP_TOKEN_NAME

    @property
    def backup_tokenid(self) -> str:
        return f"{self.userid}!{BACKUP_TOKEN_NAME}"

    @property
    def namespace(self) -> str:
        if self.stored_namespace:
            return self.stored_namespace
        return f"{self.parent}/{self.slug}" if self.parent else self.slug

    @property
    def prune_job_id(self) -> str:
        return self.stored_prune_job_id or f"{PRUNE_JOB_PREFIX}{self.slug}"

    @property
    def user_comment(self) -> str:
        return f"{PORTAL_COMMENT_PREFIX} {self.slug}"

    def acl_path(self, store: str) -> str:
        return f"/datastore/{store}/{self.namespace}"

    def restore_token_name(self, name: str) -> str:
        return f"{RESTORE_TOKEN_PREFIX}{name}"

    def tokenid(self, token_name: str) -> str:
        return f"{self.userid}!{token_name}"

    @property
    def max_restore_name_length(self) -> int:
        return 64 - len(self.userid) - len("!") - len(RESTORE_TOKEN_PREFIX)


def tenant_names(slug: str) -> TenantNames:
    return TenantNames(
        slug=slug,
        realm=settings.PORTAL_PBS_REALM,
        parent=settings.PORTAL_NAMESPACE_PARENT.strip("/"),
    )


def stored_names(tenant: Any) -> TenantNames:
    """The PBS names a tenant was created with, from its stored columns. Every reader after
    creation uses these: changing PORTAL_PBS_REALM or PORTAL_NAMESPACE_PARENT later renames
    nothing that exists (only tenants created afterwards get the new names)."""
    userid, namespace = tenant.pbs_userid, tenant.namespace
    derived = tenant_names(tenant.slug)
    return TenantNames(
        slug=tenant.slug,
        realm=userid.rsplit("@", 1)[1] if "@" in userid else derived.realm,
        parent=namespace.rsplit("/", 1)[0] if "/" in namespace else ("" if namespace else derived.parent),
        stored_userid=userid,
        stored_namespace=namespace,
        stored_prune_job_id=tenant.prune_job_id,
    )


def slug_problems(slug: str, *, store: str | None = None) -> list[str]:
    """Human-readable reasons why ``slug`` cannot be used (empty list: it can).

    Checks the portal's own slug rule, then every derived PBS name with PBS's limits. The
    ACL path is checked with ``store`` when known, otherwise with the longest store name
    PBS allows (32), so a later placement cannot break it.
    """
    problems: list[str] = []
    if not slug:
        return ["Enter a slug."]
    if len(slug) < 2:
        problems.append("Use at least 2 characters.")
    if len(slug) > SLUG_MAX_LENGTH:
        problems.append(
            f"Use at most {SLUG_MAX_LENGTH} characters (the prune job id '{PRUNE_JOB_PREFIX}{slug}' must fit PBS's 32)."
        )
    if not SLUG_RE.fullmatch(slug):
        problems.append("Use lower-case letters, digits and hyphens; start and end with a letter or digit.")
    if slug in RESERVED_SLUGS:
        problems.append(f"'{slug}' is reserved.")
    if problems:
        return problems

    names = tenant_names(slug)
    checks = [
        ("PBS user id", validation.validate_userid, names.userid),
        ("backup token id", validation.validate_tokenid, names.backup_tokenid),
        (
            "restore token id",
            validation.validate_tokenid,
            names.tokenid(names.restore_token_name("x" * MIN_RESTORE_NAME_ROOM)),
        ),
        ("namespace name", validation.validate_namespace_component, slug),
        ("namespace", validation.validate_namespace, names.namespace),
        ("prune job id", validation.validate_job_id, names.prune_job_id),
        ("ACL path", validation.validate_acl_path, names.acl_path(store or "s" * 32)),
    ]
    for label, check, value in checks:
        try:
            check(value)
        except ValueError as exc:
            problems.append(f"The {label} '{value}' would be invalid: {exc}")
    return problems


def restore_name_problems(slug: str, name: str) -> list[str]:
    """Why ``name`` cannot name a restore token of tenant ``slug`` (empty list: it can)."""
    names = tenant_names(slug)
    problems: list[str] = []
    if not RESTORE_NAME_RE.fullmatch(name):
        problems.append("Use lower-case letters, digits and hyphens; start and end with a letter or digit.")
    elif len(name) > names.max_restore_name_length:
        problems.append(f"Use at most {names.max_restore_name_length} characters.")
    else:
        token_name = names.restore_token_name(name)
        try:
            validation.validate_token_name(token_name)
            validation.validate_tokenid(names.tokenid(token_name))
        except ValueError as exc:
            problems.append(str(exc))
    return problems
