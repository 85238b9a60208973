"""Private Redis, PostgreSQL and Celery worker processes for the test suite.

Each test session (each pytest-xdist worker) starts its own servers from the
system binaries, on free loopback ports, in a temporary directory, and stops
them at the end. Nothing here touches a system-wide service.

- A missing binary is installed from Debian when we are root on Debian
  (``apt-get install -y redis-server`` / ``postgresql-15``); otherwise
  ``ServiceUnavailable`` says exactly which command to run. Tests never skip.
- Servers run under ``setpriv --pdeathsig`` so they die with the test process
  even if it is killed, instead of lingering on the box.
- Every class has start(), stop() and restart() so fault tests can take a
  service away and bring it back on the same port with the same data.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

POSTGRES_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
REPO_ROOT = Path(__file__).resolve().parent.parent


class ServiceUnavailable(RuntimeError):
    """A service the tests need cannot be provided; the message says how to fix it."""


# --- utilities ------------------------------------------------------------------
def is_root() -> bool:
    return os.geteuid() == 0


def is_debian() -> bool:
    return Path("/etc/debian_version").exists()


def _install_command(package: str) -> str:
    prefix = "" if is_root() else "sudo "
    return f"{prefix}apt-get install -y {package}"


def ensure_binary(path_or_name: str, *, package: str) -> str:
    """Find a binary (a name on PATH or an absolute path), installing its Debian package
    when we are root on Debian. Raises ServiceUnavailable with the install command."""

    def find() -> str | None:
        if os.path.isabs(path_or_name):
            return path_or_name if os.access(path_or_name, os.X_OK) else None
        return shutil.which(path_or_name)

    found = find()
    if found:
        return found
    if is_root() and is_debian():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", package]
        result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # The package lists may be missing or stale on a fresh machine.
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
            result = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        found = find()
        if found:
            return found
        raise ServiceUnavailable(
            f"{path_or_name} is missing and `{' '.join(install)}` failed:\n{result.stderr[-2000:]}"
        )
    raise ServiceUnavailable(
        f"{path_or_name} is missing: the tests need it. Install it with: {_install_command(package)}"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the kernel's pick, so parallel sessions rarely clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _dies_with_us(argv: Sequence[str], *, user: str | None = None) -> list[str]:
    """Wrap argv so the process gets SIGTERM when the test process dies (Linux setpriv)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user and is_root():
            return ["runuser", "-u", user, "--", *argv]
        return list(argv)
    wrapper = [setpriv]
    if user and is_root():
        wrapper += [f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    return [*wrapper, "--pdeathsig", "TERM", "--", *argv]


def _stop_process(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# --- Redis --------------------------------------------------------------------
class RedisServer:
    """``redis-server --port N --save '' --appendonly no`` in a private directory."""

    def __init__(self, base_dir: Path, *, name: str = "redis") -> None:
        self.binary = ensure_binary("redis-server", package="redis-server")
        self.dir = Path(base_dir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "redis.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        for _ in range(3):
            self.port = self.port or free_port()
            if self._spawn():
                return self
            self.port = 0  # taken meanwhile by someone else: pick another
        raise ServiceUnavailable(f"redis-server did not start:\n{_tail(self.log_path)}")

    def _spawn(self) -> bool:
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.dir),
            "--logfile", str(self.log_path), "--daemonize", "no",
        ]
        self.proc = subprocess.Popen(_dies_with_us(argv), stdin=subprocess.DEVNULL)
        ready = wait_until(lambda: self.proc.poll() is not None or self.ping(), timeout=15)
        return ready and self.proc.poll() is None and self.ping()

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        _stop_process(self.proc, signal.SIGTERM)
        self.proc = None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        _stop_process(self.proc, sig)
        self.proc = None

    def restart(self) -> RedisServer:
        """Stop and start again on the same port (the data is gone: no persistence)."""
        self.stop()
        if not self._spawn():
            raise ServiceUnavailable(f"redis-server did not restart:\n{_tail(self.log_path)}")
        return self


# --- PostgreSQL ---------------------------------------------------------------
class PostgresServer:
    """A throwaway PostgreSQL 15 cluster: initdb once, then ``postgres`` in the foreground.

    As root, the cluster belongs to the ``postgres`` user (initdb refuses root):
    initdb runs through ``runuser -u postgres --`` and the server under setpriv.
    Durability is off (fsync, synchronous_commit, full_page_writes): it is a test DB.
    """

    superuser = "postgres"

    def __init__(self, *, name: str = "pg", bin_dir: Path = POSTGRES_BIN_DIR) -> None:
        self.bin_dir = bin_dir
        ensure_binary(str(bin_dir / "initdb"), package="postgresql-15")
        ensure_binary(str(bin_dir / "postgres"), package="postgresql-15")
        self.run_as = "postgres" if is_root() else None
        if self.run_as:
            try:
                pwd.getpwnam(self.run_as)
            except KeyError as exc:
                raise ServiceUnavailable(
                    "the postgres system user is missing; reinstall: apt-get install -y postgresql-15"
                ) from exc
        # Its own directory under /tmp (not inside a root-only temp dir) so postgres can reach it.
        self.dir = Path(tempfile.mkdtemp(prefix=f"portal-test-{name}-"))
        self.data_dir = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.log_path = self.dir / "postgres.log"
        self.socket_dir.mkdir()
        self.log_path.touch()
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.dir, self.socket_dir, self.log_path):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def _as_owner(self, argv: Sequence[str]) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else list(argv)

    def initdb(self) -> None:
        argv = [
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser,
            "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
        ]
        result = subprocess.run(self._as_owner(argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServiceUnavailable(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> PostgresServer:
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        for _ in range(3):
            self.port = self.port or free_port()
            if self._spawn():
                return self
            self.port = 0
        raise ServiceUnavailable(f"PostgreSQL did not start:\n{_tail(self.log_path)}")

    def _spawn(self) -> bool:
        argv = [
            str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200", "-c", "shared_buffers=64MB",
        ]
        offset = self.log_path.stat().st_size
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                _dies_with_us(argv, user=self.run_as),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )

        def ready() -> bool:
            return self.proc is None or self.proc.poll() is not None or self.accepts_connections()

        wait_until(ready, timeout=60, interval=0.1)
        if self.proc.poll() is not None:
            text = self.log_path.read_text(errors="replace")[offset:]
            if "could not bind" in text or "already in use" in text:
                return False
            raise ServiceUnavailable(f"PostgreSQL exited at start:\n{text[-3000:]}")
        return self.accepts_connections()

    def accepts_connections(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """Create a database (if absent) and return its DSN."""
        import psycopg
        from psycopg import sql

        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name {name!r}")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server: mode "fast" (SIGINT), "smart" (SIGTERM) or "immediate" (SIGQUIT)."""
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        # With setpriv the process is postgres itself; with runuser it forwards the signal.
        _stop_process(self.proc, sig, timeout=30)
        self.proc = None

    def restart(self, *, mode: str = "fast") -> PostgresServer:
        """Stop and start again on the same port with the same data."""
        self.stop(mode=mode)
        if not self._spawn():
            raise ServiceUnavailable(f"PostgreSQL did not restart:\n{_tail(self.log_path)}")
        return self

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Celery worker --------------------------------------------------------------
class CeleryWorker:
    """A real ``celery -A portal worker`` subprocess (prefork, 2 processes).

    The process group is its own (start_new_session), so kill() reaches the pool
    children too, like a crashed machine would. Readiness is read from the log.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        log_dir: Path,
        name: str = "portal-test",
        queues: str = "celery",
        concurrency: int = 2,
        include: Sequence[str] = (),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.celery = str(REPO_ROOT / ".venv" / "bin" / "celery")
        if not os.access(self.celery, os.X_OK):
            # Celery comes from the project's own virtualenv, never from the system.
            raise ServiceUnavailable(
                f"{self.celery} is missing: install the project first: "
                f"python3.12 -m venv .venv && .venv/bin/pip install -c constraints.txt -e '.[dev]'"
            )
        self.env = dict(env)
        self.nodename = f"{name}@{socket.gethostname()}"
        self.log_path = Path(log_dir) / f"{name}.log"
        self.argv = [
            self.celery, "-A", "portal", "worker", "-P", "prefork", "-c", str(concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-Q", queues, "-n", self.nodename, "-l", "INFO", "-f", str(self.log_path),
            *(["-I", ",".join(include)] if include else []),
            *extra_args,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> CeleryWorker:
        if self.is_alive():
            return self
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path.with_suffix(".stderr"), "ab") as stderr:
            self.proc = subprocess.Popen(
                _dies_with_us(self.argv),
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        self.starts += 1
        return self

    def _new_log(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 90) -> CeleryWorker:
        """Block until the worker logs "ready" (it consumes tasks from then on)."""
        ok = wait_until(
            lambda: not self.is_alive() or " ready." in self._new_log(), timeout=timeout, interval=0.1
        )
        if not ok or not self.is_alive():
            stderr = _tail(self.log_path.with_suffix(".stderr"))
            raise ServiceUnavailable(
                f"Celery worker did not become ready:\n{self._new_log()[-3000:]}\n{stderr}"
            )
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker's whole process group and reap it."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            # Pool children of a SIGKILLed parent may outlive it for a moment.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM: finish running tasks), then make sure all is gone."""
        if self.is_alive():
            self.kill(signal.SIGTERM)
        self.proc = None

    def crashed(self) -> bool:
        """Celery's main process hit an unrecoverable error since the last start (kombu's
        Redis transport does on some broker connection losses) and is shutting down."""
        return "Unrecoverable error" in self._new_log()

    def supervise(self) -> CeleryWorker:
        """What systemd (Restart=always) or compose (restart: unless-stopped) do in
        production: a worker that exited or is going down after a crash is started again."""
        if self.is_alive() and not self.crashed():
            return self
        if self.is_alive():
            self.kill(signal.SIGTERM)  # let it finish its running task, as it does anyway
        self.proc = None
        return self.start().wait_ready()

    def restart(self, *, sig: int = signal.SIGTERM) -> CeleryWorker:
        if self.is_alive():
            self.kill(sig)
        self.proc = None
        return self.start().wait_ready()
