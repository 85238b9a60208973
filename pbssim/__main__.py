"""Run the PBS simulator over HTTPS: ``python -m pbssim --port 8007 --demo``.

Prints the URL, the certificate fingerprint to pin, the bootstrap admin token
and the control key (or, with ``--json``, one JSON line with the same for
scripts), then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from pbssim.control import ControlError, build_faults

CONTROL_KEY_ENV = "PBSSIM_CONTROL_KEY"


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pbssim",
        description="A Proxmox Backup Server 4.2 simulator over HTTPS, for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=8007, help="port (default %(default)s, 0 = any free)")
    parser.add_argument(
        "--cert-dir",
        help="keep the certificate here (proxy.pem, proxy.key) so restarts keep the fingerprint",
    )
    parser.add_argument("--demo", action="store_true", help="seed demo datastores and backups")
    parser.add_argument(
        "--state-file",
        help="keep the simulated PBS's data here across restarts (loaded at start, saved every few "
        "seconds and at exit); a loaded state is not seeded again",
    )
    parser.add_argument(
        "--demo-host", type=int, default=0, metavar="N",
        help="which demo host's data to seed (0, 1, ...), so two simulators differ",
    )
    faults = parser.add_argument_group("fault injection (per PBS request)")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    faults.add_argument("--error-rate", type=_rate, default=0.0, help="share answered 500/503")
    faults.add_argument("--timeout-rate", type=_rate, default=0.0, help="share never answered")
    faults.add_argument("--drop-rate", type=_rate, default=0.0, help="share whose connection drops")
    faults.add_argument("--timeout-hold", type=float, default=30.0, metavar="SECONDS",
                        help="how long a timed-out request is held before the connection closes")
    faults.add_argument("--seed", type=int, help="random seed, for repeatable fault sequences")
    faults.add_argument(
        "--auth-delay", type=float, default=0.0, metavar="SECONDS",
        help="delay 401 answers like PBS (3 s there; 403 get a sixth of it)",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON line (url, fingerprint, token_id, token_secret, control_key) for scripts",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    from pbssim.server import SimServer
    from pbssim.simulator import Simulator

    # content=True: the reader protocol serves seeded manifests and indexes for every snapshot.
    sim = Simulator(auth_delay_s=args.auth_delay, content=True, content_seed=args.seed or 0)
    try:
        sim.faults = build_faults(
            sim.faults,
            {
                "latency_ms": args.latency_ms,
                "error_rate": args.error_rate,
                "timeout_rate": args.timeout_rate,
                "drop_rate": args.drop_rate,
                "timeout_hold_s": args.timeout_hold,
                "seed": args.seed,
            },
        )
    except ControlError as exc:
        print(f"pbssim: {exc.message}", file=sys.stderr)
        return 2
    restored = bool(args.state_file) and load_state(sim, args.state_file)
    token_id, token_secret = sim.bootstrap_admin_token()
    summary: dict[str, Any] | None = None
    if args.demo and not restored:
        from pbssim.demo import seed_demo

        summary = seed_demo(sim, host_index=args.demo_host)

    server = SimServer(
        sim, host=args.host, port=args.port, cert_dir=args.cert_dir,
        control_key=os.environ.get(CONTROL_KEY_ENV) or None,
    )
    try:
        server.start()
    except OSError as exc:
        print(f"pbssim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    info = {
        "url": server.url,
        "fingerprint": server.fingerprint,
        "token_id": token_id,
        "token_secret": token_secret,
        "control_key": server.control_key,
    }
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        _print_banner(info, summary)
    try:
        while not stop.wait(5.0 if args.state_file else 0.5):
            if args.state_file:
                save_state(sim, args.state_file)
    finally:
        server.stop()
        if args.state_file:
            save_state(sim, args.state_file)
    print("pbssim: stopped", file=sys.stderr, flush=True)
    return 0


def load_state(sim: Any, path: str) -> bool:
    """Restore a state saved by ``save_state``; False when there is none yet."""
    if not os.path.exists(path):
        return False
    with open(path, "rb") as handle:
        # Our own file, written by save_state below with 0600 permissions.
        sim.state = pickle.load(handle)  # noqa: S301
    return True


def save_state(sim: Any, path: str) -> None:
    """Write the state atomically (a crash mid-write keeps the previous file)."""
    with sim._lock:
        data = pickle.dumps(sim.state)
    temporary = f"{path}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def _print_banner(info: dict[str, str], summary: dict[str, Any] | None) -> None:
    lines = [
        "PBS simulator (PBS 4.2 API) is running.",
        f"  URL:          {info['url']}",
        f"  Fingerprint:  {info['fingerprint']}",
        f"  Admin token:  {info['token_id']}",
        f"  Token secret: {info['token_secret']}",
        f"  Control key:  {info['control_key']}   (header X-Sim-Control-Key for /_sim/...)",
    ]
    if summary:
        lines.append(
            f"  Demo data:    datastores {', '.join(summary['datastores'])}; "
            f"{summary['snapshots']} snapshots for {', '.join(summary['tenants'])}"
        )
    lines.append("Stop with Ctrl-C.")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
