"""Benchmark (a): what pbsclient costs on top of raw httpx, against the same simulator.

Both sides make the same request through the same kind of transport and decode
the JSON; pbsclient additionally validates arguments, maps errors, logs, counts
and builds typed models. We time every call, take the median per call, and
report both (the raw call is the floor).

Runs in-process (the simulator's httpx transport, no network) and over real
HTTPS against a SimServer on loopback, in its own process like a real PBS
(keep-alive; pbsclient pinned to the server's fingerprint, raw httpx with
verification off, so the TLS work per request is the same).

    .venv/bin/python bench/bench_client_overhead.py [--quick]

Last lines: ``figure<TAB>value<TAB>peer<TAB>target<TAB>verdict``.
"""

from __future__ import annotations

import gc
import multiprocessing
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from pbsclient import PbsClient, RetryPolicy

STORE = "store1"
NS = "clients/acme"
SNAPSHOTS = 20


def build_simulator() -> tuple[Any, str, str]:
    try:
        from pbssim import Simulator
    except ImportError as exc:  # fail loudly: a benchmark without its simulator is meaningless
        raise SystemExit(f"bench_client_overhead: the PBS simulator is not importable ({exc})") from exc
    sim = Simulator()
    tokenid, secret = sim.bootstrap_admin_token()
    sim.add_datastore(STORE, total_bytes=4 * 2**40, used_bytes=2**40)
    for i in range(SNAPSHOTS):
        sim.seed_snapshot(
            store=STORE,
            ns=NS,
            backup_type="vm",
            backup_id=str(100 + i % 5),
            backup_time=1_700_000_000 + i * 3600,
            size=(i + 1) * 2**30,
            owner="acme@pbs!backup",
            verification="ok",
        )
    return sim, tokenid, secret


def _serve(conn: Connection) -> None:
    """Child process: the same simulator, served over HTTPS until told to stop."""
    from pbssim import SimServer

    sim, tokenid, secret = build_simulator()
    server = SimServer(sim).start()
    conn.send((server.url, server.fingerprint, tokenid, secret))
    conn.recv()
    server.stop()


def time_calls(call: Callable[[], Any], count: int) -> list[float]:
    """Per-call wall times in seconds (GC paused so one side does not pay for the other's garbage)."""
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(count):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return samples


def compare(
    label: str, raw: Callable[[], Any], ours: Callable[[], Any], *, rounds: int, per_round: int
) -> tuple[str, float, float]:
    """Alternate rounds of raw and client calls so drift hits both alike; medians per call."""
    raw()
    ours()  # warm-up: connections, imports, caches
    raw_samples: list[float] = []
    our_samples: list[float] = []
    for _ in range(rounds):
        raw_samples += time_calls(raw, per_round)
        our_samples += time_calls(ours, per_round)
    return label, statistics.median(our_samples), statistics.median(raw_samples)


def run_pair(
    client: PbsClient, raw: httpx.Client, where: str, *, rounds: int, per_round: int
) -> list[tuple[str, float, float]]:
    def raw_version() -> Any:
        response = raw.get("version")
        response.raise_for_status()
        return response.json()["data"]

    def raw_snapshots() -> Any:
        response = raw.get(f"admin/datastore/{STORE}/snapshots", params={"ns": NS})
        response.raise_for_status()
        return response.json()["data"]

    assert len(raw_snapshots()) == len(client.snapshot_list(STORE, ns=NS)) == SNAPSHOTS
    return [
        compare(f"client overhead, version() {where}", raw_version, client.version, rounds=rounds, per_round=per_round),
        compare(
            f"client overhead, snapshot_list ({SNAPSHOTS} snapshots) {where}",
            raw_snapshots,
            lambda: client.snapshot_list(STORE, ns=NS),
            rounds=rounds,
            per_round=per_round,
        ),
    ]


def main() -> int:
    quick = "--quick" in sys.argv
    rounds, per_round = (3, 100) if quick else (7, 300)
    sim, tokenid, secret = build_simulator()
    auth = {"Authorization": f"PBSAPIToken={tokenid}:{secret}"}
    results: list[tuple[str, float, float]] = []

    # In-process: same simulator transport class on both sides.
    base = "https://pbs.bench:8007"
    with (
        PbsClient(
            base_url=base, token_id=tokenid, token_secret=secret, transport=sim.transport(),
            retry=RetryPolicy.never(), host_label="bench",
        ) as client,
        httpx.Client(base_url=f"{base}/api2/json/", headers=auth, transport=sim.transport()) as raw,
    ):  # fmt: skip
        results += run_pair(client, raw, "in-process", rounds=rounds, per_round=per_round)

    # Real HTTPS on loopback, server in its own process.
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        url, fingerprint, tokenid, secret = parent.recv()
        auth = {"Authorization": f"PBSAPIToken={tokenid}:{secret}"}
        unchecked = ssl.create_default_context()
        unchecked.check_hostname = False
        unchecked.verify_mode = ssl.CERT_NONE
        with (
            PbsClient(
                base_url=url, token_id=tokenid, token_secret=secret, fingerprint=fingerprint,
                retry=RetryPolicy.never(), host_label="bench",
            ) as client,
            httpx.Client(base_url=f"{url}/api2/json/", headers=auth, verify=unchecked) as raw,
        ):  # fmt: skip
            results += run_pair(client, raw, "over HTTPS", rounds=max(2, rounds // 2), per_round=per_round // 2)
    finally:
        parent.send("stop")
        server.join(30)

    print(f"{rounds} rounds x {per_round} calls per side in-process; medians per call", file=sys.stderr)
    for label, ours, raw_median in results:
        # figure, value, floor (the same call with bare httpx), target, verdict
        print(f"{label}\t{ours * 1000:.3f} ms\traw httpx {raw_median * 1000:.3f} ms\t-\t-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
