"""Keystore chores at size: inspect and lint of a JKS holding a client key entry and 200 trusted certificates.

"inspect" is what ``mtls-config keystore inspect`` computes (read with the password, every certificate's
details, the canonical digest); "lint" is ``lint_keystore`` (rules K01-K14). Pure: no instance involved.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mtls_config.keystore import (
    JksPrivateKeyEntry,
    JksTrustedCertEntry,
    canonical_digest,
    certificate_info,
    encode_jks,
    lint_keystore,
    read_keystore,
)
from mtls_config.secrets import SecretValue

TRUSTED = 200
PASSWORD = SecretValue(b"bench-keystore-password", "bench")


def _cert(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def build_store(trusted: int = TRUSTED) -> bytes:
    """A JKS: one key entry (leaf + issuing CA) and ``trusted`` trusted-certificate entries."""
    ca_key, leaf_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("Bench Issuing CA", ca_key, "Bench Issuing CA", ca_key, ca=True)
    leaf = _cert("bench-client", leaf_key, "Bench Issuing CA", ca_key, ca=False)
    der = serialization.Encoding.DER
    pkcs8 = leaf_key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    entries: list[JksPrivateKeyEntry | JksTrustedCertEntry] = [
        JksPrivateKeyEntry("bench-client", 0, pkcs8, (leaf.public_bytes(der), ca.public_bytes(der)))
    ]
    for i in range(trusted):
        name = f"Bench Partner Root {i:03d}"
        entries.append(
            JksTrustedCertEntry(
                f"partner-{i:03d}", 0, _cert(name, other_key, name, other_key, ca=True).public_bytes(der)
            )
        )
    return encode_jks(entries, PASSWORD)


def inspect(data: bytes) -> int:
    contents = read_keystore(data, PASSWORD, declared_format="jks")
    details = [certificate_info(cert) for entry in contents.entries for cert in entry.chain]
    canonical_digest(contents)
    return len(details)


def lint(data: bytes) -> int:
    return len(lint_keystore(data, PASSWORD, declared_format="jks"))


def _best(work: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    wall, cpu, result = float("inf"), float("inf"), 0
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = work()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu, result


def measure_keystore(trusted: int = TRUSTED, repeat: int = 5) -> dict[str, Any]:
    data = build_store(trusted)
    inspect_wall, inspect_cpu, certificates = _best(lambda: inspect(data), repeat)
    lint_wall, lint_cpu, findings = _best(lambda: lint(data), repeat)
    return {
        "trusted_certificates": trusted,
        "file_bytes": len(data),
        "certificates_inspected": certificates,
        "lint_findings": findings,
        "inspect_wall_s": inspect_wall,
        "inspect_cpu_s": inspect_cpu,
        "lint_wall_s": lint_wall,
        "lint_cpu_s": lint_cpu,
        "repeat": repeat,
    }
