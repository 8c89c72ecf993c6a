"""The Java-parity rule (E02) against a real Java client: JDK's SunX509 key manager with a JKS keystore, the way the
instance presents its key. Where verify predicts "Java sends no certificate", Java must fail; where it predicts
Java sends one, Java must pass. Skipped when no JDK is installed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mtls_config.keystore.jks_format import JksPrivateKeyEntry, encode_jks
from mtls_config.keystore.keys import pkcs8_der
from mtls_config.secrets import SecretValue
from mtls_config.verify import verify_endpoint
from tests.verify.conftest import PKI, OpenSSLServer

PROBE = Path(__file__).with_name("java") / "JavaClientProbe.java"
PASSWORD = "java-parity-store"


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe compiled once (launching the source file would compile it on every run)."""
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("no JDK compiler installed")
    out = tmp_path_factory.mktemp("java")
    subprocess.run([javac, "-d", str(out), str(PROBE)], check=True, capture_output=True, timeout=60)
    return out


def java_client(classes: Path, keystore: Path, port: int) -> str:
    java = shutil.which("java")
    assert java is not None
    done = subprocess.run(
        [java, "-cp", str(classes), "JavaClientProbe", str(keystore), PASSWORD, str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip() or done.stderr.strip()


@pytest.mark.skipif(shutil.which("java") is None, reason="no JDK installed")
@pytest.mark.parametrize(
    ("chain_names", "java_sends"),
    [(["client"], False), (["client", "client_ica"], True)],
    ids=["leaf-only-chain", "leaf-and-intermediate"],
)
def test_verify_predicts_what_java_sends(
    pki: PKI,
    openssl_server: Callable[..., OpenSSLServer],
    java_classes: Path,
    tmp_path: Path,
    chain_names: list[str],
    java_sends: bool,
) -> None:
    chain = [getattr(pki, n).cert for n in chain_names]
    entry = JksPrivateKeyEntry(
        alias="client",
        timestamp_ms=0,
        pkcs8=pkcs8_der(pki.client.key),
        chain_der=tuple(c.public_bytes(serialization.Encoding.DER) for c in chain),
    )
    keystore = tmp_path / "client.jks"
    keystore.write_bytes(encode_jks([entry], SecretValue(PASSWORD.encode(), "test")))

    # Both servers advertise only the root and can verify the leaf alone (they hold the intermediate).
    trust = [pki.client_root.cert, pki.client_ica.cert]
    java_server = openssl_server(advertise=[pki.client_root.cert], verify=trust)
    verdict = java_client(java_classes, keystore, java_server.port)

    our_server = openssl_server(advertise=[pki.client_root.cert], verify=trust)
    report = verify_endpoint(
        f"https://localhost:{our_server.port}/", key=pki.client.key, chain=chain, trust=[pki.server_root.cert]
    )

    assert report.client_cert.java_would_send is java_sends
    if java_sends:
        assert verdict.startswith("OK HTTP/1.0 200"), verdict
        assert report.ok
    else:
        assert verdict.startswith("ERROR"), verdict
        assert "certificate_required" in verdict or "handshake_failure" in verdict, verdict
        assert report.diagnosis is not None and report.diagnosis.code == "java_sends_no_certificate"
