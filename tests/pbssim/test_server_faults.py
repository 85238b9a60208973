"""Faults and host-down modes of the HTTPS server, observed from a real client."""

from __future__ import annotations

import time

import httpx
import pytest

from pbssim.faults import FaultConfig
from tests.pbssim.test_server_https import verified_client


def test_latency_delays_each_answer(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(latency_ms=80)
    with verified_client(pbs_https) as client:
        client.get("/api2/json/ping")
        started = time.perf_counter()
        assert client.get("/api2/json/ping").status_code == 200
    assert time.perf_counter() - started >= 0.08


def test_an_error_fault_answers_500_or_503_with_a_plain_text_body(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(error_rate=1.0)
    with verified_client(pbs_https) as client:
        replies = [client.get("/api2/json/ping") for _ in range(10)]
    assert {r.status_code for r in replies} <= {500, 503}
    assert all(r.headers["content-type"].startswith("text/plain") for r in replies)
    assert all(r.text.startswith("simulated fault") for r in replies)
    assert pbs_https.sim.request_log == []
    # The connection stays usable: errors are answers, not hang-ups.
    assert pbs_https.connections_accepted == 1


def test_a_timeout_fault_never_answers_and_the_client_times_out(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(timeout_rate=1.0, timeout_hold_s=30)
    with verified_client(pbs_https, timeout=0.5) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.ReadTimeout):
            client.get("/api2/json/ping")
    assert 0.5 <= time.perf_counter() - started < 3
    # The request was handled; only its answer was lost.
    assert [entry[:2] for entry in pbs_https.sim.request_log] == [("GET", "/api2/json/ping")]


def test_a_timed_out_request_is_hung_up_after_the_hold(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(timeout_rate=1.0, timeout_hold_s=0.3)
    with verified_client(pbs_https, timeout=10) as client:
        started = time.perf_counter()
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/api2/json/ping")
    assert 0.3 <= time.perf_counter() - started < 3


def test_a_drop_fault_closes_the_connection_without_an_answer(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(drop_rate=1.0)
    with verified_client(pbs_https) as client, pytest.raises(httpx.RemoteProtocolError):
        client.get("/api2/json/ping")
    assert pbs_https.sim.request_log == []


def test_a_mix_of_faults_shows_every_kind(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(
        error_rate=0.25, timeout_rate=0.25, drop_rate=0.25, timeout_hold_s=0.05, seed=11
    )
    seen: set[str] = set()
    with verified_client(pbs_https, timeout=2) as client:
        for _ in range(40):
            try:
                reply = client.get("/api2/json/ping")
                seen.add("ok" if reply.status_code == 200 else "5xx")
            except httpx.RemoteProtocolError:
                seen.add("hang-up")  # a drop, or a timeout's hold ending
    assert seen == {"ok", "5xx", "hang-up"}


def test_a_paused_host_refuses_connections_until_resumed(pbs_https) -> None:
    with verified_client(pbs_https) as client:
        assert client.get("/api2/json/ping").status_code == 200
        pbs_https.pause()
        with pytest.raises(httpx.ConnectError):
            client.get("/api2/json/ping")
        pbs_https.resume()
        assert client.get("/api2/json/ping").status_code == 200


def test_a_host_paused_for_a_while_comes_back_by_itself(pbs_https) -> None:
    pbs_https.pause(seconds=0.5)
    with verified_client(pbs_https) as client:
        with pytest.raises(httpx.ConnectError):
            client.get("/api2/json/ping")
        time.sleep(0.8)
        assert client.get("/api2/json/ping").status_code == 200


def test_a_hanging_host_accepts_but_never_answers_while_control_still_works(pbs_https) -> None:
    pbs_https.pause(mode="hang")
    with verified_client(pbs_https, timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/api2/json/ping")
        assert client.get("/_sim/faults", headers=pbs_https.control_headers).status_code == 200
        pbs_https.resume()
        assert client.get("/api2/json/ping").status_code == 200


def test_control_takes_the_host_down_for_some_seconds(pbs_https) -> None:
    with verified_client(pbs_https) as client:
        reply = client.put(
            "/_sim/down", json={"seconds": 0.6, "mode": "refuse"}, headers=pbs_https.control_headers
        )
        assert reply.status_code == 200
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):
            client.get("/api2/json/ping")
        time.sleep(0.6)
        assert client.get("/api2/json/ping").status_code == 200


def test_stop_ends_requests_held_by_a_timeout_fault(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(timeout_rate=1.0, timeout_hold_s=60)
    with verified_client(pbs_https, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.get("/api2/json/ping")
    started = time.perf_counter()
    pbs_https.stop()
    assert time.perf_counter() - started < 2
