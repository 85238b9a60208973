"""Benchmark (b): 1,000 snapshot listings against a simulator with 10 ms latency per request.

Usage collection lists snapshots namespace by namespace, so its wall time is
bounded below by calls x latency / concurrency. We run AsyncPbsClient against
a SimServer over real HTTPS (pinned fingerprint, keep-alive) with
FaultConfig(latency_ms=10), for a few connection limits, and report the wall
time against that floor. The server runs in its own process, as a real PBS
would, so the client does not share its interpreter lock with the server.
An in-process run (async transport, same latency) shows the client's share
without TLS and server threads.

    .venv/bin/python bench/bench_snapshot_fanout.py [--quick]

Last lines: ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pbsclient import AsyncPbsClient, RetryPolicy

STORE = "store1"
CALLS = 1000
LATENCY_MS = 10.0
SNAPSHOTS_PER_NS = 2


def build_simulator() -> tuple[Any, str, str, list[str]]:
    try:
        from pbssim import FaultConfig, Simulator
    except ImportError as exc:
        raise SystemExit(f"bench_snapshot_fanout: the PBS simulator is not importable ({exc})") from exc
    sim = Simulator()
    tokenid, secret = sim.bootstrap_admin_token()
    sim.add_datastore(STORE, total_bytes=4 * 2**40, used_bytes=2**40)
    namespaces = [f"clients/t{i:04d}" for i in range(CALLS)]
    for i, ns in enumerate(namespaces):
        for j in range(SNAPSHOTS_PER_NS):
            sim.seed_snapshot(
                store=STORE,
                ns=ns,
                backup_type="vm",
                backup_id=str(100 + i),
                backup_time=1_700_000_000 + j * 86400,
                size=2**30,
                owner=f"t{i:04d}@pbs!backup",
                verification="ok",
            )
    sim.faults = FaultConfig(latency_ms=LATENCY_MS)
    return sim, tokenid, secret, namespaces


def _serve(conn: Connection) -> None:
    """Child process: build the simulator, serve it over HTTPS until told to stop."""
    from pbssim import SimServer

    sim, tokenid, secret, _ = build_simulator()
    server = SimServer(sim).start()
    conn.send((server.url, server.fingerprint, tokenid, secret))
    conn.recv()
    server.stop()


async def fan_out(client: AsyncPbsClient, namespaces: list[str]) -> tuple[float, int]:
    await client.snapshot_list(STORE, ns=namespaces[0])  # warm-up: TLS handshake, pool
    client.stats.reset()
    start, cpu_start = time.perf_counter(), time.process_time()
    listings = await asyncio.gather(*(client.snapshot_list(STORE, ns=ns) for ns in namespaces))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(
        f"  max_connections={client.max_connections}: wall {wall:.3f} s, this process's CPU {cpu:.3f} s "
        f"({cpu / len(namespaces) * 1000:.2f} ms per listing)",
        file=sys.stderr,
    )
    return wall, sum(len(listing) for listing in listings)



def run(namespaces: list[str], concurrency: int, **client_kwargs: Any) -> tuple[float, int, int]:
    async def main() -> tuple[float, int, int]:
        async with AsyncPbsClient(
            max_connections=concurrency, retry=RetryPolicy.never(), timeout=30.0, host_label="bench", **client_kwargs
        ) as client:
            wall, snapshots = await fan_out(client, namespaces)
            return wall, snapshots, client.stats.requests

    return asyncio.run(main())


def main() -> int:
    quick = "--quick" in sys.argv
    levels = [16] if quick else [8, 16, 32]
    sim, tokenid, secret, namespaces = build_simulator()
    auth = {"token_id": tokenid, "token_secret": secret}
    rows: list[tuple[str, float, float]] = []

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        url, fingerprint, server_tokenid, server_secret = parent.recv()
        for concurrency in levels:
            wall, snapshots, requests = run(
                namespaces,
                concurrency,
                base_url=url,
                fingerprint=fingerprint,
                token_id=server_tokenid,
                token_secret=server_secret,
            )
            assert snapshots == CALLS * SNAPSHOTS_PER_NS, snapshots
            assert requests == CALLS, requests
            floor = CALLS * LATENCY_MS / 1000 / concurrency
            rows.append((f"snapshot fan-out, {CALLS} listings, HTTPS, concurrency {concurrency}", wall, floor))
    finally:
        parent.send("stop")
        server.join(30)

    concurrency = levels[-1]
    wall, snapshots, _ = run(
        namespaces, concurrency, base_url="https://pbs.bench:8007", transport=sim.async_transport(), **auth
    )
    assert snapshots == CALLS * SNAPSHOTS_PER_NS
    floor = CALLS * LATENCY_MS / 1000 / concurrency
    rows.append((f"snapshot fan-out, {CALLS} listings, in-process, concurrency {concurrency}", wall, floor))

    print(f"{CALLS} calls, {LATENCY_MS:.0f} ms simulated latency each; floor = calls x latency / concurrency",
          file=sys.stderr)  # fmt: skip
    for label, wall, floor in rows:
        print(f"{label}\t{wall:.3f} s\t{floor:.3f} s\t-\t-")  # figure, value, floor, target, verdict
    return 0


if __name__ == "__main__":
    sys.exit(main())
