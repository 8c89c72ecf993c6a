"""The deterministic PKCS#12 writer (pkcs12_format) as used by assemble: read back by cryptography, OpenSSL 3
(no -legacy) and keytool 17; the same inputs give the same bytes; salts and IVs change with the password and
never repeat inside a file; strict DER; the RFC 7292 KDF agrees with OpenSSL's."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs12
from hypothesis import given, settings
from hypothesis import strategies as st

from mtls_config.errors import KeystoreError
from mtls_config.keystore import assemble_keystore, canonical_model, lint_keystore, read_keystore, spki_sha256
from mtls_config.keystore.pkcs12_format import Pkcs12KeyEntry, Pkcs12TrustedCert, encode_pkcs12, pkcs12_kdf
from mtls_config.secrets import SecretValue
from tests.keystore.conftest import DER, STORE_PASSWORD, Pki, key_pem, keytool, pem, pkcs8, secret, store_args

CN_BY_KIND = {"rsa": "p12-rsa.test.example", "ec": "p12-ec.test.example"}
ALIAS_BY_KIND = {"rsa": "p12-rsa.test.example", "ec": "p12-ec.test.example"}
PBKDF2_OID = bytes.fromhex("06092a864886f70d01050c")
AES256_CBC_OID = bytes.fromhex("060960864801650304012a")


@pytest.fixture(scope="module")
def p12_parts(pki: Pki) -> dict[str, tuple[bytes, bytes, list[bytes]]]:
    out = {}
    for kind, cn in CN_BY_KIND.items():
        key = pki.key(kind)
        out[kind] = (key_pem(key), pem(pki.leaf(key, cn=cn)), [pem(pki.root), pem(pki.ica)])
    return out


def build(parts: tuple[bytes, bytes, list[bytes]], password: str = STORE_PASSWORD, fmt: str = "pkcs12") -> bytes:
    key, cert, chain = parts
    return assemble_keystore(key, cert, chain, secret(password), fmt=fmt)  # type: ignore[arg-type]


# --- a tiny strict DER reader, independent of the writer ------------------------------------------------------


def der_items(data: bytes) -> list[tuple[int, bytes]]:
    """The TLVs of ``data`` as (tag, body); fails on anything that is not minimal definite-length DER."""
    return [(tag, body) for tag, body, _raw in der_encodings(data)]


def der_encodings(data: bytes) -> list[tuple[int, bytes, bytes]]:
    items, pos = [], 0
    while pos < len(data):
        start = pos
        tag, first = data[pos], data[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        else:
            size = first & 0x7F
            raw = data[pos : pos + size]
            assert size >= 1 and raw[0] != 0, "non-minimal length"
            length = int.from_bytes(raw, "big")
            assert length >= 0x80, "long form for a short length"
            pos += size
        body = data[pos : pos + length]
        assert len(body) == length, "truncated"
        pos += length
        items.append((tag, body, data[start:pos]))
    return items


def walk(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Every TLV, descending into constructed values and into OCTET STRINGs that hold DER (authSafe, SafeContents)."""
    for tag, body in der_items(data):
        yield tag, body
        if tag & 0x20:
            if tag == 0x31:
                members = [raw for _tag, _body, raw in der_encodings(body)]
                assert members == sorted(members), "SET OF not in DER order (X.690 11.6)"
            yield from walk(body)
        elif tag == 0x04 and body[:1] == b"\x30":
            try:
                inner = der_items(body)
            except (AssertionError, IndexError):
                continue
            if len(inner) == 1 and inner[0][0] == 0x30:
                yield from walk(body)


