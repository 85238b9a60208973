"""A small harness for the simulator core tests: a Simulator reached through httpx
in-process, with helpers to create users, tokens and ACL entries through the API."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from pbssim.simulator import Simulator

BASE_URL = "https://pbs.test:8007/api2/json"


class Pbs:
    """One simulated PBS with the admin token and datastore ``store1``."""

    def __init__(self, sim: Simulator | None = None, *, stores: tuple[str, ...] = ("store1",)) -> None:
        self.sim = sim or Simulator()
        self.admin = self.sim.bootstrap_admin_token()
        for store in stores:
            self.sim.add_datastore(store)
        self._clients: list[httpx.Client] = []

    def client(self, auth: tuple[str, str] | None = None, *, base_url: str = BASE_URL) -> httpx.Client:
        headers = {}
        if auth is not None:
            headers["Authorization"] = f"PBSAPIToken={auth[0]}:{auth[1]}"
        client = httpx.Client(base_url=base_url, transport=self.sim.transport(), headers=headers)
        self._clients.append(client)
        return client

    def call(
        self, method: str, path: str, *, auth: tuple[str, str] | str | None = "admin", **kwargs: Any
    ) -> httpx.Response:
        """One request; ``auth`` is "admin" (default), None (no credentials) or (tokenid, secret)."""
        credentials = self.admin if auth == "admin" else auth
        return self.client(credentials if not isinstance(credentials, str) else None).request(method, path, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()["data"]

    # --- set-up through the API ---------------------------------------------------------

    def user(self, userid: str, **fields: Any) -> str:
        self.ok("POST", "/access/users", data={"userid": userid, **fields})
        return userid

    def token(self, userid: str, name: str) -> tuple[str, str]:
        data = self.ok("POST", f"/access/users/{userid}/token/{name}")
        return data["tokenid"], data["value"]

    def grant(self, path: str, auth_id: str, role: str, *, propagate: bool = True) -> None:
        self.ok(
            "PUT", "/access/acl", data={"path": path, "auth-id": auth_id, "role": role, "propagate": int(propagate)}
        )

    def user_with_token(self, userid: str, name: str = "t") -> tuple[str, str]:
        self.user(userid)
        return self.token(userid, name)

    def namespace(self, store: str, ns: str) -> None:
        parent, _, name = ns.rpartition("/")
        data = {"name": name}
        if parent:
            data["parent"] = parent
        self.ok("POST", f"/admin/datastore/{store}/namespace", data=data)

    def close(self) -> None:
        for client in self._clients:
            client.close()


def ticket_login(pbs: Pbs, userid: str) -> dict[str, str]:
    """Cookie + CSRF headers of a logged-in user (the "you are that user" cases need a
    user, not a token)."""
    password = secrets.token_urlsafe(12)
    pbs.sim.set_password(userid, password)
    data = pbs.call("POST", "/access/ticket", auth=None, data={"username": userid, "password": password}).json()["data"]
    return {"Cookie": f"PBSAuthCookie={data['ticket']}", "CSRFPreventionToken": data["CSRFPreventionToken"]}


def error(response: httpx.Response) -> tuple[int, str]:
    """(status, plain-text body) of an error reply."""
    return response.status_code, response.text
