"""Route tree, endpoint definitions and route-level permissions (proxmox-router).

Endpoint modules register their routes on a :class:`Router`::

    def register(router: Router) -> None:
        router.add("GET", "/config/prune", list_jobs, params={...}, permission=ANYBODY)

Path templates use ``{name}`` for a component captured as a parameter (PBS's
``match_all``). A node with sub-directories and no GET of its own answers GET with a
directory index, as PBS does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pbssim.params import ObjectSchema, Param

if TYPE_CHECKING:
    from pbssim.state import State


# --- permissions (proxmox_router::Permission) ----------------------------------------


class Permission:
    """Route-level access check, done before any parameter is parsed."""

    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        raise NotImplementedError


class _World(Permission):
    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        return True

    def __repr__(self) -> str:
        return "World"


class _Anybody(Permission):
    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        return auth_id is not None

    def __repr__(self) -> str:
        return "Anybody"


class _Superuser(Permission):
    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        return auth_id is not None and state.is_superuser(auth_id)


WORLD: Permission = _World()
ANYBODY: Permission = _Anybody()
SUPERUSER: Permission = _Superuser()


@dataclass(frozen=True)
class Privilege(Permission):
    """``Permission::Privilege(path, privs, partial)``; ``{name}`` comes from the URL."""

    path: tuple[str, ...]
    privs: int
    partial: bool = False

    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        if auth_id is None:
            return False
        comps: list[str] = []
        for comp in self.path:
            if comp.startswith("{") and comp.endswith("}"):
                value = uri.get(comp[1:-1])
                if value is None:
                    return False
                comps.append(value)
            else:
                comps.append(comp)
        privs = state.lookup_privs(auth_id, comps)
        if privs == 0:
            return False
        if self.partial:
            return bool(self.privs & privs)
        return (self.privs & privs) == self.privs


@dataclass(frozen=True)
class UserParam(Permission):
    """``Permission::UserParam``: the caller's full auth-id equals the URL parameter
    (so a token never passes it)."""

    name: str

    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        return auth_id is not None and uri.get(self.name) == auth_id


@dataclass(frozen=True)
class Or(Permission):
    options: tuple[Permission, ...]

    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        return any(p.check(state, auth_id, uri) for p in self.options)


@dataclass(frozen=True)
class And(Permission):
    options: tuple[Permission, ...]

    def check(self, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
        return all(p.check(state, auth_id, uri) for p in self.options)


def check_api_permission(perm: Permission, state: State, auth_id: str | None, uri: Mapping[str, str]) -> bool:
    """root@pam passes every route-level check."""
    if auth_id is not None and state.is_superuser(auth_id):
        return True
    return perm.check(state, auth_id, uri)


# --- requests and endpoints ----------------------------------------------------------


@dataclass
class Request:
    """What a handler gets besides its parameters; it may add reply attributes."""

    state: State
    auth_id: str | None
    method: str
    path: str
    uri_params: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    now: float
    simulator: Any = None
    # Top-level reply attributes next to "data" (e.g. "digest").
    attributes: dict[str, Any] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def caller(self) -> str:
        if self.auth_id is None:
            raise RuntimeError("a World endpoint's handler asked for the caller")
        return self.auth_id


Handler = Callable[[Request, dict[str, Any]], Any]


@dataclass
class Endpoint:
    """One method on one path: handler, parameter schema, route-level permission."""

    method: str
    template: str
    handler: Handler
    schema: ObjectSchema
    permission: Permission
    # The reply envelope: "json" (default) or a custom formatter name (e.g. "ticket").
    envelope: str = "json"


class _Node:
    __slots__ = ("match_all", "methods", "subdirs")

    def __init__(self) -> None:
        self.methods: dict[str, Endpoint] = {}
        self.subdirs: dict[str, _Node] = {}
        self.match_all: tuple[str, _Node] | None = None


def _directory_index(subdirs: list[str]) -> Handler:
    def index(request: Request, params: dict[str, Any]) -> Any:
        return [{"subdir": name} for name in subdirs]

    return index


class Router:
    """The route tree below ``/api2/<format>``."""

    def __init__(self) -> None:
        self._root = _Node()
        self._endpoints: list[Endpoint] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        params: Mapping[str, Param] | None = None,
        permission: Permission,
        additional_properties: bool = False,
        envelope: str = "json",
    ) -> Endpoint:
        """Register ``method template``; path parameters must be declared in ``params``."""
        node = self._root
        for comp in _components(template):
            if comp.startswith("{") and comp.endswith("}"):
                name = comp[1:-1]
                if node.match_all is None:
                    node.match_all = (name, _Node())
                elif node.match_all[0] != name:
                    raise ValueError(f"{template}: conflicting parameter name {name!r}")
                node = node.match_all[1]
            else:
                node = node.subdirs.setdefault(comp, _Node())
        if method in node.methods:
            raise ValueError(f"{method} {template} is already registered")
        endpoint = Endpoint(
            method,
            template,
            handler,
            ObjectSchema(params, additional_properties=additional_properties),
            permission,
            envelope,
        )
        node.methods[method] = endpoint
        self._endpoints.append(endpoint)
        return endpoint

    def add_directory_indexes(self) -> None:
        """GET on every node that has sub-directories and no GET: a directory index."""
        self._add_indexes(self._root, "")

    def _add_indexes(self, node: _Node, template: str) -> None:
        if node.subdirs and "GET" not in node.methods:
            endpoint = Endpoint(
                "GET",
                template or "/",
                _directory_index(sorted(node.subdirs)),
                ObjectSchema({}, additional_properties=True),
                ANYBODY,
            )
            node.methods["GET"] = endpoint
            self._endpoints.append(endpoint)
        for name, child in node.subdirs.items():
            self._add_indexes(child, f"{template}/{name}")
        if node.match_all is not None:
            name, child = node.match_all
            self._add_indexes(child, f"{template}/{{{name}}}")

    def find(self, components: list[str], method: str) -> tuple[Endpoint | None, dict[str, str]]:
        """``find_method``: the endpoint (or None) and the percent-decoded URL parameters."""
        uri: dict[str, str] = {}
        node = self._root
        for comp in components:
            child = node.subdirs.get(comp)
            if child is not None:
                node = child
            elif node.match_all is not None:
                name, node = node.match_all
                uri[name] = unquote(comp)
            else:
                return None, uri
        return node.methods.get(method), uri

    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)


def _components(template: str) -> list[str]:
    return [comp for comp in template.split("/") if comp]
