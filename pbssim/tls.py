"""Self-signed certificates for the simulator's HTTPS server, and PBS-style fingerprints.

PBS ships a self-signed certificate (`/etc/proxmox-backup/proxy.pem`) and clients
pin it by the SHA-256 of the DER-encoded leaf certificate, written as lowercase
hex pairs joined by ':'. The simulator does the same, so pinning code is
exercised against a real TLS handshake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "proxy.pem"
KEY_FILE = "proxy.key"
DEFAULT_HOSTNAMES = ("localhost",)
DEFAULT_IPS = ("127.0.0.1", "::1")
VALID_DAYS = 3650
ANY_IPV4 = "0.0.0.0"  # noqa: S104 - a name to recognise, not a bind
ANY_IPV6 = "::"


@dataclass(frozen=True)
class CertBundle:
    """A certificate and its private key, both PEM, with the PBS-format fingerprint."""

    cert_pem: str
    key_pem: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint_of_pem(self.cert_pem)

    def __repr__(self) -> str:  # never show the key
        return f"CertBundle(fingerprint={self.fingerprint!r})"


def certificate_info(pem: str) -> dict[str, object]:
    """Fields PBS reports at /nodes/{node}/certificates/info, from the certificate itself."""
    cert = x509.load_pem_x509_certificate(pem.encode())

    def name(value: x509.Name) -> str:
        return ", ".join(f"{attr.rfc4514_attribute_name}={attr.value!s}" for attr in value)

    try:
        san_ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san = [*san_ext.get_values_for_type(x509.DNSName)]
        san += [str(ip) for ip in san_ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        san = []
    key = cert.public_key()
    key_type = "rsaEncryption" if isinstance(key, rsa.RSAPublicKey) else "id-ecPublicKey"
    return {
        "subject": name(cert.subject),
        "issuer": name(cert.issuer),
        "san": san,
        "notbefore": int(cert.not_valid_before_utc.timestamp()),
        "notafter": int(cert.not_valid_after_utc.timestamp()),
        "public_key_type": key_type,
        "public_key_bits": getattr(key, "key_size", 0),
    }


def fingerprint_of_der(der: bytes) -> str:
    """PBS format: SHA-256 of the DER leaf, lowercase hex pairs joined by ':' (95 chars)."""
    digest = hashlib.sha256(der).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def fingerprint_of_pem(pem: str) -> str:
    return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(pem))


def names_for_host(host: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Certificate names for a listen address: localhost and loopback, plus the host itself."""
    names, ips = list(DEFAULT_HOSTNAMES), list(DEFAULT_IPS)
    if host not in {ANY_IPV4, ANY_IPV6, *names, *ips}:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append(host)
        else:
            ips.append(host)
    return tuple(names), tuple(ips)


def generate_self_signed(
    *,
    hostnames: tuple[str, ...] = DEFAULT_HOSTNAMES,
    ips: tuple[str, ...] = DEFAULT_IPS,
    common_name: str = "localhost",
) -> CertBundle:
    """Make a fresh RSA-2048 self-signed certificate valid for the given names.

    It is its own CA (basicConstraints CA:TRUE) so a client can also trust it
    through a CA bundle instead of a fingerprint pin, like an imported PBS cert.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PBS simulator"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Proxmox Backup Server"),
        ]
    )
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in dict.fromkeys(hostnames)]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return CertBundle(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def load_or_create(
    cert_dir: str | os.PathLike[str],
    *,
    hostnames: tuple[str, ...] = DEFAULT_HOSTNAMES,
    ips: tuple[str, ...] = DEFAULT_IPS,
) -> CertBundle:
    """Reuse ``proxy.pem``/``proxy.key`` from cert_dir, or create and save them there.

    Reusing keeps the fingerprint stable across restarts, so a portal that pinned
    it keeps working.
    """
    directory = Path(cert_dir)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if cert_path.exists() and key_path.exists():
        return CertBundle(
            cert_pem=cert_path.read_text(encoding="ascii"),
            key_pem=key_path.read_text(encoding="ascii"),
        )
    bundle = generate_self_signed(hostnames=hostnames, ips=ips)
    directory.mkdir(parents=True, exist_ok=True)
    # The key is written 0600 from the start, never world-readable for a moment.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(bundle.key_pem)
    cert_path.write_text(bundle.cert_pem, encoding="ascii")
    return bundle


def server_context(bundle: CertBundle) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2+) serving the bundle's certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain only reads files: write them to a private temp dir for a moment.
    with tempfile.TemporaryDirectory(prefix="pbssim-tls-") as tmp:
        cert_path, key_path = Path(tmp) / CERT_FILE, Path(tmp) / KEY_FILE
        cert_path.write_text(bundle.cert_pem, encoding="ascii")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(bundle.key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context