def _oid_body(dotted: str) -> bytes:
    """An OID's DER body (X.690 8.19), written apart from the writer's helper."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        groups = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            groups.append(0x80 | (arc & 0x7F))
        out += bytes(reversed(groups))
    return bytes(out)


def randomised_values(data: bytes) -> dict[str, list[bytes]]:
    """The PBKDF2 salts, the AES IVs and the MAC salt of a PFX."""
    salts, ivs = [], []
    for tag, body in walk(data):
        if tag != 0x30:
            continue
        if body.startswith(PBKDF2_OID):
            params = der_items(der_items(body[len(PBKDF2_OID) :])[0][1])
            salts.append(params[0][1])
        elif body.startswith(AES256_CBC_OID):
            ivs.append(der_items(body[len(AES256_CBC_OID) :])[0][1])
    pfx = der_items(der_items(data)[0][1])
    mac_salt = der_items(pfx[2][1])[1][1]
    return {"pbkdf2": salts, "iv": ivs, "mac": [mac_salt]}


# --- tests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_same_inputs_same_bytes_and_cryptography_reads_it(
    p12_parts: dict[str, tuple[bytes, bytes, list[bytes]]], pki: Pki, kind: str
) -> None:
    parts = p12_parts[kind]
    data = build(parts)
    key, cert, chain = parts
    assert assemble_keystore(key, cert, list(reversed(chain)), secret(), fmt="pkcs12") == data
    assert assemble_keystore(key, cert + pem(pki.ica, pki.root), [], secret(), fmt="pkcs12") == data

    loaded_key, loaded_cert, additional = pkcs12.load_key_and_certificates(data, STORE_PASSWORD.encode())
    assert loaded_key is not None and loaded_cert is not None
    assert pkcs8(loaded_key) == pkcs8(pki.key(kind))
    assert loaded_cert == x509.load_pem_x509_certificate(cert)
    assert additional == [pki.ica, pki.root]
    bundle = pkcs12.load_pkcs12(data, STORE_PASSWORD.encode())
    assert bundle.cert is not None and bundle.cert.friendly_name == ALIAS_BY_KIND[kind].encode()
    assert [(c.certificate, c.friendly_name) for c in bundle.additional_certs] == [
        (pki.ica, b"test-issuing-ca"),
        (pki.root, b"test-root-ca"),
    ]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(data, b"not-the-password")


def test_salts_and_ivs_follow_the_password_and_never_repeat_inside_a_file(
    p12_parts: dict[str, tuple[bytes, bytes, list[bytes]]],
) -> None:
    first, again = build(p12_parts["ec"]), build(p12_parts["ec"])
    other = build(p12_parts["ec"], password="another-password-9")
    values, values_other = randomised_values(first), randomised_values(other)
    assert randomised_values(again) == values
    assert [len(values[k]) for k in ("pbkdf2", "iv", "mac")] == [2, 2, 1]  # certs + key, certs + key, MAC
    all_values = [v for vs in values.values() for v in vs]
    assert len(set(all_values)) == len(all_values)
    assert all(len(v) == 16 for v in all_values)
    assert not set(all_values) & {v for vs in values_other.values() for v in vs}
    # Another key with the same password and chain: other salts too.
    assert not set(values["pbkdf2"]) & set(randomised_values(build(p12_parts["rsa"]))["pbkdf2"])


def test_output_is_strict_der_with_the_expected_algorithms(
    p12_parts: dict[str, tuple[bytes, bytes, list[bytes]]],
) -> None:
    data = build(p12_parts["rsa"])
    tags = list(walk(data))  # the reader asserts minimal lengths and SET OF order throughout
    assert der_items(data)[0][0] == 0x30 and len(der_items(data)) == 1
    assert der_items(der_items(data)[0][1])[0] == (0x02, b"\x03")  # PFX version 3
    oids = {body for tag, body in tags if tag == 0x06}
    hmac_sha256, sha256 = bytes.fromhex("2a864886f70d0209"), bytes.fromhex("608648016503040201")
    assert {hmac_sha256, sha256, PBKDF2_OID[2:], AES256_CBC_OID[2:]} <= oids
    # The certificates' SafeContents, decrypted here with the salt and IV the file states, is strict DER too,
    # and only the two CA certificates carry Oracle's trust attribute.
    values = randomised_values(data)
    ciphertext = next(body for tag, body in tags if tag == 0x80)
    aes_key = hashlib.pbkdf2_hmac("sha256", STORE_PASSWORD.encode(), values["pbkdf2"][0], 10_000, 32)
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(values["iv"][0])).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    cert_contents = padded[: -padded[-1]]
    inner = list(walk(cert_contents))
    assert _oid_body("1.2.840.113549.1.5.12") == PBKDF2_OID[2:]  # the OID helper agrees with a known encoding
    oracle_trust = _oid_body("2.16.840.1.113894.746875.1.1")
    assert [body for tag, body in inner if tag == 0x06].count(oracle_trust) == 2
    assert [body for tag, body in inner if tag == 0x06].count(_oid_body("1.2.840.113549.1.12.10.1.3")) == 3
    iterations = [int.from_bytes(b, "big") for t, b in tags if t == 0x02]
    assert iterations.count(10_000) == 3  # two PBKDF2 and the MAC


def test_pkcs12_kdf_agrees_with_openssl() -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    password, salt = "pässwörd".encode("utf-16-be") + b"\0\0", bytes(range(1, 9))
    result = subprocess.run(
        [openssl, "kdf", "-keylen", "80", "-kdfopt", "digest:SHA256", "-kdfopt", f"hexpass:{password.hex()}",
         "-kdfopt", f"hexsalt:{salt.hex()}", "-kdfopt", "iter:3", "-kdfopt", "id:1", "PKCS12KDF"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.skip("this openssl has no PKCS12KDF")
    # 80 bytes: three SHA-256 blocks, so the RFC 7292 B.2 step that updates I between blocks is exercised.
    assert pkcs12_kdf(password, salt, 1, 3, 80) == bytes.fromhex(result.stdout.strip().replace(":", ""))


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_openssl3_reads_it_without_legacy(
    tmp_path: Path, p12_parts: dict[str, tuple[bytes, bytes, list[bytes]]], pki: Pki, kind: str
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    path = tmp_path / "store.p12"
    path.write_bytes(build(p12_parts[kind]))
    env = {**os.environ, "P12_PASS": STORE_PASSWORD}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([openssl, "pkcs12", "-in", str(path), *args], capture_output=True, text=True,
                              env=env, timeout=30, check=False)  # fmt: skip

    info = run("-info", "-noout", "-passin", "env:P12_PASS")
    assert info.returncode == 0, info.stderr
    assert "MAC: sha256, Iteration 10000" in info.stderr
    assert info.stderr.count("PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256") == 2
    assert info.stderr.count("Certificate bag") == 3 and "Shrouded Keybag" in info.stderr
    dump = run("-nodes", "-passin", "env:P12_PASS")
    assert dump.returncode == 0, dump.stderr
    key = serialization.load_pem_private_key(dump.stdout.encode(), None)
    assert pkcs8(key) == pkcs8(pki.key(kind))
    certs = x509.load_pem_x509_certificates(dump.stdout.encode())
    assert certs[1:] == [pki.ica, pki.root]
    assert f"friendlyName: {ALIAS_BY_KIND[kind]}" in dump.stdout
    assert dump.stdout.count("2.16.840.1.113894.746875.1.1") == 2  # the CA certificates only
    wrong = run("-info", "-noout", "-passin", "pass:not-the-password")
    assert wrong.returncode != 0 and "mac verify" in wrong.stderr.lower()


def test_reader_and_lint_accept_it(p12_parts: dict[str, tuple[bytes, bytes, list[bytes]]], pki: Pki) -> None:
    data = build(p12_parts["ec"])
    contents = read_keystore(data, secret())
    assert contents.store_type == "pkcs12" and contents.integrity_verified
    key_entry = contents.private_key_entries[0]
    assert key_entry.alias == ALIAS_BY_KIND["ec"]
    assert key_entry.chain[1:] == (pki.ica, pki.root)
    assert key_entry.key_spki_sha256 == spki_sha256(pki.key("ec").public_key())
    assert [f for f in lint_keystore(data, secret(), declared_format="pkcs12") if f.severity == "error"] == []


def test_no_secret_in_the_file_or_in_reprs(pki: Pki) -> None:
    canary = "canary-P4ssw0rd-7391"
    key = pki.key("ec")
    leaf = pki.leaf(key, cn="canary.test.example")
    data = assemble_keystore(key_pem(key), pem(leaf), [pem(pki.ica, pki.root)], secret(canary), fmt="pkcs12")
    raw_key = pkcs8(key)
    for form in (canary.encode(), canary.encode("utf-16-be"), raw_key, raw_key[-32:]):
        assert form not in data
    entry = Pkcs12KeyEntry("a", raw_key, (leaf.public_bytes(DER),))
    assert raw_key.hex() not in repr(entry) and str(raw_key[:8]) not in repr(entry)
    with pytest.raises(KeystoreError, match="needs its certificate"):
        encode_pkcs12(Pkcs12KeyEntry("a", raw_key, ()), [], secret())
    with pytest.raises(KeystoreError, match="not UTF-8") as err:
        encode_pkcs12(entry, [], SecretValue(b"\xffsecret-bytes", "test"))
    assert "secret-bytes" not in str(err.value) and "xff" not in str(err.value)


def test_trusted_certificates_outside_the_chain_and_plain_chain_certs(pki: Pki) -> None:
    """The writer alone: a chain CA that is not a trusted entry is written without attributes; a trusted
    certificate outside the chain is written once, as a trusted entry."""
    key = pki.key("rsa")
    leaf = pki.leaf(key, cn="writer.test.example")
    other = pki.leaf(pki.key("ec"), cn="partner.test.example")
    entry = Pkcs12KeyEntry("writer", pkcs8(key), tuple(c.public_bytes(DER) for c in (leaf, pki.ica, pki.root)))
    trusted = [
        Pkcs12TrustedCert("root", pki.root.public_bytes(DER)),
        Pkcs12TrustedCert("partner", other.public_bytes(DER)),
    ]
    bundle = pkcs12.load_pkcs12(encode_pkcs12(entry, trusted, secret()), STORE_PASSWORD.encode())
    assert [(c.certificate, c.friendly_name) for c in bundle.additional_certs] == [
        (pki.ica, None),
        (pki.root, b"root"),
        (other, b"partner"),
    ]


def _keytool_list_and_certreq(folder: Path, store: str, alias: str) -> tuple[str, str]:
    listing = keytool("-list", "-v", "-storetype", "PKCS12", *store_args(store), cwd=folder).stdout
    keytool("-certreq", "-storetype", "PKCS12", "-alias", alias, *store_args(store), "-file", f"{store}.csr",
            cwd=folder)  # fmt: skip
    return listing, (folder / f"{store}.csr").read_text()


def _keytool_convert(folder: Path, source: str, source_type: str, dest: str, dest_type: str) -> None:
    keytool("-importkeystore", "-noprompt", "-srckeystore", source, "-srcstoretype", source_type,
            "-srcstorepass", STORE_PASSWORD, "-destkeystore", dest, "-deststoretype", dest_type,
            "-deststorepass", STORE_PASSWORD, cwd=folder)  # fmt: skip


def test_keytool_sees_the_key_entry_and_trusted_cas_and_converts_to_the_same_model(
    tmp_path: Path, p12_parts: dict[str, tuple[bytes, bytes, list[bytes]]], pki: Pki
) -> None:
    """keytool -list -v (PrivateKeyEntry with the whole chain, each CA a trustedCertEntry) and -certreq (Java
    decrypts the key) for RSA and EC; keytool's conversions both ways keep the canonical model."""
    stores: dict[str, bytes] = {}
    for kind in ("rsa", "ec"):
        stores[f"{kind}.p12"] = build(p12_parts[kind])
        stores[f"{kind}.jks"] = build(p12_parts[kind], fmt="jks")
    for file, data in stores.items():
        (tmp_path / file).write_bytes(data)
    jobs: dict[str, Callable[[], object]] = {
        f"list-{kind}": (lambda k=kind: _keytool_list_and_certreq(tmp_path, f"{k}.p12", ALIAS_BY_KIND[k]))
        for kind in ("rsa", "ec")
    }
    jobs["p12-to-jks"] = lambda: _keytool_convert(tmp_path, "ec.p12", "PKCS12", "kt-from-p12.jks", "JKS")
    jobs["jks-to-p12"] = lambda: _keytool_convert(tmp_path, "ec.jks", "JKS", "kt-from-jks.p12", "PKCS12")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = {name: future.result() for name, future in {n: pool.submit(j) for n, j in jobs.items()}.items()}

    for kind in ("rsa", "ec"):
        listing, csr_pem = results[f"list-{kind}"]  # type: ignore[misc]
        assert "Keystore type: PKCS12" in listing
        assert "Your keystore contains 3 entries" in listing
        assert len(re.findall(r"Entry type: PrivateKeyEntry", listing)) == 1
        assert "Certificate chain length: 3" in listing
        trusted = re.findall(r"Alias name: (\S+)\n[^\n]*\nEntry type: trustedCertEntry", listing)
        assert sorted(trusted) == ["test-issuing-ca", "test-root-ca"], listing
        assert f"Alias name: {ALIAS_BY_KIND[kind]}\n" in listing
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        assert csr.is_signature_valid
        assert spki_sha256(csr.public_key()) == spki_sha256(pki.key(kind).public_key())

    # keytool's JKS from our PKCS12 means what our JKS means: the trust attribute made the CAs trusted entries.
    ours_jks = canonical_model(read_keystore(stores["ec.jks"], secret()))
    assert canonical_model(read_keystore((tmp_path / "kt-from-p12.jks").read_bytes(), secret())) == ours_jks
    # keytool's PKCS12 from our JKS reads as our PKCS12 does.
    ours_p12 = canonical_model(read_keystore(stores["ec.p12"], secret()))
    assert canonical_model(read_keystore((tmp_path / "kt-from-jks.p12").read_bytes(), secret())) == ours_p12


