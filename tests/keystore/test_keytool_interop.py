"""Interop with the real keytool, both ways: stores made by the knowledge-base procedure are read correctly, and
stores made by ``assemble`` are accepted by keytool (listing, and a Java-side key load via -certreq)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from mtls_config.errors import KeystorePasswordError
from mtls_config.keystore import (
    canonical_model,
    export_certificate,
    lint_keystore,
    load_key_entry,
    read_keystore,
    spki_sha256,
)
from tests.keystore.conftest import STORE_PASSWORD, KeytoolRun, Pki, keytool, secret, store_args


@pytest.mark.parametrize("algorithm", ["RSA", "EC"])
def test_keytool_procedure_store_is_read_correctly(
    keytool_runs: dict[str, KeytoolRun], pki: Pki, algorithm: str
) -> None:
    run = keytool_runs[algorithm]
    contents = read_keystore(run.good.read_bytes(), secret())
    assert contents.store_type == "jks"
    assert contents.integrity_verified
    assert [(e.alias, e.kind) for e in contents.entries] == [
        ("client", "private_key"),
        ("issuingca", "trusted_cert"),
        ("rootca", "trusted_cert"),
    ]
    key_entry = contents.entries[0]
    assert [c.subject for c in key_entry.chain] == [run.reply.subject, pki.ica.subject, pki.root.subject]
    assert key_entry.chain[0] == run.reply
    assert key_entry.key_decrypted
    assert key_entry.key_algorithm == algorithm
    assert key_entry.key_spki_sha256 == spki_sha256(run.reply.public_key())
    assert contents.entry("rootca") is not None and contents.entry("rootca").chain == (pki.root,)  # type: ignore[union-attr]
    material = load_key_entry(run.good.read_bytes(), secret())
    assert spki_sha256(material.private_key.public_key()) == key_entry.key_spki_sha256


def test_keytool_store_lists_without_password_and_says_what_was_not_checked(
    keytool_runs: dict[str, KeytoolRun],
) -> None:
    data = keytool_runs["RSA"].good.read_bytes()
    without = read_keystore(data, None)
    assert not without.integrity_verified
    assert [e.alias for e in without.entries] == ["client", "issuingca", "rootca"]
    assert len(without.entries[0].chain) == 3
    assert not without.entries[0].key_decrypted and without.entries[0].key_spki_sha256 is None
    assert any("integrity" in note for note in without.unchecked)
    assert any("client" in note for note in without.unchecked)


def test_keytool_store_wrong_password_is_refused(keytool_runs: dict[str, KeytoolRun]) -> None:
    with pytest.raises(KeystorePasswordError, match="incorrect"):
        read_keystore(keytool_runs["EC"].good.read_bytes(), secret("not-the-password"))


@pytest.mark.parametrize("algorithm", ["RSA", "EC"])
def test_keytool_procedure_store_lints_clean(keytool_runs: dict[str, KeytoolRun], algorithm: str) -> None:
    findings = lint_keystore(keytool_runs[algorithm].good.read_bytes(), secret(), declared_format="jks")
    assert [f for f in findings if f.severity != "info"] == []


def test_export_matches_keytool_exportcert(keytool_runs: dict[str, KeytoolRun]) -> None:
    run = keytool_runs["RSA"]
    ours = export_certificate(run.good.read_bytes(), alias="client", fmt="der")
    keytool("-exportcert", "-alias", "client", *store_args("client.jks"), "-file", "exported.der", cwd=run.folder)
    assert ours == (run.folder / "exported.der").read_bytes()
    assert x509.load_der_x509_certificate(ours) == run.reply


def _keytool_accepts(folder: Path, store: str, alias: str) -> tuple[str, str]:
    listing = keytool("-list", "-v", *store_args(store), cwd=folder).stdout
    keytool("-certreq", "-alias", alias, *store_args(store), "-file", f"{store}.csr", cwd=folder)
    return listing, (folder / f"{store}.csr").read_text()


def test_assembled_stores_pass_keytool(tmp_path: Path, assembled: Callable[..., bytes], pki: Pki) -> None:
    stores = {"rsa": assembled("rsa"), "ec": assembled("ec"), "p12": assembled("ec", "pkcs12")}
    for label, data in stores.items():
        (tmp_path / f"{label}.ks").write_bytes(data)
    aliases = {label: read_keystore(data, secret()).private_key_entries[0].alias for label, data in stores.items()}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {label: pool.submit(_keytool_accepts, tmp_path, f"{label}.ks", aliases[label]) for label in stores}
        results = {label: f.result() for label, f in futures.items()}
    for label, (listing, csr_pem) in results.items():
        assert len(re.findall(r"Entry type: PrivateKeyEntry", listing)) == 1, label
        assert "Certificate chain length: 3" in listing, label
        # PKCS12 too: the CA certificates carry Java's trust attribute (pkcs12_format).
        assert len(re.findall(r"Entry type: trustedCertEntry", listing)) == 2, label
        assert ("Keystore type: JKS" in listing) == (label != "p12")
        # -certreq makes Java decrypt the key with the store password: the CSR must carry our key.
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        key_entry = read_keystore(stores[label], secret()).private_key_entries[0]
        assert spki_sha256(csr.public_key()) == key_entry.key_spki_sha256


def test_keytool_reads_back_what_it_wrote_as_the_same_model(keytool_runs: dict[str, KeytoolRun]) -> None:
    """A keytool re-save (new timestamps) changes bytes but not the canonical model."""
    run = keytool_runs["EC"]
    before = read_keystore(run.good.read_bytes(), secret())
    keytool("-storepasswd", "-new", STORE_PASSWORD + "x", *store_args("client.jks"), cwd=run.folder, check=False)
    keytool(
        "-storepasswd",
        "-new",
        STORE_PASSWORD,
        *store_args("client.jks", STORE_PASSWORD + "x"),
        cwd=run.folder,
        check=False,
    )
    after = read_keystore(run.good.read_bytes(), secret())
    assert canonical_model(before) == canonical_model(after)
