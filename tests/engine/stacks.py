"""Synthetic spec repositories of any size, for round-trip and scale tests (and the benchmarks)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"


def _cert(i: int, key: ec.EllipticCurvePrivateKey) -> str:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"partner-{i}.example")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(i + 1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def write_stack(root: Path, n: int) -> None:
    """n resources: a quarter keystores (one JKS file), a quarter profiles, the rest PEM trust certificates."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "keystores" / "globex-client.jks", root / "client.jks")
    shutil.copy(EXAMPLE / "demo-secrets" / "keystore-password.txt", root / "password.txt")
    key = ec.generate_private_key(ec.SECP256R1())
    k = n // 4
    docs = []
    for i in range(k):
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: KeyStore\nmetadata: {{name: ks-{i:05d}}}\n"
            "spec: {file: client.jks, password: {fromFile: password.txt}}\n"
        )
        letters = "".join(chr(ord("a") + int(d)) for d in f"{i:05d}")
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: ProtocolProfile\nmetadata: {{name: p{letters}}}\n"
            f"spec: {{keyStore: ks-{i:05d}}}\n"
        )
    for i in range(n - 2 * k):
        pem = _cert(i, key).replace("\n", "\n    ")
        docs.append(
            f"apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: tc-{i:05d}}}\n"
            f"spec:\n  pem: |\n    {pem.rstrip()}\n"
        )
    (root / "stack.yaml").write_text("---\n".join(docs))