@settings(max_examples=25, deadline=None, derandomize=True)
@given(password=st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=40))
def test_any_text_password_round_trips(pki: Pki, password: str) -> None:
    """PBES2 takes the password as UTF-8 and the MAC as UTF-16 (BMPString, surrogate pairs beyond the BMP), as
    OpenSSL and Java read them; a NUL is left out only because OpenSSL takes the password as a C string."""
    key = pki.key("ec")
    leaf_der = pki.leaf(key, cn="any-password.test.example").public_bytes(DER)
    entry = Pkcs12KeyEntry("any", pkcs8(key), (leaf_der,))
    data = encode_pkcs12(entry, [], SecretValue(password.encode(), "test"))
    assert encode_pkcs12(entry, [], SecretValue(password.encode(), "test")) == data
    loaded_key, loaded_cert, _ = pkcs12.load_key_and_certificates(data, password.encode())
    assert loaded_key is not None and pkcs8(loaded_key) == pkcs8(key)
    assert loaded_cert is not None and loaded_cert.public_bytes(DER) == leaf_der


def test_reader_lists_trusted_cas_as_keytool_does_and_means_what_the_jks_means(
    p12_parts: dict[str, tuple[bytes, bytes, list[bytes]]],
) -> None:
    """The CA certificates carry Java's trust attribute, so keytool lists them as trustedCertEntry although they
    are also in the key's chain; read_keystore does the same, and the model equals the JKS's but for the type."""
    for kind in ("rsa", "ec"):
        p12 = read_keystore(build(p12_parts[kind]), secret())
        assert [(e.alias, e.kind) for e in p12.entries] == [
            (ALIAS_BY_KIND[kind], "private_key"),
            ("test-issuing-ca", "trusted_cert"),
            ("test-root-ca", "trusted_cert"),
        ]
        assert p12.unchecked == ()
        p12_model = canonical_model(p12)
        jks_model = canonical_model(read_keystore(build(p12_parts[kind], fmt="jks"), secret()))
        assert (p12_model["store_type"], jks_model["store_type"]) == ("pkcs12", "jks")
        assert p12_model["entries"] == jks_model["entries"]


