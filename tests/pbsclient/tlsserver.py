"""A tiny real TLS server for the pinning tests: it records every application byte it
receives after the handshake, and answers a complete HTTP request like PBS's /version."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certs:
    ca_pem: str
    cert_pem: str
    key_pem: str
    fingerprint: str  # PBS format, of the leaf (server) certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def make_certs(common_name: str = "pbs-test") -> Certs:
    """A private CA and a server certificate it signed, valid for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{common_name} CA"))
        .issuer_name(_name(f"{common_name} CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    digest = cert.fingerprint(hashes.SHA256())
    return Certs(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        fingerprint=":".join(f"{b:02x}" for b in digest),
    )


VERSION_BODY = json.dumps({"data": {"version": "4.2", "release": "3", "repoid": "tls-test"}}).encode()


@dataclass
class RecordingTlsServer:
    """Accepts TLS connections on 127.0.0.1; records what arrives after each handshake."""

    certs: Certs
    connections: int = 0
    handshakes: int = 0
    received: bytearray = field(default_factory=bytearray)
    requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory()
        cert_path = Path(self._dir.name, "cert.pem")
        key_path = Path(self._dir.name, "key.pem")
        cert_path.write_text(self.certs.cert_pem)
        key_path.write_text(self.certs.key_pem)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_path, key_path)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> RecordingTlsServer:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)
        self._sock.close()
        self._dir.cleanup()

    def settle(self) -> None:
        """Wait until every accepted connection has been fully handled."""
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> RecordingTlsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            tls = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        with self._lock:
            self.handshakes += 1
        buffer = b""
        try:
            while True:
                try:
                    data = tls.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not data:
                    break
                with self._lock:
                    self.received.extend(data)
                buffer += data
                if b"\r\n\r\n" in buffer:
                    head = buffer.split(b"\r\n\r\n", 1)[0]
                    self.requests.append(head)
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n"
                        + f"Content-Length: {len(VERSION_BODY)}\r\n".encode()
                        + b"Connection: close\r\n\r\n"
                        + VERSION_BODY
                    )
                    break
        finally:
            tls.close()
