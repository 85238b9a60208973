"""``python -m pbssim``: starts, prints what a script or a person needs, stops on a signal."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(*args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pbssim", "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def read_lines(proc: subprocess.Popen[str], until: str, timeout: float = 30) -> list[str]:
    """stdout lines up to the one containing ``until`` (read in a thread: no partial-buffer traps)."""
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
            if until in line:
                return
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if until in line:
            return seen
    raise AssertionError(f"no {until!r} in the output: {seen}")


def served_fingerprint(url: str) -> str:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=5) as raw, context.wrap_socket(raw) as tls:
        digest = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def pinned_client(info: dict[str, str]) -> httpx.Client:
    # Trust the certificate only after checking it against the printed fingerprint.
    assert served_fingerprint(info["url"]) == info["fingerprint"]
    host, port = info["url"].removeprefix("https://").rsplit(":", 1)
    pem = ssl.get_server_certificate((host, int(port)))
    return httpx.Client(base_url=info["url"], verify=ssl.create_default_context(cadata=pem))


def test_json_mode_prints_one_line_and_serves_the_demo_data_until_sigterm() -> None:
    with running("--json", "--demo") as proc:
        [line] = read_lines(proc, until="control_key")
        info = json.loads(line)
        assert set(info) == {"url", "fingerprint", "token_id", "token_secret", "control_key"}
        with pinned_client(info) as client:
            auth = {"Authorization": f"PBSAPIToken={info['token_id']}:{info['token_secret']}"}
            assert client.get("/api2/json/version", headers=auth).status_code == 200
            refused = client.get("/_sim/state")
            state = client.get("/_sim/state", headers={"X-Sim-Control-Key": info["control_key"]})
        assert refused.status_code == 401
        assert state.status_code == 200
        assert "store1" in state.text
        assert "store2" in state.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "stopped" in proc.stderr.read()


def test_human_mode_prints_url_fingerprint_token_and_control_key_and_stops_on_sigint() -> None:
    with running() as proc:
        lines = read_lines(proc, until="Stop with")
        text = "\n".join(lines)
        for label in ("URL:", "Fingerprint:", "Admin token:", "Token secret:", "Control key:"):
            assert label in text
        url = next(line.split()[-1] for line in lines if "URL:" in line)
        fingerprint = next(line.split()[-1] for line in lines if "Fingerprint:" in line)
        assert served_fingerprint(url) == fingerprint
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0


def test_a_cert_dir_keeps_the_fingerprint_across_runs(tmp_path: Path) -> None:
    fingerprints = []
    for _ in range(2):
        with running("--json", "--cert-dir", str(tmp_path)) as proc:
            fingerprints.append(json.loads(read_lines(proc, until="control_key")[0])["fingerprint"])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
    assert fingerprints[0] == fingerprints[1]


def test_fault_options_apply_to_pbs_requests() -> None:
    with running("--json", "--error-rate", "1", "--latency-ms", "100") as proc:
        info = json.loads(read_lines(proc, until="control_key")[0])
        with pinned_client(info) as client:
            started = time.perf_counter()
            reply = client.get("/api2/json/ping")
            elapsed = time.perf_counter() - started
            faults = client.get("/_sim/faults", headers={"X-Sim-Control-Key": info["control_key"]})
        assert reply.status_code in (500, 503)
        assert elapsed >= 0.1
        assert faults.json()["data"]["error_rate"] == 1.0


def test_a_bad_option_exits_with_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pbssim", "--error-rate", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2
    assert "between 0 and 1" in result.stderr


def test_the_demo_hosts_get_different_tenants_with_a_month_of_backups() -> None:
    from pbssim import Simulator
    from pbssim.demo import DAY, seed_demo

    now = 1_750_000_000
    states = []
    for index in (0, 1):
        sim = Simulator()
        summary = seed_demo(sim, host_index=index, now=now)
        states.append(sim.state_snapshot())
        assert summary["datastores"] == ["store1", "store2"]
        sizes = {d["name"]: d for d in states[-1]["datastores"]}
        assert all(d["total_bytes"] > d["used_bytes"] > 0 for d in sizes.values())
        namespaces = {ns for names in states[-1]["namespaces"].values() for ns in names}
        assert "clients" in namespaces
        assert summary["snapshots"] == sum(d["snapshots"] for d in sizes.values())
    tenants = [
        {ns for names in state["namespaces"].values() for ns in names if ns.startswith("clients/")}
        for state in states
    ]
    assert tenants[0].isdisjoint(tenants[1])
    assert len(tenants[0]) == 3
    # Daily backups over 30 days and today's once its hour has come (now is 15:06 UTC).
    from pbssim.demo import demo_snapshots

    times = sorted({s["backup_time"] // DAY for s in demo_snapshots(host_index=0, now=now)})
    assert len(times) == 31
    assert times[-1] == now // DAY
    # Just after midnight today's runs have not happened yet: the newest is yesterday's.
    early = now // DAY * DAY + 60
    assert max(s["backup_time"] for s in demo_snapshots(host_index=0, now=early)) < early
    assert all(s["backup_time"] <= now for s in demo_snapshots(host_index=0, now=now))
