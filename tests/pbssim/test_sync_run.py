"""A simulated pull: POST /admin/sync/{id}/run copies snapshots from the remote simulator,
reading it over HTTP(S) with the remote's own credential."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from pbssim.endpoints.sync import link_remote, task_log

T0 = 1_760_000_000
DAY = 86_400


@dataclass
class Pair:
    source: object  # Simulator
    target: object
    src_api: httpx.Client
    dst_api: httpx.Client
    pull_secret: str


def _client(transport: httpx.BaseTransport, token: tuple[str, str], base: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base}/api2/json",
        transport=transport,
        headers={"Authorization": f"PBSAPIToken={token[0]}:{token[1]}"},
    )


def _pull_token(src_api: httpx.Client, path: str = "/datastore/store1", role: str = "DatastoreReader") -> str:
    src_api.post("/access/users", json={"userid": "puller@pbs"})
    secret = src_api.post("/access/users/puller@pbs/token/pull", json={}).json()["data"]["value"]
    for auth_id in ("puller@pbs", "puller@pbs!pull"):
        assert src_api.put("/access/acl", json={"path": path, "role": role, "auth-id": auth_id}).status_code == 200
    return secret


@pytest.fixture
def pair(pbs_sim_factory) -> Iterator[Pair]:
    """Two simulators; the target's remote "src" reaches the source in-process."""
    from tests.conftest import sim_info

    source, target = pbs_sim_factory(), pbs_sim_factory()
    link_remote(target, "src.sim.invalid:8007", source)
    src_token = (sim_info(source).token_id, sim_info(source).token_secret)
    dst_token = (sim_info(target).token_id, sim_info(target).token_secret)
    with (
        _client(source.transport(), src_token, "https://src.sim.invalid:8007") as src_api,
        _client(target.transport(), dst_token, "https://dst.sim.invalid:8007") as dst_api,
    ):
        secret = _pull_token(src_api)
        reply = dst_api.post(
            "/config/remote",
            json={"name": "src", "host": "src.sim.invalid", "port": 8007, "auth-id": "puller@pbs!pull",
                  "password": secret, "fingerprint": ":".join(["00"] * 32)},
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        yield Pair(source, target, src_api, dst_api, secret)


def _seed(sim, ns: str, btype: str, bid: str, times: list[int], **kw) -> None:
    for when in times:
        sim.seed_snapshot(
            store="store1", ns=ns, backup_type=btype, backup_id=bid, backup_time=when,
            size=kw.get("size", 1000), owner=kw.get("owner", "acme@pbs!backup"),
            verification=kw.get("verification", "ok"),
        )  # fmt: skip


def _forget(sim, ns: str, btype: str, bid: str, when: int | None = None) -> None:
    """Delete a snapshot (or a whole group) on the source, as a prune would."""
    store = sim.state.datastores["store1"]
    group = store.groups[ns][(btype, bid)]
    for backup_time in [when] if when is not None else list(group.snapshots):
        store.remove_snapshot(group, backup_time)
    if not group.snapshots:
        del store.groups[ns][(btype, bid)]


def _job(pair: Pair, **extra) -> None:
    body = {"id": "off", "store": "store2", "remote": "src", "remote-store": "store1", **extra}
    reply = pair.dst_api.post("/config/sync", json=body)
    assert reply.status_code == 200, reply.text


def _run(pair: Pair) -> tuple[str, dict]:
    reply = pair.dst_api.post("/admin/sync/off/run")
    assert reply.status_code == 200, reply.text
    upid = reply.json()["data"]
    status = next(s for s in pair.dst_api.get("/admin/sync").json()["data"] if s["id"] == "off")
    return upid, status


def _target_times(pair: Pair, ns: str, btype: str | None = None, bid: str | None = None) -> list[int]:
    params = {k: v for k, v in {"ns": ns, "backup-type": btype, "backup-id": bid}.items() if v}
    reply = pair.dst_api.get("/admin/datastore/store2/snapshots", params=params)
    if reply.status_code != 200:
        return []
    return sorted(s["backup-time"] for s in reply.json()["data"])


def test_a_run_copies_every_namespace_into_the_mapped_target(pair):
    _seed(pair.source, "clients/acme", "vm", "100", [T0, T0 + DAY], size=5000)
    _seed(pair.source, "clients/beta", "ct", "200", [T0])
    _job(pair, ns="offsite")
    upid, status = _run(pair)
    assert upid.startswith("UPID:")
    assert ":syncjob:" in upid
    assert status["last-run-state"] == "OK", task_log(pair.target, upid)
    assert status["last-run-upid"] == upid
    assert isinstance(status["last-run-endtime"], int)
    assert _target_times(pair, "offsite/clients/acme", "vm", "100") == [T0, T0 + DAY]
    assert _target_times(pair, "offsite/clients/beta") == [T0]
    copied = pair.dst_api.get("/admin/datastore/store2/snapshots", params={"ns": "offsite/clients/acme"}).json()
    assert {s["size"] for s in copied["data"]} == {5000}
    # Groups are owned by the job owner (unset = root@pam) on the target.
    assert {s["owner"] for s in copied["data"]} == {"root@pam"}


def test_remote_ns_and_max_depth_limit_what_is_pulled(pair):
    _seed(pair.source, "clients/acme", "vm", "100", [T0])
    _seed(pair.source, "clients/acme/sub", "vm", "101", [T0])
    _seed(pair.source, "clients/beta", "vm", "200", [T0])
    _job(pair, ns="copy/acme", **{"remote-ns": "clients/acme", "max-depth": 0})
    _, status = _run(pair)
    assert status["last-run-state"] == "OK"
    assert _target_times(pair, "copy/acme") == [T0]
    assert _target_times(pair, "copy/acme/sub") == []
    assert _target_times(pair, "copy/beta") == []


def test_group_filters_include_and_exclude(pair):
    _seed(pair.source, "", "vm", "100", [T0])
    _seed(pair.source, "", "vm", "101", [T0])
    _seed(pair.source, "", "ct", "200", [T0])
    _seed(pair.source, "", "host", "web", [T0])
    _job(pair, **{"group-filter": ["type:vm", "regex:^host/", "exclude:group:vm/101"], "max-depth": 0})
    _run(pair)
    groups = pair.dst_api.get("/admin/datastore/store2/groups").json()["data"]
    assert sorted(f"{g['backup-type']}/{g['backup-id']}" for g in groups) == ["host/web", "vm/100"]


def test_transfer_last_and_verified_only(pair):
    _seed(pair.source, "", "vm", "100", [T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY])
    _seed(pair.source, "", "vm", "101", [T0], verification="failed")
    _job(pair, **{"transfer-last": 2, "verified-only": True, "max-depth": 0})
    _, status = _run(pair)
    assert status["last-run-state"] == "OK"
    assert _target_times(pair, "", "vm", "100") == [T0 + 2 * DAY, T0 + 3 * DAY]
    assert _target_times(pair, "", "vm", "101") == []


def test_encrypted_only_skips_unencrypted_snapshots(pair):
    _seed(pair.source, "", "vm", "100", [T0])
    _job(pair, **{"encrypted-only": True, "max-depth": 0})
    upid, status = _run(pair)
    assert status["last-run-state"] == "OK"
    assert _target_times(pair, "", "vm", "100") == []
    assert any("not encrypted" in line for line in task_log(pair.target, upid))


def test_remove_vanished_drops_snapshots_and_groups_gone_on_the_source(pair):
    _seed(pair.source, "", "vm", "100", [T0, T0 + DAY])
    _seed(pair.source, "", "ct", "200", [T0])
    _job(pair, **{"remove-vanished": True, "max-depth": 0})
    _run(pair)
    assert _target_times(pair, "", "vm", "100") == [T0, T0 + DAY]
    _forget(pair.source, "", "vm", "100", T0)
    _forget(pair.source, "", "ct", "200")
    _, status = _run(pair)
    assert status["last-run-state"] == "OK"
    assert _target_times(pair, "", "vm", "100") == [T0 + DAY]
    assert _target_times(pair, "", "ct", "200") == []


def test_without_remove_vanished_the_copy_keeps_what_the_source_lost(pair):
    _seed(pair.source, "", "vm", "100", [T0, T0 + DAY])
    _job(pair, **{"max-depth": 0})
    _run(pair)
    _forget(pair.source, "", "vm", "100", T0)
    _run(pair)
    assert _target_times(pair, "", "vm", "100") == [T0, T0 + DAY]


def test_reruns_only_add_newer_snapshots(pair):
    _seed(pair.source, "", "vm", "100", [T0 + DAY])
    _job(pair, **{"max-depth": 0})
    _run(pair)
    _seed(pair.source, "", "vm", "100", [T0, T0 + 2 * DAY])  # one older, one newer
    upid, _ = _run(pair)
    assert _target_times(pair, "", "vm", "100") == [T0 + DAY, T0 + 2 * DAY]
    assert any("older than the newest local snapshot" in line for line in task_log(pair.target, upid))


def test_the_pull_reads_with_the_remotes_rights_only(pair):
    # Re-grant the pull token only Backup: it may read groups it owns, nothing else.
    src = pair.src_api
    for auth_id in ("puller@pbs", "puller@pbs!pull"):
        src.put("/access/acl", json={"path": "/datastore/store1", "role": "DatastoreReader",
                                     "auth-id": auth_id, "delete": True})
        src.put("/access/acl", json={"path": "/datastore/store1", "role": "DatastoreBackup", "auth-id": auth_id})
    _seed(pair.source, "", "vm", "100", [T0], owner="puller@pbs!pull")
    _seed(pair.source, "", "vm", "101", [T0], owner="someone@pbs")
    _job(pair, **{"max-depth": 0})
    upid, status = _run(pair)
    assert _target_times(pair, "", "vm", "100") == [T0]
    assert _target_times(pair, "", "vm", "101") == []  # not even listed for a Backup-only token
    assert status["last-run-state"] == "OK", task_log(pair.target, upid)


def test_a_group_owned_by_someone_else_on_the_target_fails_the_run(pair):
    _seed(pair.source, "", "vm", "100", [T0])
    pair.target.seed_snapshot(store="store2", ns="", backup_type="vm", backup_id="100",
                              backup_time=T0 - DAY, size=1, owner="other@pbs")
    _job(pair, **{"max-depth": 0})
    upid, status = _run(pair)
    assert status["last-run-state"] == "sync failed with some errors."
    assert any("owner check failed (root@pam != other@pbs)" in line for line in task_log(pair.target, upid))


def test_a_wrong_secret_fails_the_task_not_the_request(pair):
    pair.dst_api.put("/config/remote/src", json={"password": "wrong"})
    _job(pair)
    _upid, status = _run(pair)
    assert status["last-run-state"].startswith("failed to list namespaces of remote 'src'")
    assert "401" in status["last-run-state"]


def test_remote_scan_lists_what_the_pull_token_sees(pair):
    _seed(pair.source, "clients/acme", "vm", "100", [T0])
    stores = pair.dst_api.get("/config/remote/src/scan").json()["data"]
    assert "store1" in [s["store"] for s in stores]
    namespaces = pair.dst_api.get("/config/remote/src/scan/store1/namespaces").json()["data"]
    assert "clients/acme" in [n["ns"] for n in namespaces]
    groups = pair.dst_api.get("/config/remote/src/scan/store1/groups", params={"namespace": "clients/acme"})
    assert [g["backup-id"] for g in groups.json()["data"]] == ["100"]


# --- over real HTTPS: the pinned fingerprint ------------------------------------------------


def test_a_pull_over_https_checks_the_pinned_fingerprint(pbs_sim_factory, pbs_https_factory):
    from tests.conftest import sim_info

    source, target = pbs_sim_factory(), pbs_sim_factory()
    src_server = pbs_https_factory(source)
    src_token = (sim_info(source).token_id, sim_info(source).token_secret)
    dst_token = (sim_info(target).token_id, sim_info(target).token_secret)
    host, port = "127.0.0.1", src_server.port
    with (
        _client(source.transport(), src_token, "https://src.invalid") as src_api,
        _client(target.transport(), dst_token, "https://dst.invalid") as dst_api,
    ):
        secret = _pull_token(src_api)
        _seed(source, "", "vm", "100", [T0])
        remote = {"name": "src", "host": host, "port": port, "auth-id": "puller@pbs!pull",
                  "password": secret, "fingerprint": ":".join(["00"] * 32)}  # fmt: skip
        assert dst_api.post("/config/remote", json=remote).status_code == 200
        dst_api.post("/config/sync", json={"id": "off", "store": "store2", "remote": "src",
                                            "remote-store": "store1", "max-depth": 0})  # fmt: skip
        upid = dst_api.post("/admin/sync/off/run").json()["data"]
        status = dst_api.get("/admin/sync").json()["data"][0]
        assert status["last-run-state"] == "sync failed with some errors."
        assert any("certificate fingerprint mismatch" in line for line in task_log(target, upid))
        assert dst_api.get("/admin/datastore/store2/snapshots").json()["data"] == []
        # A wrong pin refuses the handshake: the source never saw an authenticated request.
        assert not [e for e in source.request_log if e[1].endswith("/namespace")]

        dst_api.put("/config/remote/src", json={"fingerprint": src_server.fingerprint})
        dst_api.post("/admin/sync/off/run")
        status = dst_api.get("/admin/sync").json()["data"][0]
        assert status["last-run-state"] == "OK"
        times = [s["backup-time"] for s in dst_api.get("/admin/datastore/store2/snapshots").json()["data"]]
        assert times == [T0]
