"""The real stack for the browser journeys, started from scratch on loopback.

``Stack(base_dir).start()`` runs, each as a subprocess on a free port:

1. a private PostgreSQL and Redis (``tests.services``);
2. two simulated PBS hosts over HTTPS (``python -m pbssim --demo --demo-host N --json``),
   each with its certificate kept in the stack's directory;
3. ``manage.py migrate`` and ``collectstatic`` (manifest storage, as in production);
4. the hosts registered with ``manage.py pbshost add`` (pinned fingerprint, token secret
   from a 0600 file that is deleted right after), the staff logins with
   ``manage.py portal_user_create``, the billing plans;
5. the portal under gunicorn with ``DJANGO_DEBUG=0``, a Celery worker and Celery beat.

Production settings apart from what plain HTTP on loopback needs (no secure cookies, no
SSL redirect) and from what keeps the journeys short (onboarding retries back off from
half a second and give up after two retries). Mail goes to files the tests read.

Every process runs under ``setpriv --pdeathsig`` (it dies with the test process even when
that is killed) and is stopped by ``stop()``; logs stay in the stack's directory and are
quoted when something does not start.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx

from tests.services import (
    REPO_ROOT,
    CeleryWorker,
    PostgresServer,
    RedisServer,
    ServiceUnavailable,
    _dies_with_us,
    _stop_process,
    _tail,
    free_port,
    wait_until,
)

VENV_BIN = REPO_ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
HOST_NAMES = ("pbs1", "pbs2")
# Variables of the calling shell that would change the stack's configuration.
_FOREIGN_PREFIXES = ("DJANGO_", "PORTAL_", "CELERY_", "DATABASE_URL", "REDIS_URL", "CACHE_URL", "PBSSIM_")


@dataclass
class SimHost:
    """A ``python -m pbssim`` process and what it printed at start."""

    name: str
    url: str
    fingerprint: str
    token_id: str
    token_secret: str = field(repr=False)
    control_key: str = field(repr=False)
    cert_file: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call the simulator's control API (``/_sim/...``), TLS checked against its own certificate."""
        context = ssl.create_default_context(cafile=str(self.cert_file))
        with httpx.Client(base_url=self.url, verify=context, timeout=10) as client:
            response = client.request(
                method, f"/_sim/{path}", json=body, headers={"X-Sim-Control-Key": self.control_key}
            )
        response.raise_for_status()
        return response.json()["data"]

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("PUT", "faults", faults)
        return result


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)
    email: str