def test_reader_trust_attribute_against_openssl_files(tmp_path: Path, pki: Pki) -> None:
    """OpenSSL 3 writes no trust attribute: a CA in the key's chain stays in the chain only, a certificate outside
    it is still listed. A legacy (RC2/3DES) file cannot be searched for the attribute, and says so."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key = pki.key("ec")
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    leaf = pki.leaf(key, cn="openssl.test.example")
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    other = pki.leaf(pki.key("rsa"), cn="stranger.test.example")
    (tmp_path / "cas.pem").write_bytes(pem(pki.ica, pki.root, other))
    base = ["openssl", "pkcs12", "-export", "-inkey", "key.pem", "-in", "leaf.pem", "-certfile", "cas.pem",
            "-name", "client", "-passout", f"pass:{STORE_PASSWORD}"]  # fmt: skip
    for name, extra in (("modern.p12", []), ("legacy.p12", ["-legacy"])):
        run = subprocess.run([*base, *extra, "-out", name], cwd=tmp_path, capture_output=True, check=False)
        if run.returncode != 0:
            pytest.skip(f"openssl pkcs12 {' '.join(extra)} unavailable: {run.stderr.decode()[-200:]}")
    modern = read_keystore((tmp_path / "modern.p12").read_bytes(), secret())
    listed = [(e.alias, e.kind, e.chain) for e in modern.entries]
    assert listed == [("cert-1", "trusted_cert", (other,)), ("client", "private_key", (leaf, pki.ica, pki.root))]
    assert modern.unchecked == ()
    legacy = read_keystore((tmp_path / "legacy.p12").read_bytes(), secret())
    assert [(e.alias, e.kind, e.chain) for e in legacy.entries] == listed
    assert any("trust attributes" in note for note in legacy.unchecked)
