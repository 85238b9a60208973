"""`make run`: the whole portal on one machine, for a demo or development.

Steps:
1. migrate the SQLite database under var/;
2. start a private Redis (var/redis, port 6390);
3. start two simulated PBS hosts over HTTPS on loopback with demo data;
4. register them in the portal with their pinned fingerprints, seed plans,
   logins (printed once, when first created) and a tenant for each customer
   namespace the simulators already hold (onboarded by the worker);
5. start web + Celery worker + Celery beat; once the tenants are onboarded, measure
   them and write the demo history (usage, closed months, quotas, offsite, a failed run);
6. run until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var"
PY = sys.executable
REDIS_PORT = int(os.environ.get("PORTAL_DEV_REDIS_PORT", "6390"))
WEB_PORT = int(os.environ.get("PORTAL_DEV_WEB_PORT", "8000"))
SIM_PORTS = (8007, 8008)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    env["DJANGO_DEBUG"] = "1"  # make run is development mode, asked for explicitly
    env.setdefault("REDIS_URL", f"redis://127.0.0.1:{REDIS_PORT}/0")
    env.setdefault("PORTAL_BASE_URL", f"http://127.0.0.1:{WEB_PORT}")
    # Printed on invoice PDFs: the demo's documents say what they are.
    env.setdefault("PORTAL_COMPANY_NAME", "Example MSP (demo data)")
    env.setdefault("PORTAL_DEMO_DATA", "1")
    env.setdefault("PORTAL_COMPANY_ADDRESS", "1 Example Street | 1000 Demo City")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(port: int, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(port):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start on port {port}")


def _manage(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [PY, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=_env(),
        check=True,
        text=True,
        capture_output=capture,
    )


def start_redis(children: list[subprocess.Popen[bytes]]) -> None:
    if _port_open(REDIS_PORT):
        print(f"redis: reusing the server already on port {REDIS_PORT}")
        return
    redis = shutil.which("redis-server")
    if not redis:
        raise SystemExit("redis-server is missing: apt-get install -y redis-server")
    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    children.append(
        subprocess.Popen(  # noqa: S603
            [redis, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", str(VAR / "redis"),
             "--save", "60 1", "--appendonly", "no", "--loglevel", "warning"],
        )
    )
    _wait_port(REDIS_PORT, "redis")


def start_simulators(children: list[subprocess.Popen[bytes]]) -> list[dict[str, str]]:
    hosts = []
    for index, port in enumerate(SIM_PORTS):
        cert_dir = VAR / f"pbs{index + 1}"
        cert_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(  # noqa: S603
            [PY, "-m", "pbssim", "--port", str(port), "--demo", "--demo-host", str(index),
             "--cert-dir", str(cert_dir), "--state-file", str(cert_dir / "state.pickle"),
             "--latency-ms", "5", "--json"],
            cwd=BASE_DIR,
            env=_env(),
            stdout=subprocess.PIPE,
        )
        children.append(proc)
        line = proc.stdout.readline().decode() if proc.stdout else ""
        if not line:
            raise SystemExit(f"PBS simulator on port {port} did not start")
        info = json.loads(line)
        info["name"] = f"pbs{index + 1}"
        hosts.append(info)
        print(f"pbs{index + 1}: simulated PBS at {info['url']} fingerprint {info['fingerprint']}")
    return hosts


def seed_portal(hosts: list[dict[str, str]]) -> list[str]:
    """Register the hosts (secrets on stdin only), plans, logins and demo tenants.
    Returns the lines announcing new logins, to repeat them once the stack is up."""
    keys = ("name", "url", "fingerprint", "token_id", "token_secret")
    payload = json.dumps([{key: info[key] for key in keys} for info in hosts])
    result = subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
        [PY, str(BASE_DIR / "manage.py"), "demo_seed"], cwd=BASE_DIR, env=_env(), check=True, text=True,
        input=payload, stdout=subprocess.PIPE,
    )
    print(result.stdout, end="", flush=True)
    return [line for line in result.stdout.splitlines() if line.startswith("login created")]


def first_usage_sample(timeout: float = 90.0) -> None:
    """Once the demo tenants are onboarded, measure them so the usage pages have figures."""
    probe = (
        "from tenants.models import Tenant as T;"
        "print(T.objects.filter(status__in=['pending','onboarding']).count())"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _manage("shell", "--no-imports", "-c", probe, capture=True).stdout.split()[-1:] == ["0"]:
            _manage("billing", "collect")
            return
        time.sleep(2)
    print("demo tenants are still onboarding; usage is measured at the next scheduled run", file=sys.stderr)


def demo_history() -> None:
    """90 days of usage, two closed months, quotas, a stale offsite copy and a failed run,
    so every page has something to show at once (idempotent: a restart adds nothing)."""
    try:
        _manage("demo_seed", "--history")
    except subprocess.CalledProcessError:
        print("the demo history could not be written; the portal runs without it", file=sys.stderr)
    # Chunk-exact usage reads every snapshot's index (minutes): the worker does today's run in
    # the background instead of beat at night, and the usage pages show it once it is done.
    _manage("shell", "--no-imports", "-c",
            "from attribution.tasks import attribution_collect_all; attribution_collect_all.delay()")  # fmt: skip


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    VAR.mkdir(exist_ok=True)
    os.chdir(BASE_DIR)
    children: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(0)))
    # A shell that starts us in the background ignores SIGINT for us; Ctrl-C must still work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _manage("migrate", "--noinput", "-v0")
        start_redis(children)
        hosts = start_simulators(children)
        new_logins = seed_portal(hosts)
        env = _env()
        web = [PY, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload"]
        worker = [PY, "-m", "celery", "-A", "portal", "worker", "-l", "INFO", "-c", "2",
                  "--without-gossip", "--without-mingle"]
        beat = [PY, "-m", "celery", "-A", "portal", "beat", "-l", "INFO",
                "-s", str(VAR / "celerybeat-schedule")]
        for command in (worker, beat, web):
            children.append(subprocess.Popen(command, cwd=BASE_DIR, env=env))  # noqa: S603
        _wait_port(WEB_PORT, "web server")
        first_usage_sample()
        demo_history()
        banner = [f"Portal ready: open http://127.0.0.1:{WEB_PORT}/  (Ctrl-C stops everything)", *new_logins]
        if not new_logins:
            banner.append("Logins were printed when they were created (`rm -rf var` starts afresh).")
        print("\n" + "\n".join(banner) + "\n", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a process of the stack exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
