"""The simulator as a real HTTPS server on loopback, with fault injection and a "host down" mode.

One thread per connection (daemon threads), HTTP/1.1 keep-alive, a large
listen backlog so 100+ clients can connect at once. TLS uses a self-signed
certificate (fresh, or kept in ``cert_dir`` so restarts keep the fingerprint);
its PBS-format fingerprint is ``server.fingerprint`` and is also what the
simulator reports at ``/nodes/localhost/certificates/info``.

Faults (from ``sim.faults``, per request, never on ``/_sim``):

- latency: the handler sleeps before answering;
- error: 500/503 with a plain-text body; the request is not handled;
- timeout: the request is handled, then the answer is withheld for
  ``timeout_hold_s`` and the connection closed without a reply;
- drop: the connection is closed without any answer, before handling.

Host down: ``server.pause()`` closes the listening socket and every open
connection, so clients get "connection refused" until ``server.resume()``
re-opens the same port. ``server.pause(mode="hang")`` keeps accepting but
never answers PBS requests (clients run into their timeouts), while ``/_sim``
stays reachable. ``pause(..., seconds=N)`` resumes by itself after N seconds,
which is also what ``PUT /_sim/down`` does.

Reader protocol: ``GET /api2/json/reader?...`` with ``Upgrade:
proxmox-backup-reader-protocol-v1`` is checked by ``ContentStore.open_reader``
(PBS's privilege, owner and existence checks); on success the server answers
101 Switching Protocols and speaks HTTP/2 (the ``h2`` library) on the same TLS
connection, serving ``GET /download?file-name=...`` from ``server.content``
until the client closes the connection.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import socketserver
import ssl
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import h2.exceptions

from pbssim import tls
from pbssim.chunk_content import READER_PROTOCOL, ContentStore, ReaderError
from pbssim.control import DOWN_MODES, KEY_HEADER, ControlInterface, is_control_path
from pbssim.reader_h2 import serve_reader_session
from pbssim.transport import error_reply, plan_request

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 2**20
HANDSHAKE_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 120.0
READER_PATH = "/api2/json/reader"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpsServer
    server_version = "pbssim"
    sys_version = ""
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus
    # delayed ACKs would add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    # BaseHTTPRequestHandler dispatches on do_<METHOD>.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _dispatch(self) -> None:
        owner = self.server.owner
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        headers = {key.lower(): value for key, value in self.headers.items()}
        if is_control_path(path):
            self._reply(owner.control.handle(self.command, path, query, headers, body))
            return
        if owner.mode == "hang":
            # No answer until the host comes back (or the hold ends); then hang up.
            owner.hang_released.wait(owner.sim.faults.timeout_hold_s)
            self.close_connection = True
            return
        plan = plan_request(owner.sim.faults, self.command)
        if plan.delay_s and owner.wait(plan.delay_s):
            self.close_connection = True  # the server is stopping
            return
        if plan.fault == "drop":
            self.close_connection = True
            return
        if plan.fault == "error":
            self._reply(error_reply(plan.error_status))
            return
        if path == READER_PATH and self.command == "GET":
            self._reader(query, headers)
            return
        try:
            reply = owner.sim.handle(self.command, path, query, headers, body)
        except Exception:
            log.exception("simulator failed on %s %s", self.command, path)
            reply = error_reply(500)
        if plan.fault == "timeout":
            owner.wait(plan.hold_s)
            self.close_connection = True
            return
        self._reply(reply)

    def _reader(self, query: str, headers: dict[str, str]) -> None:
        """The reader protocol: PBS's checks, 101, then HTTP/2 until the client hangs up."""
        owner = self.server.owner
        text = {"Content-Type": "text/plain; charset=utf-8"}
        # The simulator's own token/ticket check (one owner for authentication).
        auth_id = owner.sim._authenticate("GET", headers, time.time())
        if auth_id is None:
            self._reply((401, text, b"authentication failed"))
            return
        try:
            if owner.content is getattr(owner.sim, "content", None):
                session = owner.sim.open_reader(auth_id, query, headers)  # seeded, kept in step
            else:
                session = owner.content.open_reader(owner.sim.state, auth_id, query, headers)
        except ReaderError as exc:
            self._reply((exc.status, text, exc.message.encode()))
            return
        self.send_response(HTTPStatus.SWITCHING_PROTOCOLS)
        self.send_header("Connection", "upgrade")
        self.send_header("Upgrade", READER_PROTOCOL)
        self.end_headers()
        self.close_connection = True  # after HTTP/2 ends, this connection is done
        try:
            serve_reader_session(self.rfile, self.connection, session)
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError) as exc:
            log.debug("reader session ended: %s", exc)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
            return None
        if length > MAX_BODY_BYTES:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _reply(self, reply: tuple[int, dict[str, str], bytes]) -> None:
        status, headers, body = reply
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _HttpsServer(ThreadingHTTPServer):
    """ThreadingHTTPServer doing the TLS handshake in each connection's own thread."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], owner: SimServer, family: int) -> None:
        self.address_family = family
        self.owner = owner
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) we don't need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            conn = self.owner.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        conn.settimeout(IDLE_TIMEOUT_S)
        self.owner._track(conn, add=True)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection from %s ended: %s", client_address, exc)
        finally:
            self.owner._track(conn, add=False)
            with contextlib.suppress(OSError):
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)


class SimServer:
    """A running HTTPS front for a Simulator.

    >>> server = SimServer(sim).start()        # or: with SimServer(sim) as server:
    >>> server.url, server.fingerprint, server.control_key
    """

    def __init__(
        self,
        sim: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: str | Path | None = None,
        *,
        control_key: str | None = None,
        content: ContentStore | None = None,
    ) -> None:
        self.sim = sim
        # Snapshot contents for the reader protocol (see pbssim.chunk_content): the given store,
        # else the simulator's own (seeded from its state), else an empty one.
        own = getattr(sim, "content", None)
        self.content = content if content is not None else own if own is not None else ContentStore()
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        names, ips = tls.names_for_host(host)
        if cert_dir is not None:
            self.certificate = tls.load_or_create(cert_dir, hostnames=names, ips=ips)
        else:
            self.certificate = tls.generate_self_signed(hostnames=names, ips=ips)
        self.ssl_context = tls.server_context(self.certificate)
        self.fingerprint = self.certificate.fingerprint
        self.control_key = control_key or secrets.token_urlsafe(24)
        self.control = ControlInterface(sim, key=self.control_key, pause_server=self._pause_later)
        self.mode = "stopped"  # "up" | "refuse" | "hang" | "stopped"
        self._httpd: _HttpsServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._conn_lock = threading.Lock()
        # TLS connections accepted so far (keep-alive reuses one for many requests).
        self.connections_accepted = 0
        self._stopping = threading.Event()
        self.hang_released = threading.Event()
        self._resume_timer: threading.Timer | None = None
        sim.set_certificate(
            self.certificate.cert_pem, self.fingerprint, **tls.certificate_info(self.certificate.cert_pem)
        )

    def __repr__(self) -> str:
        return f"SimServer(url={self.url!r}, mode={self.mode!r})"

    # --- public API -----------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        host = {tls.ANY_IPV4: "127.0.0.1", tls.ANY_IPV6: "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self._port if self._port is not None else self._requested_port}"

    @property
    def control_headers(self) -> dict[str, str]:
        """Headers a client sends to reach /_sim over HTTPS."""
        return {KEY_HEADER: self.control_key}

    def start(self) -> SimServer:
        with self._lock:
            if self.mode != "stopped":
                return self
            self._stopping.clear()
            self._listen(self._requested_port)
            self.mode = "up"
        log.info("PBS simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving: close the listener and every connection; held requests end now."""
        with self._lock:
            self._cancel_resume_timer()
            self._stopping.set()
            self.hang_released.set()
            self._close_listener()
            self._close_connections()
            self.mode = "stopped"

    def pause(self, mode: str = "refuse", *, seconds: float | None = None) -> None:
        """Take the host down: "refuse" closes the port, "hang" never answers PBS requests.

        With ``seconds`` the server comes back by itself after that long.
        """
        if mode not in DOWN_MODES:
            raise ValueError(f"mode must be one of {DOWN_MODES}")
        with self._lock:
            if self.mode == "stopped":
                raise RuntimeError("server not started")
            self._cancel_resume_timer()
            if mode == "refuse":
                self._close_listener()
                self._close_connections()
            else:
                self.hang_released.clear()
                if self._httpd is None:
                    self._listen(self.port)
            self.mode = mode
            if seconds is not None:
                self._resume_timer = threading.Timer(seconds, self.resume)
                self._resume_timer.daemon = True
                self._resume_timer.start()
        log.info("PBS simulator %s is down (%s)", self.url, mode)

    def resume(self) -> None:
        """Bring a paused host back on the same port."""
        with self._lock:
            self._cancel_resume_timer()
            if self.mode in {"stopped", "up"}:
                return
            self.hang_released.set()
            if self._httpd is None:
                self._listen(self.port)
            self._stopping.clear()
            self.mode = "up"
        log.info("PBS simulator %s is back up", self.url)

    def wait(self, seconds: float) -> bool:
        """Sleep in a handler; returns True early if the server is stopping or resuming."""
        return self._stopping.wait(seconds)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals ------------------------------------------------------------
    def _listen(self, port: int) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        deadline = time.monotonic() + 5.0
        while True:
            try:
                httpd = _HttpsServer((self.host, port), self, family)
                break
            except OSError:
                # Re-binding the same port right after closing it can race the kernel.
                if port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"pbssim-{self._port}",
            daemon=True,
        )
        self._thread.start()

    def _close_listener(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _close_connections(self) -> None:
        # Wake requests held by latency/timeout/hang so their threads finish.
        self._stopping.set()
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            if add:
                self.connections_accepted += 1
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _cancel_resume_timer(self) -> None:
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None

    def _pause_later(self, mode: str, seconds: float) -> None:
        # Called from a /_sim request: let its reply go out before closing connections.
        timer = threading.Timer(0.1, self.pause, args=(mode,), kwargs={"seconds": seconds})
        timer.daemon = True
        timer.start()
