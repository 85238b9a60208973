"""PBS reader sessions: download a snapshot's manifest and chunk indexes over HTTP/2.

One session per snapshot (src/api2/reader/mod.rs in PBS 4.2):

1. open a TLS connection with the client's own context (``tls.build_ssl_context``:
   the pinned fingerprint is checked inside the handshake, before any byte of
   the request, token included, is sent);
2. ``GET /api2/json/reader?store=..&ns=..&backup-type=..&backup-id=..&backup-time=..``
   with ``Connection: upgrade`` and ``Upgrade: proxmox-backup-reader-protocol-v1``
   and the token's Authorization header; PBS answers ``101 Switching Protocols``
   or an error (plain-text message, mapped onto ``pbsclient.errors``);
3. speak HTTP/2 (the ``h2`` library) on the same connection:
   ``GET /download?file-name=index.json.blob``, then each ``.fidx``/``.didx``.

PBS grants the session with ``Datastore.Read`` on the namespace, or with
``Datastore.Backup`` when the caller owns the backup group.
"""

from __future__ import annotations

import socket
import ssl
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import httpx

from pbsclient.auth import PbsTokenAuth
from pbsclient.backup_format import MANIFEST_BLOB_NAME, ChunkIndex, Manifest, parse_index, parse_manifest
from pbsclient.errors import (
    FingerprintMismatch,
    PbsConnectionError,
    PbsError,
    PbsHttpError,
    PbsTimeout,
    PbsTlsError,
    PermissionDenied,
    error_from_response,
)
from pbsclient.tls import build_ssl_context, find_pin_mismatch
from pbsclient.validation import PbsValidationError, validate_fingerprint

__all__ = ["READER_PROTOCOL", "ReaderSession", "open_reader"]

# pbs-datastore/src/lib.rs: PROXMOX_BACKUP_READER_PROTOCOL_ID_V1
READER_PROTOCOL = "proxmox-backup-reader-protocol-v1"
READER_PATH = "/api2/json/reader"
# src/api2/reader/mod.rs uses 32 MiB HTTP/2 windows; ask for the same when receiving.
_WINDOW = 32 * 2**20
_MAX_HEAD = 64 * 1024
_MAX_FILE = 1 << 31  # 2 GiB: an index of ~64 million chunks; anything larger is not PBS
# Reader-only PBS texts that mean "not allowed" (src/api2/reader/mod.rs); the generic
# mapping in errors.py does not know them.
_DENIED_PREFIXES = ("no permissions on /", "backup owner check failed!")


def _reader_error(status: int, body: str, *, path: str, host: str) -> PbsHttpError:
    if status == 400 and body.startswith(_DENIED_PREFIXES):
        return PermissionDenied(body, status=status, method="GET", path=path, host=host)
    return error_from_response(status, body, method="GET", path=path, host=host)


