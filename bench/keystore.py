"""Keystore chores at size: inspect and lint of a JKS holding a client key entry and 200 trusted certificates.

"inspect" is what ``mtls-config keystore inspect`` computes (read with the password, every certificate's
details, the canonical digest); "lint" is ``lint_keystore`` (rules K01-K16). Pure: no instance involved.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

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
from tests.pki import CA, new_key

TRUSTED = 200
PASSWORD = SecretValue(b"bench-keystore-password", "bench")


def build_store(trusted: int = TRUSTED) -> bytes:
    """A JKS: one key entry (leaf + issuing CA) and ``trusted`` trusted-certificate entries. The certificates have
    basicConstraints (and the leaf its clientAuth EKU) only: no key identifiers, no key usage."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    plain: dict[str, Any] = {
        "key_usage": None,
        "ski": False,
        "aki": False,
        "not_before": now - dt.timedelta(days=1),
        "not_after": now + dt.timedelta(days=365),
    }
    other_key = new_key("ec-p256")
    ca = CA.root("Bench Issuing CA", **plain)
    leaf = ca.issue("bench-client", eku=[ExtendedKeyUsageOID.CLIENT_AUTH], **plain)
    der = serialization.Encoding.DER
    pkcs8 = leaf.key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    entries: list[JksPrivateKeyEntry | JksTrustedCertEntry] = [
        JksPrivateKeyEntry("bench-client", 0, pkcs8, (leaf.der, ca.der))
    ]
    for i in range(trusted):
        partner = CA.root(f"Bench Partner Root {i:03d}", key=other_key, **plain)
        entries.append(JksTrustedCertEntry(f"partner-{i:03d}", 0, partner.der))
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
