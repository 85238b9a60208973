"""PBS privileges, roles, ACL paths and the ACL tree with PBS's role resolution.

Resolution (``AclTree::roles``): walking from ``/`` down the path, a deeper node
that yields roles for the auth-id *replaces* what was found above; roles on one
node are OR-ed; ``NoAccess`` wipes the node; a non-propagating role only counts on
its exact path. Token rights are ANDed with the owning user's rights by the state
(see ``State.lookup_privs_details``), not here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pbssim.params import MAX_NAMESPACE_DEPTH

# Order matters: it is the order of PBS's PRIVILEGES table, used to name missing
# privileges ("Datastore.Audit|Datastore.Backup").
PRIVILEGE_NAMES = (
    "Sys.Audit",
    "Sys.Modify",
    "Sys.PowerManagement",
    "Datastore.Audit",
    "Datastore.Allocate",
    "Datastore.Modify",
    "Datastore.Read",
    "Datastore.Verify",
    "Datastore.Backup",
    "Datastore.Prune",
    "Permissions.Modify",
    "Remote.Audit",
    "Remote.Modify",
    "Remote.Read",
    "Remote.DatastoreBackup",
    "Remote.DatastoreModify",
    "Remote.DatastorePrune",
    "Sys.Console",
    "Tape.Audit",
    "Tape.Modify",
    "Tape.Write",
    "Tape.Read",
    "Realm.Allocate",
)
PRIV: dict[str, int] = {name: 1 << bit for bit, name in enumerate(PRIVILEGE_NAMES)}
ALL_PRIVS = (1 << len(PRIVILEGE_NAMES)) - 1

SYS_AUDIT = PRIV["Sys.Audit"]
SYS_MODIFY = PRIV["Sys.Modify"]
DATASTORE_AUDIT = PRIV["Datastore.Audit"]
DATASTORE_ALLOCATE = PRIV["Datastore.Allocate"]
DATASTORE_MODIFY = PRIV["Datastore.Modify"]
DATASTORE_READ = PRIV["Datastore.Read"]
DATASTORE_VERIFY = PRIV["Datastore.Verify"]
DATASTORE_BACKUP = PRIV["Datastore.Backup"]
DATASTORE_PRUNE = PRIV["Datastore.Prune"]
PERMISSIONS_MODIFY = PRIV["Permissions.Modify"]
REMOTE_AUDIT = PRIV["Remote.Audit"]
REMOTE_MODIFY = PRIV["Remote.Modify"]
REMOTE_READ = PRIV["Remote.Read"]
# What makes a namespace visible (NS_PRIVS_OK).
NS_PRIVS_OK = DATASTORE_MODIFY | DATASTORE_READ | DATASTORE_BACKUP | DATASTORE_AUDIT


def _privs(*names: str) -> int:
    mask = 0
    for name in names:
        mask |= PRIV[name]
    return mask


NO_ACCESS = "NoAccess"
# role -> (privileges, comment), in PBS's Role enum order.
ROLES: dict[str, tuple[int, str]] = {
    "Admin": (ALL_PRIVS, "Administrator"),
    "Audit": (_privs("Sys.Audit", "Datastore.Audit"), "Auditor"),
    NO_ACCESS: (0, "Disable Access"),
    "DatastoreAdmin": (
        _privs(
            "Datastore.Audit",
            "Datastore.Modify",
            "Datastore.Read",
            "Datastore.Verify",
            "Datastore.Backup",
            "Datastore.Prune",
        ),
        "Datastore Administrator",
    ),
    "DatastoreReader": (
        _privs("Datastore.Audit", "Datastore.Verify", "Datastore.Read"),
        "Datastore Reader (inspect datastore content and do restores)",
    ),
    "DatastoreBackup": (
        _privs("Datastore.Backup"),
        "Datastore Backup (backup and restore owned backups)",
    ),
    "DatastorePowerUser": (
        _privs("Datastore.Backup", "Datastore.Prune"),
        "Datastore PowerUser (backup, restore, and prune owned backup)",
    ),
    "DatastoreAudit": (_privs("Datastore.Audit"), "Datastore Auditor"),
    "RemoteAudit": (_privs("Remote.Audit"), "Remote Auditor"),
    "RemoteAdmin": (_privs("Remote.Audit", "Remote.Modify", "Remote.Read"), "Remote Administrator"),
    "RemoteSyncOperator": (_privs("Remote.Audit", "Remote.Read"), "Synchronization Operator"),
    "RemoteSyncPushOperator": (
        _privs("Remote.Audit", "Remote.DatastoreBackup"),
        "Synchronisation Operator (push direction)",
    ),
    "RemoteDatastorePowerUser": (
        _privs("Remote.Audit", "Remote.DatastoreBackup", "Remote.DatastorePrune"),
        "Remote Datastore PowerUser (push direction)",
    ),
    "RemoteDatastoreAdmin": (
        _privs("Remote.Audit", "Remote.DatastoreBackup", "Remote.DatastoreModify", "Remote.DatastorePrune"),
        "Remote Datastore Administrator (push direction)",
    ),
    "TapeAudit": (_privs("Tape.Audit"), "Tape Auditor"),
    "TapeAdmin": (_privs("Tape.Audit", "Tape.Modify", "Tape.Read", "Tape.Write"), "Tape Administrator"),
    "TapeOperator": (_privs("Tape.Audit", "Tape.Read", "Tape.Write"), "Tape Operator"),
    "TapeReader": (_privs("Tape.Audit", "Tape.Read"), "Tape Reader"),
}


def priv_names(mask: int) -> list[str]:
    """``privs_to_priv_names``: names of the set bits, in PBS's table order."""
    return [name for name in PRIVILEGE_NAMES if mask & PRIV[name]]


