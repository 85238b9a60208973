"""The whole state of one simulated PBS host."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pbssim.acl import ALL_PRIVS, AclTree, flatten, priv_names
from pbssim.state.base import ROOT_USERID, ApiError, _active, _hash_secret, split_authid
from pbssim.state.records import Datastore, PruneJob, Task, Token, User, ns_acl_path
from pbssim.state.units import escape_unit


class State:
    """All of one simulated PBS's data, plus the privilege lookups PBS does on it."""

    def __init__(self, node: str = "localhost") -> None:
        self.node = node
        self.users: dict[str, User] = {
            ROOT_USERID: User(ROOT_USERID, comment="Superuser", enable=True, expire=0),
        }
        self.tokens: dict[str, Token] = {}
        self.tokens_by_user: dict[str, dict[str, Token]] = {}
        self.token_hashes: dict[str, tuple[bytes, bytes]] = {}
        self.passwords: dict[str, str] = {}
        self.acl = AclTree()
        self.realms: dict[str, tuple[str, str]] = {
            "pam": ("pam", "Linux PAM standard authentication"),
            "pbs": ("pbs", "Proxmox Backup authentication server"),
        }
        self.datastores: dict[str, Datastore] = {}
        self.prune_jobs: dict[str, PruneJob] = {}
        self.tasks: dict[str, Task] = {}
        self.generations: dict[str, int] = {}
        # Per-module state of pluggable endpoint modules (e.g. remotes and sync jobs),
        # and their hooks run when a datastore is deleted without keep-job-configs.
        self.extensions: dict[str, Any] = {}
        self.datastore_removed_hooks: list[Callable[[State, str], None]] = []
        self._digest_salt = os.urandom(8).hex()
        self._task_counter = 0
        self._pid = os.getpid() & 0xFFFFFFFF
        self._pstart = int(time.monotonic() * 100) & 0xFFFFFFFF

    # -- config digests ---------------------------------------------------------------------

    def digest(self, config: str) -> str:
        """A SHA-256 hex digest that changes whenever ``config`` is saved."""
        seed = f"{self._digest_salt}:{config}:{self.generations.get(config, 0)}"
        return hashlib.sha256(seed.encode()).hexdigest()

    def saved(self, config: str) -> None:
        self.generations[config] = self.generations.get(config, 0) + 1

    def check_digest(self, config: str, digest: str | None) -> None:
        """``detect_modified_configuration_file``."""
        if digest is not None and digest != self.digest(config):
            raise ApiError("detected modified configuration - file changed by other user? Try again.")

    # -- users, tokens, secrets -------------------------------------------------------------

    def add_token(self, token: Token) -> None:
        userid, name = split_authid(token.tokenid)
        self.tokens[token.tokenid] = token
        self.tokens_by_user.setdefault(userid, {})[name or ""] = token

    def remove_token(self, tokenid: str) -> None:
        userid, name = split_authid(tokenid)
        self.tokens.pop(tokenid, None)
        self.token_hashes.pop(tokenid, None)
        user_tokens = self.tokens_by_user.get(userid)
        if user_tokens is not None:
            user_tokens.pop(name or "", None)
            if not user_tokens:
                del self.tokens_by_user[userid]

    def set_token_secret(self, tokenid: str) -> str:
        """Generate a new secret (a lowercase UUID), store only its hash, return it."""
        secret = str(uuid.uuid4())
        salt = os.urandom(16)
        self.token_hashes[tokenid] = (salt, _hash_secret(secret, salt))
        return secret

    def verify_token_secret(self, tokenid: str, secret: str) -> bool:
        stored = self.token_hashes.get(tokenid)
        if stored is None:
            return False
        salt, digest = stored
        return hmac.compare_digest(digest, _hash_secret(secret, salt))

    def is_active_authid(self, auth_id: str, now: float) -> bool:
        """``is_active_auth_id``: the user (and the token) exist, are enabled and unexpired."""
        userid, token_name = split_authid(auth_id)
        user = self.users.get(userid)
        if user is None or not _active(user.enable, user.expire, now):
            return False
        if token_name is None:
            return True
        token = self.tokens.get(auth_id)
        return token is not None and _active(token.enable, token.expire, now)

    # -- privileges ---------------------------------------------------------------------------

    @staticmethod
    def is_superuser(auth_id: str) -> bool:
        return auth_id == ROOT_USERID

    def lookup_privs_details(self, auth_id: str, path: Sequence[str]) -> tuple[int, int]:
        """``CachedUserInfo::lookup_privs_details``: (privs, propagated privs); a token's
        rights are ANDed with its owner's (propagate bits too)."""
        if self.is_superuser(auth_id):
            return ALL_PRIVS, ALL_PRIVS
        comps = flatten(path)
        privs, propagated = self.acl.privs(auth_id, comps)
        userid, token_name = split_authid(auth_id)
        if token_name is not None:
            owner_privs, owner_propagated = self.lookup_privs_details(userid, comps)
            privs &= owner_privs
            propagated &= owner_propagated
        return privs, propagated

    def lookup_privs(self, auth_id: str, path: Sequence[str]) -> int:
        return self.lookup_privs_details(auth_id, path)[0]

    def any_privs_below(self, auth_id: str, path: Sequence[str], privs: int) -> bool:
        """``CachedUserInfo::any_privs_below``: propagating privs on ``path`` or any
        privs on a path below it where the auth-id has ACL entries."""
        comps = flatten(path)
        if self.lookup_privs_details(auth_id, comps)[1] & privs:
            return True
        depth = len(comps)
        for entry in self.acl.paths_by_authid.get(auth_id, ()):
            if len(entry) > depth and entry[:depth] == comps and self.lookup_privs(auth_id, entry) & privs:
                return True
        return False

    def uniform_privs_below(self, auth_id: str, path: Sequence[str]) -> int | None:
        """The privileges of every path strictly below ``path`` when neither the auth-id
        nor (for a token) its owner has an ACL entry down there, else None.

        Lets a listing of thousands of namespaces skip one tree walk per namespace."""
        comps = flatten(path)
        depth = len(comps)
        owners = {auth_id, split_authid(auth_id)[0]}
        for owner in owners:
            for entry in self.acl.paths_by_authid.get(owner, ()):
                if len(entry) > depth and entry[:depth] == comps:
                    return None
        # A child name no ACL path can contain: what any deeper path inherits.
        return self.lookup_privs(auth_id, (*comps, "\x00"))

    def check_privs(self, auth_id: str, path: Sequence[str], required: int, *, partial: bool) -> None:
        """``CachedUserInfo::check_privs``: a 400 naming the missing privileges."""
        comps = flatten(path)
        privs = self.lookup_privs(auth_id, comps)
        allowed = bool(privs & required) if partial else (privs & required) == required
        if not allowed:
            names = ("|" if partial else "&").join(priv_names(required))
            raise ApiError(f"missing permissions '{names}' on '/{'/'.join(comps)}'")

    def check_ns_privs_full(self, store: str, ns: str, auth_id: str, full: int, partial: int) -> int:
        """``check_ns_privs_full``: the privileges, or a 403 naming what is missing."""
        acl_path = ns_acl_path(store, ns)
        privs = self.lookup_privs(auth_id, acl_path)
        if (full and privs & full) or (partial and privs & partial):
            return privs
        names = "|".join(priv_names(full | partial))
        raise ApiError(f"permission check failed - missing {names} on /{'/'.join(acl_path)}", 403)

    # -- datastores ---------------------------------------------------------------------------

    def lookup_datastore(self, name: str) -> Datastore:
        store = self.datastores.get(name)
        if store is None:
            raise ApiError(f"no such datastore '{name}'")
        return store

    # -- tasks ----------------------------------------------------------------------------------

    def new_task(self, worker_type: str, worker_id: str, auth_id: str, *, exitstatus: str = "OK") -> str:
        """Record a finished task and return its UPID."""
        self._task_counter += 1
        now = int(time.time())
        upid = (
            f"UPID:{self.node}:{self._pid:08X}:{self._pstart:08X}:{self._task_counter:08X}:"
            f"{now:08X}:{worker_type}:{escape_unit(worker_id)}:{auth_id}:"
        )
        self.tasks[upid] = Task(upid, worker_type, worker_id, auth_id, now, now, exitstatus)
        return upid
