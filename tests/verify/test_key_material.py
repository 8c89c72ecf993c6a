"""Key material never stays on disk: memfd leaves nothing; the temp-file fallback is 0600, holds an ENCRYPTED
PKCS#8 key and is removed, on success and on failure."""

from __future__ import annotations

import os
import ssl
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from mtls_config.errors import VerifyError
from mtls_config.verify import verify_endpoint
from mtls_config.verify.keymaterial import load_client_identity, memfd_available
from tests.verify.conftest import PKI, PythonTLSServer, server_context


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point tempfile at an empty folder of our own, so whatever verify leaves behind is visible."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    yield folder


class ProbingContext(ssl.SSLContext):
    """A real SSLContext that looks at the file OpenSSL is about to read (not a mock: it then loads it)."""

    seen: list[dict[str, Any]]

    def load_cert_chain(self, certfile: Any, keyfile: Any = None, password: Any = None) -> None:
        path = Path(certfile)
        text = path.read_text()
        self.seen.append(
            {
                "path": path,
                "mode": stat.S_IMODE(os.stat(path).st_mode) if not str(path).startswith("/proc/") else None,
                "encrypted": "BEGIN ENCRYPTED PRIVATE KEY" in text,
                "plain_key": "BEGIN PRIVATE KEY" in text,
            }
        )
        super().load_cert_chain(certfile, keyfile, password)


def probing_context() -> ProbingContext:
    ctx = ProbingContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.seen = []
    return ctx


def test_tempfile_fallback_is_private_encrypted_and_removed(pki: PKI, private_tmp: Path) -> None:
    ctx = probing_context()
    used = load_client_identity(ctx, pki.client.key, [pki.client.cert, pki.client_ica.cert], transport="tempfile")
    assert used == "tempfile"
    [seen] = ctx.seen
    assert seen["path"].parent == private_tmp
    assert seen["mode"] == 0o600
    assert seen["encrypted"] and not seen["plain_key"]
    assert list(private_tmp.iterdir()) == []


def test_tempfile_is_removed_when_openssl_refuses_the_key(pki: PKI, private_tmp: Path) -> None:
    ctx = probing_context()
    with pytest.raises(VerifyError) as caught:
        load_client_identity(ctx, pki.foreign_client.key, [pki.client.cert], transport="tempfile")
    assert "refused the client key" in caught.value.message
    assert list(private_tmp.iterdir()) == []


@pytest.mark.skipif(not memfd_available(), reason="memfd_create is Linux-only")
def test_memfd_touches_no_file_system(pki: PKI, private_tmp: Path) -> None:
    ctx = probing_context()
    assert load_client_identity(ctx, pki.client.key, [pki.client.cert], transport="memfd") == "memfd"
    [seen] = ctx.seen
    assert str(seen["path"]).startswith("/proc/self/fd/")
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("transport", ["tempfile", "memfd", "auto"])
@pytest.mark.parametrize("outcome", ["pass", "fail"])
def test_no_key_material_left_after_a_run(
    pki: PKI,
    python_server: Callable[..., PythonTLSServer],
    private_tmp: Path,
    transport: str,
    outcome: str,
) -> None:
    if transport == "memfd" and not memfd_available():
        pytest.skip("memfd_create is Linux-only")
    server = python_server(server_context(pki))
    report = verify_endpoint(
        f"https://localhost:{server.port}/",
        key=pki.client.key,
        chain=[pki.client.cert, pki.client_ica.cert],
        trust=[pki.server_root.cert] if outcome == "pass" else [pki.foreign_root.cert],
        timeout=5,
        key_transport=transport,  # type: ignore[arg-type]
    )
    assert report.ok is (outcome == "pass")
    assert list(private_tmp.iterdir()) == []
    # Nothing anywhere in the report carries key bytes.
    key_pem = pki.client.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = b"".join(key_pem.splitlines()[1:-1]).decode()
    assert body[:40] not in repr(report.to_dict())


def test_key_that_does_not_match_the_leaf_is_refused_before_dialling(pki: PKI) -> None:
    with pytest.raises(VerifyError) as caught:
        verify_endpoint(
            "https://localhost:1/",
            key=pki.foreign_client.key,
            chain=[pki.client.cert],
            trust=[pki.server_root.cert],
        )
    assert "does not belong to the certificate" in caught.value.message
    assert "K06" in (caught.value.hint or "")


def test_no_trust_is_refused(pki: PKI) -> None:
    with pytest.raises(VerifyError, match="no trust store certificates"):
        verify_endpoint("https://localhost:1/", key=pki.client.key, chain=[pki.client.cert], trust=[])


@pytest.mark.parametrize("url", ["http://localhost/", "mauth://host/", "https:///nohost"])
def test_only_https_urls(pki: PKI, url: str) -> None:
    with pytest.raises(VerifyError):
        verify_endpoint(url, key=pki.client.key, chain=[pki.client.cert], trust=[pki.server_root.cert])