class Stack:
    """PostgreSQL, Redis, two simulated PBS hosts, gunicorn, Celery worker and beat."""

    def __init__(self, base_dir: Path) -> None:
        self.dir = Path(base_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mail_dir = self.dir / "mail"
        self.mail_dir.mkdir(exist_ok=True)
        self.web_port = 0
        self.redis: RedisServer | None = None
        self.postgres: PostgresServer | None = None
        self.hosts: dict[str, SimHost] = {}
        self._sim_procs: list[subprocess.Popen[bytes]] = []
        self._secret_key = ""
        self._fernet_key = ""
        self.worker: CeleryWorker | None = None
        self.web: subprocess.Popen[bytes] | None = None
        self.beat: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.logins: dict[str, Login] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- start ------------------------------------------------------------------
    def start(self) -> Stack:
        """Start everything (steps in the module docstring); on failure stop what started.

        Independent steps overlap: the simulators make their certificates and collectstatic
        runs while PostgreSQL starts; the web and Celery processes boot while the hosts and
        logins are registered.
        """
        try:
            sims = {}
            for index, name in enumerate(HOST_NAMES):
                sims[name] = self._spawn_sim(name, index)
                self._sim_procs.append(sims[name][0])
            self.web_port = free_port()
            # collectstatic needs the settings, not a database.
            static_env = self._environment(f"sqlite:///{self.dir / 'unused.sqlite3'}", "redis://127.0.0.1:1/0")
            collectstatic = self._popen_manage(["collectstatic", "--noinput", "-v0"], env=static_env)
            self.postgres = PostgresServer(name="e2e").start()
            database_url = self.postgres.create_database("portal")
            self.redis = RedisServer(self.dir, name="redis").start()
            for name, (proc, cert_dir) in sims.items():
                self.hosts[name] = self._read_sim(name, proc, cert_dir)
            self.env = self._environment(database_url, self.redis.url(0))
            self._finish(collectstatic)
            self.manage("migrate", "--noinput", "-v0")
            self._start_processes()
            passwords = {"admin": secrets.token_urlsafe(18), "accounting": secrets.token_urlsafe(18)}
            self.logins = {role: Login(f"e2e-{role}", pw, f"e2e-{role}@msp.example") for role, pw in passwords.items()}
            commands = [self._register(host) for host in self.hosts.values()]
            commands += [
                self._popen_manage(
                    ["portal_user_create", "--username", login.username, "--email", login.email,
                     "--role", role, "--password-stdin"],
                    stdin=login.password,
                )
                for role, login in self.logins.items()
            ]
            commands.append(
                self._popen_manage(["shell", "-c", "from devstack.demo import demo_plans_ensure; demo_plans_ensure()"])
            )
            for command in commands:
                self._finish(command)
            self._wait_processes()
        except BaseException:
            self.stop()
            raise
        finally:
            for host in HOST_NAMES:
                (self.dir / f"{host}.token").unlink(missing_ok=True)
        return self

    def _spawn_sim(self, name: str, index: int) -> tuple[subprocess.Popen[bytes], Path]:
        cert_dir = self.dir / name
        cert_dir.mkdir(exist_ok=True)
        argv = [
            PYTHON, "-m", "pbssim", "--port", "0", "--demo", "--demo-host", str(index),
            "--cert-dir", str(cert_dir), "--json",
        ]  # fmt: skip
        with open(self.dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                _dies_with_us(argv), cwd=REPO_ROOT, env=self._base_env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
            )  # fmt: skip
        return proc, cert_dir

    def _read_sim(self, name: str, proc: subprocess.Popen[bytes], cert_dir: Path) -> SimHost:
        line = proc.stdout.readline() if proc.stdout else b""
        if not line:
            raise ServiceUnavailable(f"simulated PBS {name} did not start:\n{_tail(self.dir / f'{name}.log')}")
        info = json.loads(line)
        return SimHost(
            name=name, url=info["url"], fingerprint=info["fingerprint"], token_id=info["token_id"],
            token_secret=info["token_secret"], control_key=info["control_key"],
            cert_file=cert_dir / "proxy.pem", proc=proc,
        )  # fmt: skip

    @staticmethod
    def _base_env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _environment(self, database_url: str, redis_url: str) -> dict[str, str]:
        if not self._secret_key:
            self._secret_key = secrets.token_urlsafe(50)
            self._fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        return {
            **self._base_env(),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": self._secret_key,
            "PORTAL_ENCRYPTION_KEYS": self._fernet_key,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "PORTAL_BASE_URL": self.url,
            "PORTAL_VAR_DIR": str(self.dir / "var"),
            # Plain HTTP on loopback: no TLS in front of the portal here.
            "PORTAL_SECURE_COOKIES": "0",
            "PORTAL_SSL_REDIRECT": "0",
            "PORTAL_HSTS_SECONDS": "0",
            # The journeys sign in staff with passwords; the second factor has tests of its own.
            "PORTAL_REQUIRE_STAFF_TOTP": "0",
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "DJANGO_EMAIL_FILE_PATH": str(self.mail_dir),
            # A failed run within seconds instead of minutes (journey 1 makes one on purpose).
            "PORTAL_ONBOARDING_MAX_RETRIES": "2",
            "PORTAL_ONBOARDING_RETRY_BASE_SECONDS": "0.5",
            "PORTAL_PBS_TIMEOUT_SECONDS": "5",
            "PORTAL_LOG_LEVEL": "INFO",
        }

    def manage(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``manage.py ARGS`` against the stack's database (a failure shows its output)."""
        return self._finish(self._popen_manage(list(args), stdin=stdin), check=check)

    def _popen_manage(
        self, args: list[str], *, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [PYTHON, str(REPO_ROOT / "manage.py"), *args], cwd=REPO_ROOT, env=env or self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if proc.stdin is not None:  # small input: written now, so the commands run side by side
            proc.stdin.write(stdin or "")
            proc.stdin.close()
            proc.stdin = None
        return proc

    @staticmethod
    def _finish(proc: subprocess.Popen[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        stdout, stderr = proc.communicate(timeout=180)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if check and proc.returncode != 0:
            command = " ".join(str(a) for a in proc.args[2:4])
            raise RuntimeError(f"manage.py {command} failed ({proc.returncode}):\n{stdout}\n{stderr[-3000:]}")
        return result

    def _register(self, host: SimHost) -> subprocess.Popen[str]:
        """``pbshost add``; the secret's 0600 file is deleted when start()'s commands are done."""
        secret_file = self.dir / f"{host.name}.token"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(host.token_secret)
        return self._popen_manage(
            ["pbshost", "add", "--name", host.name, "--url", host.url, "--fingerprint", host.fingerprint,
             "--token-id", host.token_id, "--token-secret-file", str(secret_file)],
        )  # fmt: skip

    def _start_processes(self) -> None:
        gunicorn = [
            str(VENV_BIN / "gunicorn"), "portal.wsgi:application", "--bind", f"127.0.0.1:{self.web_port}",
            "--workers", "2", "--threads", "4", "--timeout", "60",
            "--access-logfile", str(self.dir / "gunicorn-access.log"),
            "--error-logfile", str(self.dir / "gunicorn.log"),
        ]  # fmt: skip
        self.web = self._spawn(gunicorn, "gunicorn.out")
        self.worker = CeleryWorker(env=self.env, log_dir=self.dir, name="e2e-worker", concurrency=2).start()
        beat = [
            str(VENV_BIN / "celery"), "-A", "portal", "beat", "-l", "INFO",
            "-s", str(self.dir / "celerybeat-schedule"), "-f", str(self.dir / "beat.log"),
        ]  # fmt: skip
        self.beat = self._spawn(beat, "beat.out")

    def _wait_processes(self) -> None:
        assert self.worker is not None
        self.worker.wait_ready()
        if not wait_until(self._web_ready, timeout=60, interval=0.2):
            raise ServiceUnavailable(f"gunicorn did not answer:\n{_tail(self.dir / 'gunicorn.log')}")
        if not wait_until(lambda: "beat: Starting" in _tail(self.dir / "beat.log"), timeout=30, interval=0.2):
            raise ServiceUnavailable(f"Celery beat did not start:\n{_tail(self.dir / 'beat.out')}")

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        with open(self.dir / log_name, "ab") as log:
            return subprocess.Popen(
                _dies_with_us(argv), cwd=REPO_ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def _web_ready(self) -> bool:
        if self.web is None or self.web.poll() is not None:
            raise ServiceUnavailable(f"gunicorn exited:\n{_tail(self.dir / 'gunicorn.log')}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # --- helpers for the journeys -------------------------------------------------
    def alive(self) -> list[str]:
        """Names of the stack's processes that have exited (empty when all is well)."""
        procs = {"gunicorn": self.web, "beat": self.beat, **{n: h.proc for n, h in self.hosts.items()}}
        dead = [name for name, proc in procs.items() if proc is None or proc.poll() is not None]
        if self.worker is None or not self.worker.is_alive():
            dead.append("worker")
        return dead

    def mails(self) -> list[Any]:
        """Every mail sent so far, oldest first (``email.message.EmailMessage``)."""
        files = sorted(self.mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
        found = []
        for path in files:
            # The file backend appends messages separated by a line of 79 dashes.
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if chunk.strip():
                    found.append(message_from_bytes(chunk.lstrip(), policy=policy.default))
        return found

    def wait_for_mail(self, to: str, timeout: float = 15) -> Any:
        def find() -> Any:
            return next((m for m in reversed(self.mails()) if to in str(m.get("To", ""))), None)

        wait_until(lambda: find() is not None, timeout=timeout, interval=0.2)
        message = find()
        if message is None:
            raise AssertionError(f"no mail to {to} in {self.mail_dir}")
        return message

    # --- stop ---------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything that was started, web first, databases last."""
        for proc in (self.web, self.beat):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                _stop_process(proc, signal.SIGTERM, timeout=15)
        if self.worker is not None:
            self.worker.stop()
        for proc in self._sim_procs:
            _stop_process(proc, signal.SIGTERM, timeout=10)
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.cleanup()
