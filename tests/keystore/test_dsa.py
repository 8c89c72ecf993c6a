"""DSA keystores and DSA-signed chains, made by openssl and keytool, read without cryptography's DSA API.

cryptography 51 deprecates DSA (loading a DSA key, ``public_key()`` of a DSA certificate, verifying with a DSA
issuer all warn), and pytest turns warnings into errors here: so these tests fail if any reading path still goes
through it, and they hold what a user sees of a DSA key today: K12 "DSA key: the peer may not support it",
"key DSA 2048" in inspect, chains signed by a DSA CA (SHA-256 and legacy SHA-1) ordered and checked.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mtls_config.errors import KeystoreError, KeystorePasswordError
from mtls_config.keystore import assemble_keystore, lint_keystore, load_private_key, read_keystore
from mtls_config.keystore.certs import (
    build_chain,
    cert_spki_sha256,
    certificate_info,
    describe_certificate_key,
    is_self_signed,
    issued_by,
)
from mtls_config.keystore.store import canonical_model, load_key_entry
from tests.keystore.conftest import STORE_PASSWORD, key_pem, keytool, keytool_path, name, openssl_path, secret

PASSWORD_ARGS = ("-passin", f"pass:{STORE_PASSWORD}", "-passout", f"pass:{STORE_PASSWORD}")


@dataclass(frozen=True)
class DsaMaterial:
    folder: Path
    ca: x509.Certificate  # DSA 2048, self-signed, SHA-256
    client_key_pem: bytes  # DSA, PKCS#8 PEM, unencrypted
    client: x509.Certificate  # the DSA client key's certificate, issued by ``ca`` (SHA-256)
    client_spki_sha256: str  # openssl's own SubjectPublicKeyInfo of the client key, hashed
    ec_key: ec.EllipticCurvePrivateKey
    ec_leaf_sha256: x509.Certificate  # an EC client certificate signed by the DSA CA with SHA-256
    ec_leaf_sha1: x509.Certificate  # the same, signed with SHA-1 (legacy)
    openssl_p12: Path  # openssl pkcs12 -export: DSA key, its certificate, the CA
    openssl_jks: Path  # the same, converted by keytool -importkeystore
    keytool_jks: Path  # keytool -genkeypair -keyalg DSA -storetype JKS
    keytool_p12: Path  # keytool -genkeypair -keyalg DSA (keytool's default type: PKCS12)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture(scope="session")
def dsa(tmp_path_factory: pytest.TempPathFactory) -> DsaMaterial:
    openssl = openssl_path()
    keytool_path()
    folder = tmp_path_factory.mktemp("dsa")

    def run(*args: str) -> bytes:
        return subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True, timeout=120).stdout

    run("dsaparam", "-out", "params.pem", "2048")
    run("gendsa", "-out", "ca.key", "params.pem")
    run("gendsa", "-out", "client.key", "params.pem")
    run("pkcs8", "-topk8", "-nocrypt", "-in", "client.key", "-out", "client.pk8")
    (folder / "ca.cnf").write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    (folder / "leaf.cnf").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    )
    run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/O=Keystore Tests/CN=DSA Root CA", "-days", "3650",
        "-sha256", "-extensions", "v3_ca", "-out", "ca.pem")  # fmt: skip
    run("req", "-new", "-key", "client.key", "-subj", "/O=Keystore Tests/CN=dsa-client.test.example",
        "-out", "client.csr")  # fmt: skip
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "11", "-days", "365",
        "-sha256", "-extfile", "leaf.cnf", "-out", "client.pem")  # fmt: skip
    client_spki = run("pkey", "-in", "client.key", "-pubout", "-outform", "DER")

    ec_key = ec.generate_private_key(ec.SECP256R1())
    (folder / "ec.key").write_bytes(key_pem(ec_key))
    run("req", "-new", "-key", "ec.key", "-subj", "/O=Keystore Tests/CN=ec-under-dsa.test.example", "-out", "ec.csr")
    for digest in ("sha256", "sha1"):
        run("x509", "-req", "-in", "ec.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "12", "-days",
            "365", f"-{digest}", "-extfile", "leaf.cnf", "-out", f"ec-{digest}.pem")  # fmt: skip

    run("pkcs12", "-export", "-inkey", "client.key", "-in", "client.pem", "-certfile", "ca.pem", "-name", "dsa-client",
        "-out", "openssl.p12", *PASSWORD_ARGS)  # fmt: skip
    keytool("-importkeystore", "-srckeystore", "openssl.p12", "-srcstoretype", "PKCS12", "-srcstorepass",
            STORE_PASSWORD, "-destkeystore", "openssl.jks", "-deststoretype", "JKS", "-deststorepass", STORE_PASSWORD,
            cwd=folder)  # fmt: skip
    for store, storetype in (("keytool.jks", ["-storetype", "JKS"]), ("keytool.p12", [])):
        keytool("-genkeypair", *storetype, "-keystore", store, "-storepass", STORE_PASSWORD, "-keypass",
                STORE_PASSWORD, "-alias", "dsakey", "-keyalg", "DSA", "-keysize", "2048", "-dname",
                "CN=dsa-keytool.test.example,O=Keystore Tests", "-validity", "365", cwd=folder)  # fmt: skip
    return DsaMaterial(
        folder=folder,
        ca=_cert(folder / "ca.pem"),
        client_key_pem=(folder / "client.pk8").read_bytes(),
        client=_cert(folder / "client.pem"),
        client_spki_sha256=hashlib.sha256(client_spki).hexdigest(),
        ec_key=ec_key,
        ec_leaf_sha256=_cert(folder / "ec-sha256.pem"),
        ec_leaf_sha1=_cert(folder / "ec-sha1.pem"),
        openssl_p12=folder / "openssl.p12",
        openssl_jks=folder / "openssl.jks",
        keytool_jks=folder / "keytool.jks",
        keytool_p12=folder / "keytool.p12",
    )


def test_a_dsa_certificate_is_described_as_dsa(dsa: DsaMaterial) -> None:
    assert describe_certificate_key(dsa.client) == ("DSA", 2048, None)
    info = certificate_info(dsa.client)
    assert (info.key_algorithm, info.key_size) == ("DSA", 2048)
    # the key's identity is openssl's SubjectPublicKeyInfo, byte for byte
    assert cert_spki_sha256(dsa.client) == dsa.client_spki_sha256


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_chains_signed_by_a_dsa_ca_verify_and_order(dsa: DsaMaterial, digest: str) -> None:
    leaf = dsa.ec_leaf_sha256 if digest == "sha256" else dsa.ec_leaf_sha1
    assert is_self_signed(dsa.ca)
    assert issued_by(leaf, dsa.ca)
    assert issued_by(dsa.client, dsa.ca)
    assert not issued_by(dsa.ca, leaf)  # names do not chain
    assert not issued_by(leaf, dsa.client)
    chain, unused = build_chain(leaf, [dsa.client, dsa.ca])
    assert [c.subject for c in chain] == [leaf.subject, dsa.ca.subject]
    assert unused == [dsa.client]


def test_a_damaged_dsa_signature_does_not_verify(dsa: DsaMaterial) -> None:
    der = bytearray(dsa.ec_leaf_sha256.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature's s
    damaged = x509.load_der_x509_certificate(bytes(der))
    assert damaged.tbs_certificate_bytes == dsa.ec_leaf_sha256.tbs_certificate_bytes
    assert not issued_by(damaged, dsa.ca)
    # a certificate with another issuer's name but the same bytes to sign does not verify either
    assert not issued_by(dsa.ec_leaf_sha256, dsa.client)


@pytest.mark.parametrize("store", ["openssl_p12", "openssl_jks"])
def test_openssl_dsa_keystores_read_and_lint_as_dsa(dsa: DsaMaterial, store: str) -> None:
    data = getattr(dsa, store).read_bytes()
    contents = read_keystore(data, secret())
    assert contents.integrity_verified
    (entry,) = contents.private_key_entries
    assert (entry.alias, entry.key_algorithm, entry.key_size, entry.key_decrypted) == ("dsa-client", "DSA", 2048, True)
    assert entry.key_spki_sha256 == dsa.client_spki_sha256
    assert [c.subject for c in entry.chain] == [dsa.client.subject, dsa.ca.subject]
    assert canonical_model(contents)["entries"][0]["key_spki_sha256"] == dsa.client_spki_sha256
    findings = lint_keystore(data, secret())
    k12 = [(f.severity, f.message) for f in findings if f.rule == "K12"]
    assert k12 == [("warning", "DSA key: the peer may not support it")]
    assert not [f for f in findings if f.rule in ("K02", "K06", "K08", "K13")], findings


@pytest.mark.parametrize("store", ["keytool_jks", "keytool_p12"])
def test_keytool_dsa_keystores_read_as_dsa(dsa: DsaMaterial, store: str) -> None:
    """keytool writes its DSA certificate's signature algorithm with explicit NULL parameters, which cryptography
    refuses to parse: the key is still read and described, and the certificate is reported (K13), not the
    password (as a PKCS12 file was before: cryptography's reader failed on the certificate as a whole)."""
    data = getattr(dsa, store).read_bytes()
    contents = read_keystore(data, secret())
    (entry,) = contents.private_key_entries
    assert (entry.alias, entry.key_algorithm, entry.key_size) == ("dsakey", "DSA", 2048)
    assert entry.key_spki_sha256 is not None
    assert len(entry.stored) == 1 and entry.stored[0].encoding == "invalid"
    rules = {f.rule for f in lint_keystore(data, secret())}
    assert "K13" in rules and "K02" not in rules


def test_a_dsa_pkcs12_with_the_wrong_password_is_refused(dsa: DsaMaterial) -> None:
    for store in (dsa.openssl_p12, dsa.keytool_p12):
        with pytest.raises(KeystorePasswordError):
            read_keystore(store.read_bytes(), secret("not-the-password"))


def test_a_dsa_key_cannot_be_used_for_a_handshake(dsa: DsaMaterial) -> None:
    with pytest.raises(KeystoreError, match="DSA key"):
        load_key_entry(dsa.openssl_p12.read_bytes(), secret())


def test_a_dsa_private_key_is_named_not_loaded(dsa: DsaMaterial) -> None:
    def openssl(*args: str) -> bytes:
        return subprocess.run(
            [openssl_path(), *args], cwd=dsa.folder, check=True, capture_output=True, timeout=60
        ).stdout

    traditional = openssl("pkey", "-in", "client.key", "-traditional")
    assert b"BEGIN DSA PRIVATE KEY" in traditional
    encrypted = openssl("pkcs8", "-topk8", "-in", "client.key", "-passout", f"pass:{STORE_PASSWORD}")
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in encrypted
    for key, password in ((dsa.client_key_pem, None), (traditional, None), (encrypted, secret())):
        with pytest.raises(KeystoreError, match="the private key is a DSA key"):
            load_private_key(key, password)
    with pytest.raises(KeystoreError, match="DSA key"):
        assemble_keystore(dsa.client_key_pem, (dsa.folder / "client.pem").read_bytes(), [], secret())


def test_an_ec_key_under_a_legacy_dsa_ca_assembles_and_lints(dsa: DsaMaterial) -> None:
    pem = (dsa.folder / "ec-sha1.pem").read_bytes()
    data = assemble_keystore(key_pem(dsa.ec_key), pem, [(dsa.folder / "ca.pem").read_bytes()], secret())
    (entry,) = read_keystore(data, secret()).private_key_entries
    assert [c.subject for c in entry.chain] == [name("ec-under-dsa.test.example"), dsa.ca.subject]
    findings = lint_keystore(data, secret())
    sha1 = [f.message for f in findings if f.rule == "K12"]
    assert sha1 == ["CN=ec-under-dsa.test.example is signed with SHA-1; the peer may not support it"]
    assert not [f for f in findings if f.severity == "error"], findings
