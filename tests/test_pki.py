"""The shared certificate builder (``tests/pki.py``) does what each option says: the tests that use it depend on
the absence of an extension as much as on its presence."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from tests.pki import CA, dn, new_key, self_signed


def oids(cert: x509.Certificate) -> list[str]:
    return [e.oid._name for e in cert.extensions]


def test_defaults_by_role() -> None:
    root = CA.root("Root")
    ica = root.child_ca("Issuing")
    leaf = ica.issue("leaf", eku=[ExtendedKeyUsageOID.CLIENT_AUTH], san=[x509.DNSName("leaf.example")])
    # a self-signed root has no AKI unless asked; what a CA issues has one, naming the CA's key
    assert oids(root.cert) == ["basicConstraints", "subjectKeyIdentifier", "keyUsage"]
    assert oids(ica.cert) == ["basicConstraints", "subjectKeyIdentifier", "authorityKeyIdentifier", "keyUsage"]
    assert oids(leaf.cert) == [
        "basicConstraints", "subjectKeyIdentifier", "authorityKeyIdentifier", "keyUsage", "extendedKeyUsage",
        "subjectAltName",
    ]  # fmt: skip
    aki = leaf.cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(ica.key.public_key()).digest
    assert ica.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ca_usage = ica.cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ca_usage.critical and ca_usage.value.key_cert_sign and ca_usage.value.crl_sign
    assert not ca_usage.value.digital_signature
    leaf_usage = leaf.cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert leaf_usage.digital_signature and not leaf_usage.key_cert_sign and not leaf_usage.key_encipherment
    assert leaf.cert.issuer == ica.cert.subject and ica.cert.issuer == root.cert.subject
    leaf.cert.verify_directly_issued_by(ica.cert)
    ica.cert.verify_directly_issued_by(root.cert)
    assert leaf.cert.not_valid_after_utc - leaf.cert.not_valid_before_utc == dt.timedelta(days=365)
    assert leaf.cert.not_valid_before_utc < dt.datetime.now(dt.UTC) - dt.timedelta(hours=23)


def test_every_extension_can_be_left_out_or_chosen() -> None:
    root = CA.root("Root", aki=True, path_length=0)
    assert oids(root.cert) == ["basicConstraints", "subjectKeyIdentifier", "authorityKeyIdentifier", "keyUsage"]
    assert root.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    bare = root.issue("bare", ca=None, key_usage=None, ski=False, aki=False)
    assert oids(bare.cert) == []
    assert oids(self_signed("plain", extensions=False).cert) == []
    usage = root.issue("enc", key_usage=["digital_signature", "key_encipherment"]).cert
    value = usage.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    assert value.digital_signature and value.key_encipherment and not value.key_cert_sign
    with pytest.raises(ValueError, match="no room"):
        self_signed("x", extensions=False, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(ValueError, match="unknown key usage"):
        root.issue("x", key_usage=["signing"])  # type: ignore[list-item]


def test_keys_serials_dates_and_hashes() -> None:
    start = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    cert = self_signed("dated", serial=42, not_before=start, days=10, key_type="rsa2048").cert
    assert cert.serial_number == 42
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (start, start + dt.timedelta(days=10))
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    sha384 = self_signed("other hash", hash_algorithm=hashes.SHA384()).cert
    assert isinstance(sha384.signature_hash_algorithm, hashes.SHA384)
    p384 = CA.root("p384", key_type="ec-p384").cert.public_key()
    assert isinstance(p384, ec.EllipticCurvePublicKey) and p384.curve.name == "secp384r1"
    fixed = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    first = self_signed("ed", key=fixed, serial=1, not_before=start).cert
    assert first == self_signed("ed", key=fixed, serial=1, not_before=start).cert  # Ed25519: the same bytes again
    assert first.signature_hash_algorithm is None
    assert CA.root("a").cert.serial_number != CA.root("a").cert.serial_number  # random by default


def test_names_and_csrs() -> None:
    assert dn("cn", organization="Org", country="US").rfc4514_string() == "CN=cn,O=Org,C=US"
    assert CA.root("only a cn").name == "CN=only a cn"
    key = new_key("ec-p256")
    csr = x509.CertificateSigningRequestBuilder().subject_name(dn("client")).sign(key, hashes.SHA256())
    ca = CA.root("CSR CA")
    cert = ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM), eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    assert cert.subject == csr.subject and cert.public_key() == key.public_key()
    assert b"PRIVATE KEY" in ca.issue("k").key_pem() and b"ENCRYPTED" in ca.issue("k").key_pem(b"pw-123456")
