"""The control interface over HTTPS is protected by the control key."""

from __future__ import annotations

from pbssim.faults import FaultConfig
from tests.pbssim.test_server_https import verified_client


def test_control_refuses_requests_without_the_key(pbs_https) -> None:
    with verified_client(pbs_https) as client:
        missing = client.get("/_sim/state")
        wrong = client.put("/_sim/faults", json={"error_rate": 1}, headers={"X-Sim-Control-Key": "x"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert pbs_https.sim.faults.error_rate == 0


def test_control_with_the_key_sets_faults_and_reads_state(pbs_https) -> None:
    with verified_client(pbs_https) as client:
        faults = client.put("/_sim/faults", json={"error_rate": 1}, headers=pbs_https.control_headers)
        state = client.get("/_sim/state", headers=pbs_https.control_headers)
        faulted = client.get("/api2/json/ping")
    assert faults.status_code == 200
    assert state.status_code == 200
    assert pbs_https.sim.faults.error_rate == 1.0
    assert faulted.status_code in (500, 503)


def test_control_is_never_faulted_over_https(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(drop_rate=1.0)
    with verified_client(pbs_https) as client:
        reply = client.get("/_sim/faults", headers=pbs_https.control_headers)
    assert reply.status_code == 200


def test_control_counts_pbs_calls_by_method_and_path(pbs_https) -> None:
    with verified_client(pbs_https) as client:
        for _ in range(3):
            client.get("/api2/json/ping")
        client.get("/api2/json/version")
        counts = client.get("/_sim/requests?reset=1", headers=pbs_https.control_headers).json()
        again = client.get("/_sim/requests", headers=pbs_https.control_headers).json()
    assert counts["data"]["by_route"] == {"GET /api2/json/ping": 3, "GET /api2/json/version": 1}
    assert counts["data"]["by_status"] == {"200": 3, "401": 1}
    assert again["data"]["total"] == 0


def test_the_control_key_stays_out_of_reprs(pbs_https) -> None:
    assert pbs_https.control_key not in repr(pbs_https)
    assert pbs_https.control_key not in repr(pbs_https.control)
