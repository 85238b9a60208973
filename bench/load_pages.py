"""Load test: the staff overview and tenant list at 10,000 tenants and the client page, 50 users at once.

The stack is the production shape on loopback: nginx in front of gunicorn (sync workers)
with DJANGO_DEBUG=0, a private PostgreSQL and Redis (tests/services.py), and two simulated
PBS hosts over HTTPS in this process. The load comes from ``wrk`` in its own process.

Steps:

1. Start PostgreSQL and Redis, migrate, collect static files (manifest storage, as in
   production).
2. Seed 10,000 active tenants across the two hosts with bulk_create (like
   bench_onboarding's list figure), 31 days of usage samples for each (growing, with the
   datastores' GC disk bytes, so the overview has trends, growth and a month to project),
   a few open alerts and quota states, a staff user, and a client user whose tenant has
   backups on its simulated PBS host, a backup token and 90 days of usage samples.
3. Start gunicorn and nginx in front of it (as deploy/ does, without TLS); sign both users
   in with a real POST to the login page (with the CSRF cookie and token), once per
   connection, so every connection has its own session like a real user (sessions are
   saved on every request).
4. For each page, run wrk with 50 connections and a Lua script that sends the session
   cookies and records p50/p95/p99 and errors: socket errors, timeouts and every response
   that is not 200 (a redirect here means a lost session, so it counts).

Each page is loaded twice: as 50 users who read what they asked for before asking again
(think time: 1 to 3 s, at random; the targets apply to this), and saturated (no think
time: every connection sends its next request as soon as the last one is answered), which
shows the capacity of the two cores. Percentiles come from wrk's own histogram.

Prints ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict`` lines for run_all: per page and
mode the p50, p95 (floor: the workers' CPU time per request, below which no response can
come; target: 100 ms for 50 users with think time; verdict "met" or "MISSED"), p99, requests
per second, errors (target 0), and the gunicorn workers' CPU time per request (the app's own
cost, which depends far less on what else the machine is doing than the latency does: two
free cores serve at most 2000 / that many requests a second). ``--quick`` runs each load for
8 s instead of 30 s.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import (  # noqa: E402 - the repo root must be on sys.path first
    PostgresServer,
    RedisServer,
    ensure_binary,
    free_port,
    wait_until,
)

TENANTS = 10_000
CONNECTIONS = 50
THREADS = 2  # wrk threads; CONNECTIONS must divide evenly
TARGET_P95_MS = 100.0
THINK_MS = (1000, 3000)
PASSWORD = "load-test-password-1"  # noqa: S105 - a throwaway user in a throwaway database


def _exited_or_healthy(proc: subprocess.Popen[bytes], url: str) -> bool:
    """Stop waiting when the server exited (the caller reports why) or /healthz answers 200."""
    if proc.poll() is not None:
        return True
    with (
        contextlib.suppress(OSError),
        urllib.request.urlopen(f"{url}/healthz", timeout=2) as response,  # noqa: S310 - http on loopback
    ):
        return response.status == 200
    return False


@dataclass(frozen=True)
class Page:
    """One load target: a URL loaded with the sessions of one user."""

    name: str
    path: str
    user: str
    headers: tuple[tuple[str, str], ...] = ()


PAGES = [
    # The staff's first page: the overview (its sample-derived tiles come from a memo keyed
    # by their inputs; the warm-up pays the one computation, as the first visitor would).
    Page("overview", "/", "staff"),
    Page("tenant_list", "/tenants/", "staff"),
    Page("client_home", "/my/", "client"),
    # What the client page's backups panel asks for over HTMX (live from PBS, cached a minute).
    Page("client_backups", "/my/backups/", "client", (("HX-Request", "true"),)),
]


# --- the stack -----------------------------------------------------------------------


def portal_env(workdir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """The production settings (docs/configuration.md), minus TLS: plain HTTP on loopback."""
    from cryptography.fernet import Fernet

    return {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": Fernet.generate_key().decode() * 2,
        "PORTAL_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PORTAL_SECURE_COOKIES": "0",
        "PORTAL_SSL_REDIRECT": "0",
        "PORTAL_HSTS_SECONDS": "0",
        "PORTAL_REQUIRE_STAFF_TOTP": "0",  # the load test signs staff in with a password
        "PORTAL_VAR_DIR": str(workdir),
        "PORTAL_LOG_LEVEL": "WARNING",
        "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def start_host(name: str, *, with_backups_of: str = "") -> Any:
    """A simulated PBS host over HTTPS (threads in this process), registered in the portal."""
    from pbssim import SimServer, Simulator
    from tenants import services

    sim = Simulator()
    token_id, secret = sim.bootstrap_admin_token()
    sim.add_datastore("store1", total_bytes=64 * 2**40, used_bytes=2**40)
    if with_backups_of:
        now = int(time.time())
        for backup_type, backup_id in (("vm", "100"), ("vm", "101"), ("ct", "200"), ("host", "files")):
            for day in range(14):
                sim.seed_snapshot(
                    store="store1", ns=with_backups_of, backup_type=backup_type, backup_id=backup_id,
                    backup_time=now - day * 86_400 - 3_600, size=(20 + day) * 2**30,
                    verification="ok" if day % 7 == 1 else None,
                )  # fmt: skip
    server = SimServer(sim, host="127.0.0.1", port=0)
    server.start()
    services.pbshost_register(
        name=name, url=server.url, fingerprint=server.fingerprint, token_id=token_id, token_secret=secret
    )
    return server


def seed(count: int) -> None:
    """``count`` active tenants across the hosts, plans, a staff user and a client user."""
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from accounts.models import Role, User
    from billing.models import UsageSample
    from plans.models import Plan
    from tenants.models import Datastore, Tenant, TenantToken

    stores = list(Datastore.objects.select_related("host").order_by("host__name"))
    plans = [
        Plan.objects.create(name=f"Plan {metric}", metric=metric, price_per_gib=Decimal("0.02"))
        for metric in ("logical", "latest")
    ]
    Tenant.objects.bulk_create(
        (
            Tenant(
                slug=f"acme-{i:05d}", name=f"Acme {i}", status="active",
                host=stores[i % len(stores)].host, datastore=stores[i % len(stores)],
                namespace=f"clients/acme-{i:05d}", pbs_userid=f"acme-{i:05d}@pbs",
                plan=plans[i % len(plans)],
            )
            for i in range(count)
        ),
        batch_size=2000,
    )  # fmt: skip
    User.objects.create_user(username="staff", password=PASSWORD, role=Role.ADMIN)
    tenant = Tenant.objects.get(slug="acme-00000")
    User.objects.create_user(username="client", password=PASSWORD, role=Role.CLIENT, tenant=tenant)
    TenantToken.objects.create(
        tenant=tenant, purpose=TenantToken.Purpose.BACKUP, name="backup",
        tokenid="acme-00000@pbs!backup",
    )  # fmt: skip
    today = timezone.localdate()
    UsageSample.objects.bulk_create(
        UsageSample(
            tenant=tenant, day=today - dt.timedelta(days=d), taken_at=timezone.now(),
            host_name=tenant.host.name, datastore="store1", namespace=tenant.namespace,
            logical_bytes=(300 - d) * 2**30, latest_bytes=(90 - d // 2) * 2**30,
            snapshot_count=56, group_count=4, namespace_count=1,
        )
        for d in range(90)
    )  # fmt: skip
    seed_history(today, exclude=tenant.pk)


def seed_history(today: Any, *, exclude: int, days: int = 31) -> None:
    """31 days of samples for every other tenant (growing at a rate of its own, the datastore
    GC figure alongside), an open alert and a quota state for every 50th, a failed run."""
    import datetime as dt

    from django.utils import timezone

    from alerts.models import Alert, QuotaState
    from billing.models import UsageSample
    from tenants.models import OnboardingRun, Tenant

    rows = list(Tenant.objects.exclude(pk=exclude).values_list("pk", "host__name", "namespace"))
    now = timezone.now()
    for d in range(days):
        day = today - dt.timedelta(days=d)
        UsageSample.objects.bulk_create(
            (
                UsageSample(
                    tenant_id=pk, day=day, taken_at=now, host_name=host, datastore="store1", namespace=ns,
                    logical_bytes=(50 + pk % 400 + (days - d) * (pk % 7)) * 2**30, latest_bytes=(20 + pk % 90) * 2**30,
                    gc_disk_bytes=(2**40 + (days - d) * 40 * 2**30), snapshot_count=30, group_count=3,
                    namespace_count=1, newest_backup_at=now - dt.timedelta(hours=pk % 72),
                )
                for pk, host, ns in rows
            ),
            batch_size=5000,
        )  # fmt: skip
    picked = [pk for pk, _h, _n in rows[::50]]
    Alert.objects.bulk_create(
        Alert(tenant_id=pk, kind=Alert.Kind.BACKUP_STALE, severity=Alert.Severity.WARNING, title="No recent backup",
              opened_at=now, last_seen_at=now)
        for pk in picked
    )  # fmt: skip
    QuotaState.objects.bulk_create(
        QuotaState(tenant_id=pk, state=QuotaState.State.OVER, usage_bytes=110 * 2**30, soft_limit_bytes=100 * 2**30)
        for pk in picked
    )  # fmt: skip
    OnboardingRun.objects.create(tenant_id=picked[0], status=OnboardingRun.Status.FAILED, error="403",
                                 error_hint="Give the automation token Sys.Modify.")  # fmt: skip


class Gunicorn:
    """``gunicorn portal.wsgi`` with sync workers, as the Dockerfile runs it."""

    def __init__(self, env: dict[str, str], workdir: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "gunicorn.log"
        argv = [
            str(ROOT / ".venv" / "bin" / "gunicorn"), "portal.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
            "--backlog", "2048", "--error-logfile", str(self.log_path),
        ]  # fmt: skip
        setpriv = shutil.which("setpriv")
        if setpriv:  # dies with us even if we are killed
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_until(self._ready, timeout=60, interval=0.2):
            self.stop()
            raise RuntimeError(f"gunicorn did not start:\n{self.log_path.read_text()[-3000:]}")

    def _ready(self) -> bool:
        return _exited_or_healthy(self.proc, self.url)

    def cpu_seconds(self) -> float:
        """User + system CPU of the workers so far: the app's own cost, not the waiting."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:  # ppid
                    ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream portal {{ server 127.0.0.1:{upstream}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://portal;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


class Nginx:
    """nginx in front of gunicorn, as deploy/nginx does it (without TLS).

    gunicorn's sync workers need a buffering proxy: without one, a worker that accepts a
    keep-alive or pre-opened connection waits on it, idle, until the client sends (wrk
    reconnects at once and then pauses for the think time, as browsers pre-connect).
    nginx hands gunicorn only complete requests and keeps the clients' connections itself.
    """

    def __init__(self, upstream_port: int) -> None:
        binary = ensure_binary("/usr/sbin/nginx", package="nginx")
        # Its own world-readable directory: nginx's workers drop root (to nobody).
        self.dir = Path(tempfile.mkdtemp(prefix="bench-load-nginx-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, upstream=upstream_port, port=self.port))
        argv = [binary, "-p", str(self.dir), "-c", str(conf), "-g", "daemon off;"]
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if not wait_until(self._ready, timeout=30, interval=0.1) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"nginx did not start:\n{(self.dir / 'error.log').read_text()[-3000:]}")

    def _ready(self) -> bool:
        return _exited_or_healthy(self.proc, self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def warm_up(base_url: str, page: Page, session: str, workers: int) -> None:
    """A few requests per worker first, so templates are compiled and connections open."""
    headers = {"Cookie": f"sessionid={session}", **dict(page.headers)}
    for _ in range(4 * workers):
        request = urllib.request.Request(base_url + page.path, headers=headers)  # noqa: S310 - our own URL on loopback
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our own URL on loopback
            if response.status != 200 or response.url != base_url + page.path:
                raise RuntimeError(f"{page.path} answered {response.status} at {response.url}")


def login(base_url: str, username: str) -> str:
    """Sign in like a browser: GET the form (CSRF cookie and token), POST it; the session id."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/accounts/login/", timeout=30) as response:
        page = response.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("no CSRF token on the login page")
    form = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": match.group(1)}
    ).encode()
    with opener.open(f"{base_url}/accounts/login/", data=form, timeout=30) as response:
        landed = response.url
    session = next((c.value for c in jar if c.name == "sessionid"), "")
    if not session or "/accounts/login" in landed:
        raise RuntimeError(f"login as {username} failed (ended on {landed})")
    return session


# --- wrk -------------------------------------------------------------------------------

LUA = """
local sessions = {%(sessions)s}
local think_min, think_max = %(think_min)d, %(think_max)d
local threads = {}
local next_session = 0
bad_status = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- Each thread cycles through its own share of the sessions, so no two connections
  -- use one session at the same time (a user does one thing at a time).
  local per = math.floor(#sessions / %(threads)d)
  local all = sessions
  sessions = {}
  for i = tid * per + 1, (tid + 1) * per do table.insert(sessions, all[i]) end
  math.randomseed(os.time() + tid)
  %(headers)s
end

function request()
  next_session = next_session %% #sessions + 1
  return wrk.format(nil, nil, {Cookie = "sessionid=" .. sessions[next_session]})
end

function response(status, headers, body)
  if status ~= 200 then bad_status = bad_status + 1 end
end

function delay()
  if think_max == 0 then return 0 end
  return math.random(think_min, think_max)
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("bad_status") end
  local e = summary.errors
  io.write(string.format(
    "RESULT p50_us=%%d p95_us=%%d p99_us=%%d requests=%%d duration_us=%%d bad_status=%%d "
    .. "connect=%%d read=%%d write=%%d timeout=%%d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout))
end
"""


def run_wrk(wrk: str, url: str, page: Page, sessions: list[str], *, think: tuple[int, int],
            seconds: int, workdir: Path) -> dict[str, float]:  # fmt: skip
    headers = " ".join(f'wrk.headers["{k}"] = "{v}"' for k, v in page.headers)
    script = workdir / f"{page.name}.lua"
    script.write_text(LUA % {
        "sessions": ", ".join(f'"{s}"' for s in sessions),
        "think_min": think[0], "think_max": think[1], "headers": headers, "threads": THREADS,
    })  # fmt: skip
    argv = [
        wrk, "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--timeout", "5s",
        "--latency", "-s", str(script), url + page.path,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    print(proc.stdout + proc.stderr, file=sys.stderr)
    match = re.search(r"^RESULT (.*)$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed (exit {proc.returncode})")
    values = {k: float(v) for k, v in (item.split("=") for item in match.group(1).split())}
    return {
        "p50_ms": values["p50_us"] / 1000,
        "p95_ms": values["p95_us"] / 1000,
        "p99_ms": values["p99_us"] / 1000,
        "rps": values["requests"] / (values["duration_us"] / 1e6),
        "requests": values["requests"],
        "errors": sum(values[k] for k in ("bad_status", "connect", "read", "write", "timeout")),
    }


def line(figure: str, value: str, floor: str = "-", target: str = "-", verdict: str = "-") -> None:
    """One ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict`` line for run_all."""
    print("\t".join((figure, value, floor, target, verdict)), flush=True)


def report(name: str, result: dict[str, float], *, with_target: bool) -> None:
    """Per page and mode; the p95 target (100 ms) applies to users with think time, the
    saturated run shows capacity and has none."""
    p95, cpu = result["p95_ms"], result["cpu_ms"]
    verdict = ("met" if p95 <= TARGET_P95_MS else "MISSED") if with_target else "-"
    target = f"{TARGET_P95_MS:.0f}" if with_target else "-"
    line(f"{name}_p50_ms", f"{result['p50_ms']:.1f}")
    line(f"{name}_p95_ms", f"{p95:.1f}", f"{cpu:.1f}", target, verdict)
    line(f"{name}_p99_ms", f"{result['p99_ms']:.1f}")
    line(f"{name}_req_per_s", f"{result['rps']:.0f}")
    errors = result["errors"]
    line(f"{name}_errors", f"{errors:.0f} of {result['requests']:.0f}", "0", "0", "met" if errors == 0 else "MISSED")
    line(f"{name}_app_cpu_ms_per_req", f"{cpu:.1f}")


def main() -> int:
    quick = "--quick" in sys.argv
    seconds = 8 if quick else 30
    cores = os.cpu_count() or 2
    # gunicorn's rule of thumb (2 x cores + 1) for sync workers; the database and wrk share
    # the same cores here, so that is already generous.
    workers = 2 * cores + 1
    wrk = ensure_binary("wrk", package="wrk")
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    redis = RedisServer(workdir)
    postgres = PostgresServer(name="load")
    servers: list[Any] = []
    gunicorn = None
    nginx = None
    try:
        redis.start()
        postgres.start()
        env = portal_env(workdir, postgres.create_database("portal"), redis.url())
        started = time.perf_counter()
        setup_django(env)
        servers = [start_host("pbs-a", with_backups_of="clients/acme-00000"), start_host("pbs-b")]
        seed(TENANTS)
        from django.db import connection

        connection.close()
        print(f"set-up and seeding: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        gunicorn = Gunicorn(env, workdir, workers)
        nginx = Nginx(gunicorn.port)
        url = nginx.url
        with ThreadPoolExecutor(max_workers=cores) as pool:
            sessions = {
                user: list(pool.map(lambda _i, u=user: login(url, u), range(CONNECTIONS)))
                for user in ("staff", "client")
            }
        print(f"nginx -> gunicorn, {workers} sync workers; {CONNECTIONS} sessions per user", file=sys.stderr)
        print(f"load average before the runs: {os.getloadavg()}", file=sys.stderr)
        for page in PAGES:
            warm_up(url, page, sessions[page.user][0], workers)
            for mode, think in (("users", THINK_MS), ("saturated", (0, 0))):
                print(f"--- {page.name} ({page.path}), {mode}", file=sys.stderr, flush=True)
                cpu = gunicorn.cpu_seconds()
                result = run_wrk(wrk, url, page, sessions[page.user], think=think,
                                 seconds=seconds, workdir=workdir)  # fmt: skip
                result["cpu_ms"] = (gunicorn.cpu_seconds() - cpu) * 1000 / max(1, result["requests"])
                report(f"load_{page.name}_{mode}", result, with_target=mode == "users")
                print(f"load average: {os.getloadavg()}", file=sys.stderr)
    finally:
        if nginx is not None:
            nginx.stop()
        if gunicorn is not None:
            gunicorn.stop()
        for server in servers:
            server.stop()
        redis.stop()
        postgres.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