class ReaderSession:
    """An open reader session on one snapshot (a context manager).

    ``download(name)`` returns a file's raw bytes; ``manifest()`` and
    ``index(name)`` parse them. ``requests`` and ``bytes_downloaded`` count
    the HTTP/2 requests and body bytes of this session.
    """

    def __init__(self, sock: ssl.SSLSocket, conn: h2.connection.H2Connection, *, host: str, pending: bytes) -> None:
        self._sock = sock
        self._conn = conn
        self._host = host
        self._pending = pending  # HTTP/2 bytes that arrived with the 101 answer
        self.requests = 0
        self.bytes_downloaded = 0
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._conn.close_connection()
            self._sock.sendall(self._conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            pass  # closing anyway
        finally:
            self._sock.close()

    def download(self, file_name: str) -> bytes:
        """``GET /download?file-name=<name>`` in this session; the file's raw bytes."""
        if self._closed:
            raise PbsConnectionError("reader session is closed", request_sent=False, host=self._host)
        path = "/download?" + urlencode({"file-name": file_name}, quote_via=quote)
        where: dict[str, Any] = {"method": "GET", "path": "/download", "host": self._host}
        try:
            stream_id = self._conn.get_next_available_stream_id()
            self._conn.send_headers(
                stream_id,
                [(":method", "GET"), (":scheme", "https"), (":authority", self._host), (":path", path)],
                end_stream=True,
            )
            self._sock.sendall(self._conn.data_to_send())
            self.requests += 1
            status, body = self._receive(stream_id)
        except TimeoutError as exc:
            raise PbsTimeout(f"timed out downloading '{file_name}': {exc}", **where) from None
        except (OSError, h2.exceptions.ProtocolError) as exc:
            raise PbsConnectionError(f"reader connection failed downloading '{file_name}': {exc}", **where) from None
        if status != 200:
            raise _reader_error(status, body.decode("utf-8", "replace"), path="/download", host=self._host)
        self.bytes_downloaded += len(body)
        return body

    def manifest(self) -> Manifest:
        """The snapshot's manifest (``index.json.blob``), parsed."""
        return parse_manifest(self.download(MANIFEST_BLOB_NAME))

    def index(self, file_name: str) -> ChunkIndex:
        """A ``.fidx``/``.didx`` file, parsed and its checksum verified."""
        return parse_index(file_name, self.download(file_name))

    def _receive(self, stream_id: int) -> tuple[int, bytes]:
        status = 0
        chunks: list[bytes] = []
        size = 0
        while True:
            data, self._pending = self._pending, b""
            if not data:
                data = self._sock.recv(262144)
            if not data:
                raise PbsConnectionError("the server closed the reader connection", host=self._host)
            for event in self._conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                    status = int(dict(event.headers or [])[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    if event.stream_id == stream_id and event.data:
                        size += len(event.data)
                        if size > _MAX_FILE:
                            raise PbsConnectionError("file larger than 2 GiB", host=self._host)
                        chunks.append(event.data)
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                    raise PbsConnectionError(f"the server reset the stream ({event.error_code!r})", host=self._host)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise PbsConnectionError("the server ended the reader session", host=self._host)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    self._sock.sendall(self._conn.data_to_send())
                    return status, b"".join(chunks)
            self._sock.sendall(self._conn.data_to_send())


def _read_head(sock: ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    """Read an HTTP/1.1 answer head; returns (status, headers, bytes after the head)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise PbsConnectionError("the server closed the connection before answering the upgrade")
        buffer += data
        if len(buffer) > _MAX_HEAD:
            raise PbsConnectionError("upgrade answer head too large")
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise PbsConnectionError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers, rest


def _read_body(sock: ssl.SSLSocket, headers: dict[str, str], rest: bytes) -> bytes:
    """The body of an error answer (Content-Length framed, as PBS sends them)."""
    try:
        length = min(int(headers.get("content-length", "0")), _MAX_HEAD)
    except ValueError:
        length = 0
    body = rest
    while len(body) < length:
        data = sock.recv(length - len(body))
        if not data:
            break
        body += data
    return body[:length] if length else body


def open_reader(
    *,
    base_url: str,
    token_id: str,
    token_secret: str,
    store: str,
    backup_type: str,
    backup_id: str,
    backup_time: int,
    ns: str = "",
    fingerprint: str | None = None,
    ca_pem: str | None = None,
    timeout: float = 30.0,
) -> ReaderSession:
    """Open a reader session on one snapshot; see the module docstring for the steps.

    ``base_url``, ``fingerprint`` and ``ca_pem`` mean what they mean for the
    client. Errors are those of ``pbsclient.errors``: ``FingerprintMismatch``
    (nothing was sent), ``PbsTlsError``, ``PbsConnectionError``/``PbsTimeout``,
    and for PBS's refusals ``PermissionDenied``, ``NotFound`` or ``PbsHttpError``.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise PbsValidationError(f"PBS base URL '{base_url}' must be https://host[:port]")
    host, port = parts.hostname, parts.port or 8007
    authority = parts.netloc
    pin = validate_fingerprint(fingerprint) if fingerprint else None
    context = build_ssl_context(fingerprint=pin, ca_pem=ca_pem or None)
    context.set_alpn_protocols(["http/1.1"])  # the upgrade request is HTTP/1.1
    auth = PbsTokenAuth(token_id, token_secret)
    params: dict[str, str | int] = {
        "store": store,
        "backup-type": backup_type,
        "backup-id": backup_id,
        "backup-time": backup_time,
    }
    if ns:
        params["ns"] = ns
    target = f"{READER_PATH}?{urlencode(params, quote_via=quote)}"
    # The Authorization header, built by the client's own auth class (one owner of its format).
    request = httpx.Request("GET", f"https://{authority}{target}")
    next(auth.auth_flow(request))
    where: dict[str, Any] = {"method": "GET", "path": READER_PATH, "host": authority}

    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError as exc:
        raise PbsTimeout(f"timed out connecting to {authority}: {exc}", request_sent=False, **where) from None
    except OSError as exc:
        raise PbsConnectionError(f"cannot connect to {authority}: {exc}", request_sent=False, **where) from None
    try:
        sock = context.wrap_socket(raw, server_hostname=host)
    except ssl.SSLError as exc:
        raw.close()
        mismatch = find_pin_mismatch(exc)
        if mismatch is not None:
            raise FingerprintMismatch(
                expected=mismatch.expected, presented=mismatch.presented, **where
            ) from None
        raise PbsTlsError(f"TLS handshake with {authority} failed: {exc}", **where) from None
    except OSError as exc:
        raw.close()
        raise PbsConnectionError(f"TLS handshake with {authority} failed: {exc}", request_sent=False, **where) from None
    try:
        head = (
            f"GET {target} HTTP/1.1\r\n"
            f"Host: {authority}\r\n"
            f"Authorization: {request.headers['Authorization']}\r\n"
            "Connection: upgrade\r\n"
            f"Upgrade: {READER_PROTOCOL}\r\n"
            "Content-Length: 0\r\n"
            "\r\n"
        )
        sock.sendall(head.encode("latin-1"))
        status, headers, rest = _read_head(sock)
        if status != 101:
            body = _read_body(sock, headers, rest).decode("utf-8", "replace")
            raise _reader_error(status, auth.scrub(body), path=READER_PATH, host=authority)
        if headers.get("upgrade", "").lower() != READER_PROTOCOL:
            raise PbsHttpError(f"server upgraded to {headers.get('upgrade')!r}", status=status, **where)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW}
        )
        conn.initiate_connection()
        conn.increment_flow_control_window(_WINDOW - 65535)
        sock.sendall(conn.data_to_send())
    except PbsError:
        sock.close()
        raise
    except TimeoutError as exc:
        sock.close()
        raise PbsTimeout(f"timed out waiting for {authority}: {exc}", **where) from None
    except OSError as exc:
        sock.close()
        raise PbsConnectionError(f"reader upgrade with {authority} failed: {exc}", **where) from None
    return ReaderSession(sock, conn, host=authority, pending=rest)