def split_acl_path(path: str) -> list[str]:
    """``split_acl_path``: the non-empty components of a slash-separated path."""
    return [comp for comp in path.split("/") if comp]


def flatten(path: Sequence[str]) -> tuple[str, ...]:
    """Normalise a component list whose items may themselves contain ``/`` (namespaces)."""
    out: list[str] = []
    for comp in path:
        out.extend(c for c in comp.split("/") if c)
    return tuple(out)


def check_acl_path(path: str) -> None:
    """``pbs_config::acl::check_acl_path`` (PBS 4.2): raise ValueError for other shapes."""
    comps = split_acl_path(path)
    n = len(comps)
    if n == 0:
        return
    head = comps[0]
    second = comps[1] if n > 1 else None
    ok = False
    if head == "access":
        ok = n == 1 or (second in ("acl", "users", "domains") and n == 2) or (second == "openid" and n <= 3)
    elif head == "datastore":
        ok = n <= 2 + MAX_NAMESPACE_DEPTH
    elif head == "remote":
        ok = n <= 3 + MAX_NAMESPACE_DEPTH
    elif head == "system":
        if n == 1:
            ok = True
        elif second in ("certificates", "disks", "log", "notifications", "status", "tasks", "time"):
            ok = n == 2
        elif second in ("services", "s3-endpoint", "encryption-keys"):
            ok = n <= 3
        elif second == "network":
            ok = n == 2 or (comps[2] == "dns" and n == 3) or (comps[2] == "interfaces" and n <= 4)
    elif head == "tape":
        ok = n == 1 or (second in ("device", "pool", "job") and n <= 3)
    if not ok:
        raise ValueError(f"invalid acl path '{path}'.")


class AclNode:
    """One path component of the ACL tree: per auth-id role maps, and children."""

    __slots__ = ("children", "users")

    def __init__(self) -> None:
        self.children: dict[str, AclNode] = {}
        self.users: dict[str, dict[str, bool]] = {}

    def extract_roles(self, auth_id: str, exact: bool) -> dict[str, bool]:
        """``extract_user_roles``: the roles that apply here (all on the exact path,
        only propagating ones above it); NoAccess alone wipes the node."""
        roles = self.users.get(auth_id)
        if not roles:
            return {}
        found: dict[str, bool] = {}
        for role, propagate in roles.items():
            if propagate or exact:
                if role == NO_ACCESS:
                    return {NO_ACCESS: False}
                found[role] = propagate
        return found


