"""The in-process transports: routing, latency and every fault kind, as a client sees them."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from pbssim.faults import FaultConfig

BASE = "https://pbs.test:8007"


def _auth(token: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": f"PBSAPIToken={token[0]}:{token[1]}"}


def _client(sim, **kwargs) -> httpx.Client:
    return httpx.Client(transport=sim.transport(), base_url=BASE, **kwargs)


def test_it_hands_requests_to_the_simulator(pbs_sim, pbs_admin_token) -> None:
    with _client(pbs_sim) as client:
        reply = client.get("/api2/json/version", headers=_auth(pbs_admin_token))
        refused = client.get("/api2/json/version")
    assert reply.status_code == 200
    assert reply.json()["data"]["version"].startswith("4.")
    assert refused.status_code == 401


def test_the_async_transport_hands_requests_to_the_simulator(pbs_sim, pbs_admin_token) -> None:
    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=pbs_sim.async_transport(), base_url=BASE) as client:
            return await client.get("/api2/json/version", headers=_auth(pbs_admin_token))

    assert asyncio.run(call()).status_code == 200


def test_latency_delays_every_request(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(latency_ms=60)
    with _client(pbs_sim) as client:
        started = time.perf_counter()
        client.get("/api2/json/ping")
        client.get("/api2/json/ping")
    assert time.perf_counter() - started >= 0.12


def test_async_latency_overlaps_for_concurrent_requests(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(latency_ms=50)

    async def fan_out() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=pbs_sim.async_transport(), base_url=BASE) as client:
            return await asyncio.gather(*(client.get("/api2/json/ping") for _ in range(50)))

    started = time.perf_counter()
    replies = asyncio.run(fan_out())
    elapsed = time.perf_counter() - started
    assert [r.status_code for r in replies] == [200] * 50
    assert 0.05 <= elapsed < 0.6, elapsed  # about one latency, not 50 (2.5 s)


def test_an_error_fault_answers_5xx_in_plain_text_without_handling(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(error_rate=1.0)
    with _client(pbs_sim) as client:
        replies = [client.get("/api2/json/ping") for _ in range(20)]
    assert {r.status_code for r in replies} <= {500, 503}
    assert replies[0].headers["content-type"].startswith("text/plain")
    assert replies[0].text.startswith("simulated fault")
    assert pbs_sim.request_log == []


def test_a_timeout_fault_raises_read_timeout_after_the_clients_timeout(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(timeout_rate=1.0, timeout_hold_s=30)
    with _client(pbs_sim, timeout=0.2) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            client.get("/api2/json/ping")
    assert 0.2 <= time.perf_counter() - started < 2
    # The server did the work; only the answer was lost.
    assert [entry[:2] for entry in pbs_sim.request_log] == [("GET", "/api2/json/ping")]


def test_a_timeout_fault_holds_at_most_timeout_hold_s(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(timeout_rate=1.0, timeout_hold_s=0.1)
    with _client(pbs_sim, timeout=30) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            client.get("/api2/json/ping")
    assert time.perf_counter() - started < 1


def test_the_async_timeout_fault_raises_read_timeout(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(timeout_rate=1.0)

    async def call() -> None:
        async with httpx.AsyncClient(
            transport=pbs_sim.async_transport(), base_url=BASE, timeout=0.1
        ) as client:
            await client.get("/api2/json/ping")

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(call())


def test_a_drop_fault_looks_like_a_server_hanging_up(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(drop_rate=1.0)
    with _client(pbs_sim) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get("/api2/json/ping")
    assert pbs_sim.request_log == []


def test_a_seed_makes_the_fault_sequence_repeatable(pbs_sim_factory) -> None:
    def statuses() -> list[int]:
        sim = pbs_sim_factory()
        sim.faults = FaultConfig(error_rate=0.5, seed=7)
        with _client(sim) as client:
            return [client.get("/api2/json/ping").status_code for _ in range(30)]

    first = statuses()
    assert first == statuses()
    assert 200 in first
    assert {500, 503} & set(first)


def test_faults_are_limited_to_the_configured_methods(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(error_rate=1.0, latency_ms=500, methods=frozenset({"POST"}))
    with _client(pbs_sim) as client:
        started = time.perf_counter()
        assert client.get("/api2/json/ping").status_code == 200
    assert time.perf_counter() - started < 0.4


def test_the_control_interface_is_never_faulted(pbs_sim) -> None:
    pbs_sim.faults = FaultConfig(drop_rate=1.0)
    with _client(pbs_sim) as client:
        reply = client.get("/_sim/faults")
    assert reply.status_code == 200
    assert reply.json()["data"]["drop_rate"] == 1.0


def test_control_sets_faults_seeds_data_and_counts_calls(pbs_sim, pbs_admin_token) -> None:
    with _client(pbs_sim) as client:
        faults = client.put("/_sim/faults", json={"latency_ms": 5, "error_rate": 0.25, "seed": 3})
        added = client.post(
            "/_sim/datastores",
            json={"name": "store3", "total_bytes": 2**40, "used_bytes": 2**30,
                  "gc_index_data_bytes": 2**31, "gc_disk_bytes": 2**30},
        )
        seeded = client.post(
            "/_sim/snapshots",
            json=[
                {"store": "store3", "ns": "clients/acme", "backup_type": "vm", "backup_id": "100",
                 "backup_time": 1_700_000_000 + i * 86400, "size": 2**30}
                for i in range(3)
            ],
        )
        client.put("/_sim/faults", json={"latency_ms": 0, "error_rate": 0})
        client.get("/api2/json/version", headers=_auth(pbs_admin_token))
        client.get("/api2/json/version", headers=_auth(pbs_admin_token))
        counts = client.get("/_sim/requests", params={"reset": "1"}).json()["data"]
        after_reset = client.get("/_sim/requests").json()["data"]
        state = client.get("/_sim/state")
    assert faults.status_code == 200
    assert (faults.json()["data"]["latency_ms"], faults.json()["data"]["error_rate"]) == (5.0, 0.25)
    assert added.json() == {"data": ["store3"]}
    assert seeded.json() == {"data": 3}
    assert counts["by_route"] == {"GET /api2/json/version": 2}
    assert counts["by_status"] == {"200": 2}
    assert after_reset["total"] == 0
    assert state.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/_sim/faults", {"error_rate": 2}, 400),
        ("PUT", "/_sim/faults", {"error_rate": 0.6, "drop_rate": 0.6}, 400),
        ("PUT", "/_sim/faults", {"bogus": 1}, 400),
        ("POST", "/_sim/snapshots", {"store": "store1"}, 400),
        ("POST", "/_sim/snapshots", [], 400),
        ("POST", "/_sim/datastores", {"name": "x", "colour": "red"}, 400),
        ("GET", "/_sim/nothing-here", None, 404),
        ("DELETE", "/_sim/state", None, 405),
        ("PUT", "/_sim/down", {"seconds": 5}, 400),  # only a server can go down
    ],
)
def test_control_refuses_bad_requests_with_a_json_error(pbs_sim, method, path, body, status) -> None:
    with _client(pbs_sim) as client:
        reply = client.request(method, path, json=body)
    assert reply.status_code == status
    assert reply.json()["error"]


def test_control_reset_empties_the_simulator_and_makes_a_new_admin_token(
    pbs_sim, pbs_admin_token
) -> None:
    with _client(pbs_sim) as client:
        reply = client.post("/_sim/reset")
        state = client.get("/_sim/state").json()["data"]
        token = reply.json()["data"]
        old = client.get("/api2/json/version", headers=_auth(pbs_admin_token))
        new = client.get("/api2/json/version", headers=_auth((token["token_id"], token["token_secret"])))
    assert reply.status_code == 200
    assert state["datastores"] == []
    assert (old.status_code, new.status_code) == (401, 200)


def test_control_reset_without_bootstrap_leaves_no_token(pbs_sim, pbs_admin_token) -> None:
    with _client(pbs_sim) as client:
        reply = client.post("/_sim/reset", json={"bootstrap": False})
        state = client.get("/_sim/state").json()["data"]
    assert reply.json() == {"data": None}
    assert state["tokens"] == []


def test_the_async_transport_keeps_the_loop_free_during_pbs_auth_delays(pbs_sim) -> None:
    pbs_sim.auth_delay_s = 0.3

    async def run() -> tuple[int, float]:
        async with httpx.AsyncClient(transport=pbs_sim.async_transport(), base_url=BASE) as client:
            started = time.perf_counter()
            replies = await asyncio.gather(*(client.get("/api2/json/version") for _ in range(4)))
            return replies[0].status_code, time.perf_counter() - started

    status, elapsed = asyncio.run(run())
    assert status == 401
    assert 0.3 <= elapsed < 1.0  # four delayed 401s overlap instead of 1.2 s in a row
