"""The simulator's HTTPS server speaks the reader protocol's upgrade like PBS (raw socket, no client)."""

from __future__ import annotations

import socket
import ssl

from pbssim.chunk_content import ArchiveSpec, ContentStore, SnapshotRef
from pbssim.chunk_seed import seeded_digest
from pbssim.server import SimServer

TIME = 1_700_000_000


def _exchange(server: SimServer, request: str) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # this test checks the HTTP bytes, not the certificate
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = tls.recv(4096)
            if not data:
                break
            answer += data
        return answer


def _request(token: tuple[str, str], upgrade: str | None = "proxmox-backup-reader-protocol-v1") -> str:
    query = f"store=store1&backup-type=vm&backup-id=1&backup-time={TIME}"
    auth = f"Authorization: PBSAPIToken={token[0]}:{token[1]}"
    lines = [f"GET /api2/json/reader?{query} HTTP/1.1", "Host: pbs", auth]
    if upgrade is not None:
        lines += ["Connection: upgrade", f"Upgrade: {upgrade}"]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_it_switches_protocols_with_pbs_headers(pbs_sim, pbs_admin_token, pbs_https_factory) -> None:
    content = ContentStore()
    content.put_snapshot(SnapshotRef("store1", "", "vm", "1", TIME), owner="root@pam",
                         archives=[ArchiveSpec("a.img.fidx", [(seeded_digest(0, 1), 100)])])  # fmt: skip
    server = pbs_https_factory(pbs_sim, content=content)
    head = _exchange(server, _request(pbs_admin_token)).split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0] == "HTTP/1.1 101 Switching Protocols"
    assert "Connection: upgrade" in head
    assert "Upgrade: proxmox-backup-reader-protocol-v1" in head


def test_without_the_upgrade_header_it_answers_pbs_error(pbs_sim, pbs_admin_token, pbs_https_factory) -> None:
    server = pbs_https_factory(pbs_sim, content=ContentStore())
    answer = _exchange(server, _request(pbs_admin_token, upgrade=None))
    assert answer.startswith(b"HTTP/1.1 400 ")
    bad_token = _exchange(server, _request((pbs_admin_token[0], "nope")))
    assert bad_token.startswith(b"HTTP/1.1 401 ")
