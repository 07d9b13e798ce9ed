"""A throwaway certificate authority for the TLS tests: a CA, a server certificate, and client
certificates whose names (DNS and URI subject alternative names) the server can check."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_NAMES = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
RUNNER_DNS = "runner.blink.svc"
RUNNER_URI = "spiffe://cluster.local/ns/blink/sa/runner"
OTHER_DNS = "other-workload.blink.svc"
# name: (common name, subject alternative names); each client is certified by the same CA.
CERTIFICATES: dict[str, tuple[str, list[x509.GeneralName]]] = {
    "server": ("127.0.0.1", SERVER_NAMES),
    "client": ("runner", [x509.DNSName(RUNNER_DNS)]),
    "uri-client": ("runner-by-uri", [x509.UniformResourceIdentifier(RUNNER_URI)]),
    "other-client": (RUNNER_DNS, [x509.DNSName(OTHER_DNS)]),  # a look-alike common name
    # the runner's names in the other kind of SAN: what a CA constrained to other DNS names
    # (or to URIs) can still issue
    "uri-lookalike": ("lookalike-uri", [x509.UniformResourceIdentifier(RUNNER_DNS)]),
    "dns-lookalike": ("lookalike-dns", [x509.DNSName(RUNNER_URI)]),
    # the runner's names in other cases: a DNS name's case never matters (RFC 6125 6.4.1), a
    # URI's only in its scheme and host (RFC 3986 6.2.2.1)
    "client-upper": ("runner-upper", [x509.DNSName(RUNNER_DNS.upper())]),
    "uri-client-upper-host": (
        "runner-by-uri-upper-host",
        [
            x509.UniformResourceIdentifier(
                RUNNER_URI.replace("spiffe://cluster.local", "SPIFFE://Cluster.LOCAL")
            )
        ],
    ),
    "uri-client-upper-path": (
        "runner-by-uri-upper-path",
        [x509.UniformResourceIdentifier(RUNNER_URI.replace("/sa/runner", "/sa/RUNNER"))],
    ),
}


def _certificate(
    name: str, issuer: Any = None, *, ca: bool = False, names: list[x509.GeneralName] | None = None
) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key, signer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(signer_key, hashes.SHA256())


def _pem(key: Any, certificate: Any) -> tuple[bytes, bytes]:
    return (
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate.public_bytes(serialization.Encoding.PEM),
    )


def make_pki(folder: Path) -> dict[str, tuple[bytes, bytes, str, str]]:
    """name -> (key PEM, certificate PEM, key file, certificate file), "ca" among them."""
    ca = _certificate("test CA", ca=True)
    made = {"ca": ca}
    for name, (common_name, names) in CERTIFICATES.items():
        made[name] = _certificate(common_name, ca, names=names)
    pki = {}
    for name, (key, certificate) in made.items():
        key_pem, cert_pem = _pem(key, certificate)
        (folder / f"{name}.key").write_bytes(key_pem)
        (folder / f"{name}.pem").write_bytes(cert_pem)
        pki[name] = (key_pem, cert_pem, str(folder / f"{name}.key"), str(folder / f"{name}.pem"))
    return pki


def client_credentials(pki: dict[str, tuple[bytes, bytes, str, str]], client: str | None) -> Any:
    """Channel credentials that trust the CA, presenting `client`'s certificate (or none)."""
    import grpc

    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=pki["ca"][1])
    return grpc.ssl_channel_credentials(
        root_certificates=pki["ca"][1],
        private_key=pki[client][0],
        certificate_chain=pki[client][1],
    )
