"""What exists on a PBS host, as the onboarding steps need to know it before they write.

Two implementations of one small interface:

- ``LiveState`` asks PBS for each check (one GET per question). Right for one tenant.
- ``SnapshotState`` reads each list once (users with tokens, ACLs, prune jobs, and the
  namespaces below each parent it is asked about) and then answers from memory, updated
  by the steps after every write. Right for a batch: onboarding N tenants costs a handful
  of list calls plus only the writes.

A stale answer is harmless: every write handles "already exists" / "not found" by
re-checking, so the snapshot only saves calls, it never decides correctness.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from pbsclient import PbsClient
from pbsclient.errors import NotFound, PermissionDenied
from pbsclient.models import AclEntry, PruneJob, Token, User


def parent_of(ns: str) -> str:
    return ns.rsplit("/", 1)[0] if "/" in ns else ""


class PbsState(Protocol):
    """Answers "is it there?" for the objects a tenant owns on one PBS host."""

    def user(self, userid: str) -> User | None: ...
    def tokens(self, userid: str) -> list[Token]: ...
    def token(self, userid: str, name: str) -> Token | None: ...
    def namespace_exists(self, store: str, ns: str) -> bool: ...
    def namespaces_below(self, store: str, parent: str) -> list[str]: ...
    def acl_entries(self, path: str) -> list[AclEntry]: ...
    def all_acl_entries(self) -> list[AclEntry]: ...
    def prune_job(self, job_id: str) -> PruneJob | None: ...
    def all_users(self) -> list[User]: ...
    def all_prune_jobs(self) -> list[PruneJob]: ...

    # Called by the steps after each successful write.
    def record_user(self, userid: str, user: User | None, *, created: bool = False) -> None: ...
    def record_token(self, userid: str, name: str, token: Token | None) -> None: ...
    def record_namespace(self, store: str, ns: str, exists: bool = True) -> None: ...
    def record_acl(self, entry: AclEntry, present: bool) -> None: ...
    def record_prune_job(self, job_id: str, job: PruneJob | None) -> None: ...


class LiveState:
    """One GET per question, with two shortcuts that cannot go stale within a run: a user
    this run created has no tokens yet (PBS deletes a user's tokens with the user), and
    the ACL entries of a path are read once and then kept current by the steps' writes."""

    def __init__(self, client: PbsClient) -> None:
        self.client = client
        self._fresh_users: set[str] = set()
        self._acl_by_path: dict[str, list[AclEntry]] = {}

    def user(self, userid: str) -> User | None:
        try:
            return self.client.user_get(userid)
        except NotFound:
            return None

    def tokens(self, userid: str) -> list[Token]:
        if userid in self._fresh_users:
            return []
        try:
            return list(self.client.token_list(userid))
        except NotFound:
            return []

    def token(self, userid: str, name: str) -> Token | None:
        if userid in self._fresh_users:
            return None
        try:
            return self.client.token_get(userid, name)
        except NotFound:
            return None

    def namespaces_below(self, store: str, parent: str) -> list[str]:
        try:
            listed = self.client.namespace_list(store, parent=parent or None, max_depth=1)
        except NotFound:
            return []
        except PermissionDenied:
            # Listing a parent that does not exist and gives no rights is a 403 on PBS.
            return []
        return [item.ns for item in listed if item.ns != parent]

    def namespace_exists(self, store: str, ns: str) -> bool:
        # PBS lists the parent itself even when it does not exist, so look it up one level up.
        return ns == "" or ns in self.namespaces_below(store, parent_of(ns))

    def acl_entries(self, path: str) -> list[AclEntry]:
        if path not in self._acl_by_path:
            self._acl_by_path[path] = list(self.client.acl_list(path=path, exact=True))
        return list(self._acl_by_path[path])

    def all_acl_entries(self) -> list[AclEntry]:
        return list(self.client.acl_list())

    def prune_job(self, job_id: str) -> PruneJob | None:
        try:
            return self.client.prune_job_get(job_id)
        except NotFound:
            return None

    def all_users(self) -> list[User]:
        return list(self.client.user_list(include_tokens=True))

    def all_prune_jobs(self) -> list[PruneJob]:
        return list(self.client.prune_job_list())

    def record_user(self, userid: str, user: User | None, *, created: bool = False) -> None:
        if created:
            self._fresh_users.add(userid)
        elif user is None:
            self._fresh_users.discard(userid)

    def record_token(self, userid: str, name: str, token: Token | None) -> None:
        # Tokens made by this run are looked up live again (never cached as present).
        self._fresh_users.discard(userid)
        if token is None:
            tokenid = f"{userid}!{name}"
            for path, entries in self._acl_by_path.items():
                self._acl_by_path[path] = [entry for entry in entries if entry.ugid != tokenid]

    def record_namespace(self, store: str, ns: str, exists: bool = True) -> None:
        return None

    def record_acl(self, entry: AclEntry, present: bool) -> None:
        if entry.path not in self._acl_by_path:
            return
        kept = [
            item for item in self._acl_by_path[entry.path] if (item.ugid, item.roleid) != (entry.ugid, entry.roleid)
        ]
        if present:
            kept.append(entry)
        self._acl_by_path[entry.path] = kept

    def record_prune_job(self, job_id: str, job: PruneJob | None) -> None:
        return None


class SnapshotState:
    """Lists read once (lazily), then kept current by the steps' own writes."""

    def __init__(self, client: PbsClient) -> None:
        self.client = client
        self._users: dict[str, User] | None = None
        self._tokens: dict[str, dict[str, Token]] = {}
        self._acl: list[AclEntry] | None = None
        self._prune: dict[str, PruneJob] | None = None
        # (store, parent) -> names of the namespaces directly below parent
        self._ns: dict[tuple[str, str], set[str]] = {}
        self.list_calls = 0

    # --- loading --------------------------------------------------------------

    def _load_users(self) -> dict[str, User]:
        if self._users is None:
            self.list_calls += 1
            users = self.client.user_list(include_tokens=True)
            self._users = {user.userid: user for user in users}
            self._tokens = {user.userid: {token.token_name: token for token in user.tokens} for user in users}
        return self._users

    def _load_acl(self) -> list[AclEntry]:
        if self._acl is None:
            self.list_calls += 1
            self._acl = list(self.client.acl_list())
        return self._acl

    def _load_prune(self) -> dict[str, PruneJob]:
        if self._prune is None:
            self.list_calls += 1
            self._prune = {job.id: job for job in self.client.prune_job_list()}
        return self._prune

    def _load_ns(self, store: str, parent: str) -> set[str]:
        key = (store, parent)
        if key not in self._ns:
            self.list_calls += 1
            self._ns[key] = set(LiveState(self.client).namespaces_below(store, parent))
        return self._ns[key]

    # --- questions ------------------------------------------------------------

    def user(self, userid: str) -> User | None:
        return self._load_users().get(userid)

    def tokens(self, userid: str) -> list[Token]:
        self._load_users()
        return list(self._tokens.get(userid, {}).values())

    def token(self, userid: str, name: str) -> Token | None:
        self._load_users()
        return self._tokens.get(userid, {}).get(name)

    def namespaces_below(self, store: str, parent: str) -> list[str]:
        return sorted(self._load_ns(store, parent))

    def namespace_exists(self, store: str, ns: str) -> bool:
        return ns == "" or ns in self._load_ns(store, parent_of(ns))

    def acl_entries(self, path: str) -> list[AclEntry]:
        return [entry for entry in self._load_acl() if entry.path == path]

    def all_acl_entries(self) -> list[AclEntry]:
        return list(self._load_acl())

    def prune_job(self, job_id: str) -> PruneJob | None:
        return self._load_prune().get(job_id)

    def all_users(self) -> list[User]:
        return list(self._load_users().values())

    def all_prune_jobs(self) -> list[PruneJob]:
        return list(self._load_prune().values())

    # --- keeping current --------------------------------------------------------

    def record_user(self, userid: str, user: User | None, *, created: bool = False) -> None:
        users = self._load_users()
        if user is None:
            users.pop(userid, None)
            self._tokens.pop(userid, None)
        else:
            users[userid] = user
            self._tokens.setdefault(userid, {})

    def record_token(self, userid: str, name: str, token: Token | None) -> None:
        self._load_users()
        tokens = self._tokens.setdefault(userid, {})
        if token is None:
            tokens.pop(name, None)
            # PBS drops a deleted token's ACL entries with it.
            tokenid = f"{userid}!{name}"
            if self._acl is not None:
                self._acl = [entry for entry in self._acl if entry.ugid != tokenid]
        else:
            tokens[name] = token

    def record_namespace(self, store: str, ns: str, exists: bool = True) -> None:
        names = self._load_ns(store, parent_of(ns))
        if exists:
            names.add(ns)
        else:
            names.discard(ns)

    def record_acl(self, entry: AclEntry, present: bool) -> None:
        acl = self._load_acl()
        kept = [item for item in acl if (item.path, item.ugid, item.roleid) != (entry.path, entry.ugid, entry.roleid)]
        if present:
            kept.append(replace(entry))
        self._acl = kept

    def record_prune_job(self, job_id: str, job: PruneJob | None) -> None:
        jobs = self._load_prune()
        if job is None:
            jobs.pop(job_id, None)
        else:
            jobs[job_id] = job
