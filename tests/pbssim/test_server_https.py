"""The simulator over real HTTPS: certificate, fingerprint, keep-alive, concurrency."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import stat
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from cryptography import x509

from pbssim.faults import FaultConfig
from pbssim.server import SimServer

FINGERPRINT_RE = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$")


def verified_client(server: SimServer, **kwargs) -> httpx.Client:
    """A client that trusts exactly the server's self-signed certificate."""
    context = ssl.create_default_context(cadata=server.certificate.cert_pem)
    return httpx.Client(base_url=server.url, verify=context, **kwargs)


def served_der(server: SimServer, host: str = "127.0.0.1") -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der
    return der


def _auth(token: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": f"PBSAPIToken={token[0]}:{token[1]}"}


def test_it_serves_pbs_over_https_to_a_client_that_trusts_its_certificate(
    pbs_https, pbs_admin_token
) -> None:
    with verified_client(pbs_https) as client:
        reply = client.get("/api2/json/version", headers=_auth(pbs_admin_token))
    assert reply.status_code == 200
    assert reply.json()["data"]["version"].startswith("4.")


def test_a_client_with_default_trust_refuses_the_self_signed_certificate(pbs_https) -> None:
    with httpx.Client(base_url=pbs_https.url) as client, pytest.raises(httpx.ConnectError):
        client.get("/api2/json/ping")


def test_the_fingerprint_is_the_sha256_of_the_served_der_in_pbs_format(pbs_https) -> None:
    digest = hashlib.sha256(served_der(pbs_https)).hexdigest()
    assert FINGERPRINT_RE.match(pbs_https.fingerprint)
    assert pbs_https.fingerprint.replace(":", "") == digest


def test_certificate_info_reports_the_certificate_actually_served(
    pbs_https, pbs_admin_token
) -> None:
    with verified_client(pbs_https) as client:
        reply = client.get(
            "/api2/json/nodes/localhost/certificates/info", headers=_auth(pbs_admin_token)
        )
    assert reply.status_code == 200
    [info] = reply.json()["data"]
    assert info["fingerprint"] == pbs_https.fingerprint
    assert info["pem"].strip() == pbs_https.certificate.cert_pem.strip()
    assert "CN=localhost" in info["subject"]
    assert {"localhost", "127.0.0.1"} <= set(info["san"])
    assert (info["public-key-type"], info["public-key-bits"]) == ("rsaEncryption", 2048)
    assert info["notbefore"] < time.time() < info["notafter"]


def test_the_certificate_is_valid_for_localhost_and_loopback(pbs_https) -> None:
    cert = x509.load_der_x509_certificate(served_der(pbs_https))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    context = ssl.create_default_context(cadata=pbs_https.certificate.cert_pem)
    url = f"https://localhost:{pbs_https.port}"
    with httpx.Client(base_url=url, verify=context) as client:
        assert client.get("/api2/json/ping").status_code == 200


def test_a_cert_dir_keeps_the_fingerprint_across_restarts(pbs_sim, tmp_path) -> None:
    with SimServer(pbs_sim, cert_dir=tmp_path) as first:
        fingerprint = first.fingerprint
    with SimServer(pbs_sim, cert_dir=tmp_path) as second:
        assert second.fingerprint == fingerprint
        assert hashlib.sha256(served_der(second)).hexdigest() == fingerprint.replace(":", "")
    assert stat.S_IMODE((tmp_path / "proxy.key").stat().st_mode) == 0o600
    with SimServer(pbs_sim) as fresh:
        assert fresh.fingerprint != fingerprint


def test_keep_alive_serves_many_requests_on_one_connection(pbs_https) -> None:
    with verified_client(pbs_https) as client:
        replies = [client.get("/api2/json/ping") for _ in range(10)]
    assert [r.status_code for r in replies] == [200] * 10
    assert {r.http_version for r in replies} == {"HTTP/1.1"}
    assert pbs_https.connections_accepted == 1


def test_50_parallel_requests_with_50ms_latency_take_about_one_latency(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(latency_ms=50)
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    with verified_client(pbs_https, limits=limits) as client:
        client.get("/_sim/faults", headers=pbs_https.control_headers)  # warm up TLS setup
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=50) as pool:
            replies = list(pool.map(lambda _: client.get("/api2/json/ping"), range(50)))
        elapsed = time.perf_counter() - started
    assert [r.status_code for r in replies] == [200] * 50
    # Serially this takes 50 x 50 ms = 2.5 s; in parallel about one latency plus handshakes.
    assert 0.05 <= elapsed < 1.0, elapsed


def test_it_holds_more_than_100_connections_at_once(pbs_https) -> None:
    pbs_https.sim.faults = FaultConfig(latency_ms=300)
    context = ssl.create_default_context(cadata=pbs_https.certificate.cert_pem)

    def one_connection(_: int) -> int:
        with httpx.Client(base_url=pbs_https.url, verify=context, timeout=30) as client:
            return client.get("/api2/json/ping").status_code

    with ThreadPoolExecutor(max_workers=120) as pool:
        statuses = list(pool.map(one_connection, range(120)))
    assert statuses == [200] * 120
    assert pbs_https.connections_accepted >= 120