class AclTree:
    """The ACL configuration, with an index of paths per auth-id for fast lookups."""

    def __init__(self) -> None:
        self.root = AclNode()
        self.paths_by_authid: dict[str, set[tuple[str, ...]]] = {}

    def find_node(self, comps: Sequence[str]) -> AclNode | None:
        node = self.root
        for comp in comps:
            child = node.children.get(comp)
            if child is None:
                return None
            node = child
        return node

    def insert(self, path: str, auth_id: str, role: str, propagate: bool) -> None:
        """``insert_user_role``: NoAccess replaces the auth-id's roles on the node and
        any other role removes a NoAccess there."""
        comps = tuple(split_acl_path(path))
        node = self.root
        for comp in comps:
            node = node.children.setdefault(comp, AclNode())
        roles = node.users.setdefault(auth_id, {})
        if role == NO_ACCESS:
            roles.clear()
        else:
            roles.pop(NO_ACCESS, None)
        roles[role] = propagate
        self.paths_by_authid.setdefault(auth_id, set()).add(comps)

    def delete(self, path: str, auth_id: str, role: str) -> None:
        """``delete_user_role``: a missing entry is not an error."""
        comps = tuple(split_acl_path(path))
        node = self.find_node(comps)
        if node is None:
            return
        roles = node.users.get(auth_id)
        if roles is None:
            return
        roles.pop(role, None)
        if not roles:
            del node.users[auth_id]
            paths = self.paths_by_authid.get(auth_id)
            if paths is not None:
                paths.discard(comps)
                if not paths:
                    del self.paths_by_authid[auth_id]
            self._prune(comps)

    def delete_authid(self, auth_id: str) -> None:
        """``delete_authid``: remove every entry of an auth-id (used for tokens)."""
        for comps in sorted(self.paths_by_authid.pop(auth_id, set()), key=len, reverse=True):
            node = self.find_node(comps)
            if node is not None:
                node.users.pop(auth_id, None)
                self._prune(comps)

    def _prune(self, comps: tuple[str, ...]) -> None:
        # A saved and re-read acl.cfg has no empty nodes; drop them so that
        # /access/permissions does not list paths without entries.
        chain = [self.root]
        for comp in comps:
            nxt = chain[-1].children.get(comp)
            if nxt is None:
                return
            chain.append(nxt)
        for depth in range(len(comps), 0, -1):
            node = chain[depth]
            if node.users or node.children:
                return
            del chain[depth - 1].children[comps[depth - 1]]

    def roles(self, auth_id: str, comps: Sequence[str]) -> dict[str, bool]:
        """``AclTree::roles``: role -> propagate for ``auth_id`` on the path."""
        node = self.root
        role_map = node.extract_roles(auth_id, len(comps) == 0)
        last = len(comps) - 1
        for pos, comp in enumerate(comps):
            child = node.children.get(comp)
            if child is None:
                return role_map
            node = child
            found = node.extract_roles(auth_id, pos == last)
            if found:
                role_map = found
        return role_map

    def privs(self, auth_id: str, comps: Sequence[str]) -> tuple[int, int]:
        """(privileges, propagating privileges) from the roles on the path."""
        privs = 0
        propagated = 0
        for role, propagate in self.roles(auth_id, comps).items():
            mask = ROLES.get(role, (0, ""))[0]
            privs |= mask
            if propagate:
                propagated |= mask
        return privs, propagated

    def entries(self, start: AclNode, path: str, *, exact: bool) -> Iterator[tuple[str, str, str, bool]]:
        """(path, auth-id, role, propagate) below ``start`` (depth-first, sorted)."""
        shown = path or "/"
        for auth_id in sorted(start.users):
            for role, propagate in sorted(start.users[auth_id].items()):
                yield shown, auth_id, role, propagate
        if exact:
            return
        for comp in sorted(start.children):
            yield from self.entries(start.children[comp], f"{path}/{comp}", exact=False)

    def all_paths(self) -> Iterator[str]:
        """Every node path of the tree (``populate_acl_paths``)."""
        stack: list[tuple[str, AclNode]] = [("", self.root)]
        while stack:
            path, node = stack.pop()
            for comp, child in node.children.items():
                sub = f"{path}/{comp}"
                yield sub
                stack.append((sub, child))

    def count(self) -> int:
        return sum(len(roles) for paths in self._nodes() for roles in paths.users.values())

    def _nodes(self) -> Iterator[AclNode]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children.values())
