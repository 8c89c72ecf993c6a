"""assemble_keystore: ordering, checks, determinism; and read/canonical model/export on what it builds."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jks
import pytest
from cryptography import x509

import tests.pki
from mtls_config.errors import KeystoreError, KeystorePasswordError, KeystoreRuleError
from mtls_config.keystore import (
    assemble_keystore,
    canonical_digest,
    canonical_model,
    export_certificate,
    read_keystore,
    spki_sha256,
)
from tests.keystore.conftest import STORE_PASSWORD, YESTERDAY, Pki, client_certificate, key_pem, name, pem, secret
from tests.pki import CA


@pytest.fixture(scope="module")
def parts(pki: Pki) -> tuple[bytes, bytes, list[bytes]]:
    key = pki.key("ec")
    leaf = pki.leaf(key, cn="Parts Client")
    return key_pem(key), pem(leaf), [pem(pki.root), pem(pki.ica)]


def test_same_inputs_same_bytes_whatever_the_chain_order(parts: tuple[bytes, bytes, list[bytes]], pki: Pki) -> None:
    key, cert, chain = parts
    first = assemble_keystore(key, cert, chain, secret())
    variants = [list(p) for p in itertools.permutations(chain)]
    variants.append([pem(pki.ica) + pem(pki.root)])  # one bundle file
    variants.append([pem(pki.root) + pem(pki.ica), pem(pki.ica)])  # duplicates are folded
    for variant in variants:
        assert assemble_keystore(key, cert, variant, secret()) == first
    # The CA reply may come with its chain in the same file.
    assert assemble_keystore(key, cert + pem(pki.ica, pki.root), [], secret()) == first


def test_assembled_jks_layout(parts: tuple[bytes, bytes, list[bytes]], pki: Pki) -> None:
    key, cert, chain = parts
    data = assemble_keystore(key, cert, chain, secret())
    contents = read_keystore(data, secret())
    assert [(e.alias, e.kind) for e in contents.entries] == [
        ("parts-client", "private_key"),
        ("test-issuing-ca", "trusted_cert"),
        ("test-root-ca", "trusted_cert"),
    ]
    key_entry = contents.entries[0]
    leaf = x509.load_pem_x509_certificate(cert)
    assert key_entry.chain == (leaf, pki.ica, pki.root)
    assert key_entry.key_decrypted  # key password == store password
    assert key_entry.key_spki_sha256 == spki_sha256(leaf.public_key())
    # Timestamps come from the certificates, not from the clock.
    raw = jks.KeyStore.loads(data, STORE_PASSWORD)
    assert raw.entries["parts-client"].timestamp == int(leaf.not_valid_before_utc.timestamp()) * 1000
    assert raw.entries["test-root-ca"].timestamp == int(pki.root.not_valid_before_utc.timestamp()) * 1000


def test_canonical_model_ignores_password_and_encryption(parts: tuple[bytes, bytes, list[bytes]]) -> None:
    key, cert, chain = parts
    a = assemble_keystore(key, cert, chain, secret())
    b = assemble_keystore(key, cert, chain, secret("another-password"))
    assert a != b
    model_a = read_keystore(a, secret())
    model_b = read_keystore(b, secret("another-password"))
    assert canonical_model(model_a) == canonical_model(model_b)
    assert canonical_digest(model_a) == canonical_digest(model_b)
    assert canonical_digest(model_a).startswith("sha256:")
    model = canonical_model(model_a)
    assert [e["alias"] for e in model["entries"]] == sorted(e["alias"] for e in model["entries"])
    assert len(model["entries"][0]["certificates"]) == 3


def test_pkcs12_is_deterministic_too(parts: tuple[bytes, bytes, list[bytes]]) -> None:
    key, cert, chain = parts
    a = assemble_keystore(key, cert, chain, secret(), fmt="pkcs12")
    b = assemble_keystore(key, cert, list(reversed(chain)), secret(), fmt="pkcs12")
    assert a == b  # salts and IVs are derived, not drawn (pkcs12_format)
    assert assemble_keystore(key, cert, chain, secret("another-password"), fmt="pkcs12") != a
    ca = read_keystore(a, secret())
    assert ca.store_type == "pkcs12"
    assert canonical_digest(ca) == canonical_digest(read_keystore(b, secret()))
    assert len(ca.private_key_entries[0].chain) == 3


def test_encrypted_key_needs_its_password(pki: Pki) -> None:
    key = pki.key("rsa")
    leaf = pki.leaf(key)
    encrypted = key_pem(key, b"key-pass-1")
    data = assemble_keystore(
        encrypted, pem(leaf), [pem(pki.ica), pem(pki.root)], secret(), key_password=secret("key-pass-1")
    )
    assert read_keystore(data, secret()).private_key_entries[0].key_decrypted
    with pytest.raises(KeystorePasswordError, match="wrong key password") as err:
        assemble_keystore(encrypted, pem(leaf), [pem(pki.ica)], secret(), key_password=secret("nope"))
    assert "nope" not in str(err.value)
    with pytest.raises(KeystoreError, match="encrypted and no key password"):
        assemble_keystore(encrypted, pem(leaf), [pem(pki.ica)], secret())


@pytest.mark.parametrize(
    ("case", "rule", "message"),
    [
        ("mismatch", "K06", "does not match"),
        ("stray", "K08", "not in the chain"),
        ("no_root", "K09", "chain stops at"),
        # The root given, the intermediate forgotten: the gap is named, not the root as a stray.
        ("no_intermediate", "K09", r"its issuing CA \(CN=Test Issuing CA\) is missing; CN=Test Root CA was given"),
        ("no_chain", "K09", "no CA certificates"),
        ("upper_alias", "K05", "lower-case"),
    ],
)
def test_assemble_refuses_broken_parts(pki: Pki, case: str, rule: str, message: str) -> None:
    key = pki.key("ec")
    leaf = pki.leaf(key)
    chain = [pem(pki.ica), pem(pki.root)]
    alias = None
    if case == "mismatch":
        key = pki.key("rsa")
    elif case == "stray":
        other_key = pki.key("ec-other")
        stray = CA.root(name("Unrelated CA"), key=other_key, aki=True, not_before=YESTERDAY)
        chain.append(pem(stray.cert))
    elif case == "no_root":
        chain = [pem(pki.ica)]
    elif case == "no_intermediate":
        chain = [pem(pki.root)]
    elif case == "no_chain":
        chain = []
    elif case == "upper_alias":
        alias = "Client"
    with pytest.raises(KeystoreRuleError, match=message) as err:
        assemble_keystore(key_pem(key), pem(leaf), chain, secret(), alias=alias)
    assert err.value.rule == rule


def test_self_signed_leaf_without_chain_is_allowed(pki: Pki) -> None:
    key = pki.key("ec")
    pinned = tests.pki.self_signed(name("pinned.test.example"), key=key, **client_certificate(days=30), aki=True)
    self_signed = pinned.cert
    data = assemble_keystore(key_pem(key), pem(self_signed), [], secret(), alias="pinned")
    assert read_keystore(data, secret()).entries[0].chain == (self_signed,)


def test_export_certificate(assembled: Callable[..., bytes]) -> None:
    data = assembled("rsa")
    contents = read_keystore(data, None)  # JKS: no password needed to export a public certificate
    leaf = contents.private_key_entries[0].chain[0]
    assert x509.load_pem_x509_certificate(export_certificate(data)) == leaf
    assert x509.load_der_x509_certificate(export_certificate(contents, fmt="der")) == leaf
    assert len(x509.load_pem_x509_certificates(export_certificate(data, include_chain=True))) == 3
    root_pem = export_certificate(data, alias="test-root-ca")
    assert x509.load_pem_x509_certificate(root_pem).subject == name("Test Root CA")
    with pytest.raises(KeystoreError, match="no entry 'nope'"):
        export_certificate(data, alias="nope")


def test_not_a_keystore_is_said_plainly(pki: Pki) -> None:
    with pytest.raises(KeystoreError, match="PEM text"):
        read_keystore(pem(pki.root), None)
    with pytest.raises(KeystoreError, match="empty"):
        read_keystore(b"", None)


def test_synthetic_iv_differs_per_key_and_password(pki: Pki) -> None:
    from mtls_config.keystore.jks_format import synthetic_iv

    a, b = pkcs8_of(pki.key("ec")), pkcs8_of(pki.key("rsa"))
    ivs = {synthetic_iv(secret(), a, ()), synthetic_iv(secret(), b, ()), synthetic_iv(secret("other"), a, ())}
    assert len(ivs) == 3 and all(len(iv) == 20 for iv in ivs)
    assert synthetic_iv(secret(), a, ()) == synthetic_iv(secret(), a, ())


def pkcs8_of(key: object) -> bytes:
    from tests.keystore.conftest import pkcs8

    return pkcs8(key)


@pytest.mark.parametrize("key_type", ["rsa2048", "ec-p256", "ec-p384"])
def test_new_key_and_csr(key_type: str) -> None:
    from cryptography.hazmat.primitives import serialization

    from mtls_config.keystore import new_key_and_csr

    key_pem_bytes, csr_pem = new_key_and_csr("CN=new.test.example,O=T,C=US", ["new.test.example"], key_type)  # type: ignore[arg-type]
    key = serialization.load_pem_private_key(key_pem_bytes, None)
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    assert spki_sha256(csr.public_key()) == spki_sha256(key.public_key())
    assert csr.subject.rfc4514_string() == "CN=new.test.example,O=T,C=US"


def test_new_key_rejects_a_bad_subject() -> None:
    from mtls_config.keystore import new_key_and_csr

    with pytest.raises(KeystoreError, match="cannot read subject"):
        new_key_and_csr("not a dn", [], "ec-p256")
