"""Each lint rule K01-K16 and T01-T03: a failing fixture (made with keytool, openssl or cryptography, or with the
raw JKS writer where keytool refuses to make the mistake) and a passing one."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from mtls_config.errors import KeystoreError
from mtls_config.keystore import (
    Finding,
    JksPrivateKeyEntry,
    JksTrustedCertEntry,
    encode_jks,
    lint_keystore,
    lint_trust_certs,
    load_certificates,
)
from mtls_config.keystore.lint import Source
from mtls_config.secrets import SecretValue
from tests.keystore.conftest import (
    DER,
    NOW,
    PEM,
    KeytoolRun,
    NonPositiveSerials,
    Pki,
    key_pem,
    name,
    pem,
    pkcs8,
    raw_store,
    secret,
)

SHORT_CANARY = "c4n"  # a store password too short for keytool; it must never show in a finding


@dataclass
class Case:
    data: bytes
    password: SecretValue | None = field(default_factory=secret)
    declared: str | None = "jks"
    now: dt.datetime = NOW


def good(pki: Pki, assembled: Callable[..., bytes], runs: dict[str, KeytoolRun]) -> Case:
    return Case(assembled("ec"))


def leaf_store(pki: Pki, kind: str = "ec", **issue_args: Any) -> bytes:
    from mtls_config.keystore import assemble_keystore

    key = pki.key(kind)
    leaf = pki.leaf(key, **issue_args)
    return assemble_keystore(key_pem(key), pem(leaf), [pem(pki.ica), pem(pki.root)], secret())


FAILING: dict[str, Callable[[Pki, Callable[..., bytes], dict[str, KeytoolRun]], Case]] = {
    # keytool 9+ without -storetype writes PKCS12
    "K01": lambda pki, asm, runs: Case(runs["RSA"].default_storetype.read_bytes()),  # type: ignore[union-attr]
    "K02": lambda pki, asm, runs: Case(asm("ec"), password=secret("wrong-password")),
    "K03": lambda pki, asm, runs: Case(runs["EC"].two_keys.read_bytes()),  # type: ignore[union-attr]
    "K04": lambda pki, asm, runs: Case(runs["EC"].separate_key_password.read_bytes()),  # type: ignore[union-attr]
    "K05": lambda pki, asm, runs: Case(raw_store(pki, alias="Client")),
    "K06": lambda pki, asm, runs: Case(raw_store(pki, key=pki.key("rsa"))),
    "K07": lambda pki, asm, runs: Case(runs["RSA"].reply_under_new_alias.read_bytes()),  # type: ignore[union-attr]
    "K08": lambda pki, asm, runs: Case(raw_store(pki, chain=[pki.leaf(pki.key("ec")), pki.root, pki.ica])),
    "K09": lambda pki, asm, runs: Case(raw_store(pki, chain=[pki.leaf(pki.key("ec"))])),
    "K10": lambda pki, asm, runs: Case(leaf_store(pki, eku=[ExtendedKeyUsageOID.SERVER_AUTH])),
    "K11": lambda pki, asm, runs: Case(asm("ec"), now=NOW + dt.timedelta(days=400)),
    "K12": lambda pki, asm, runs: Case(leaf_store(pki, "rsa1024")),
    "K13": lambda pki, asm, runs: Case(
        raw_store(
            pki, chain_bytes=[pem(pki.leaf(pki.key("ec"))), pki.ica.public_bytes(DER), pki.root.public_bytes(DER)]
        )
    ),
    # keytool's own run: the reply imported with its chain, the CAs never imported as trusted entries
    "K15": lambda pki, asm, runs: Case(runs["EC"].chain_reply_only.read_bytes()),  # type: ignore[union-attr]
    # keytool refuses to make this store ("Keystore password must be at least 6 characters"): the raw writer does
    "K16": lambda pki, asm, runs: Case(raw_store(pki, password=SHORT_CANARY), password=secret(SHORT_CANARY)),
}


@pytest.fixture(scope="module")
def findings_of(
    pki: Pki, assembled: Callable[..., bytes], keytool_runs: dict[str, KeytoolRun]
) -> Callable[[str], list[Finding]]:
    def run(rule: str) -> list[Finding]:
        case = FAILING[rule](pki, assembled, keytool_runs)
        return lint_keystore(case.data, case.password, declared_format=case.declared, now=case.now, source="ks.jks")  # type: ignore[arg-type]

    return run


@pytest.mark.parametrize("rule", sorted(FAILING))
def test_rule_fails_on_its_fixture(rule: str, findings_of: Callable[[str], list[Finding]]) -> None:
    findings = findings_of(rule)
    hits = [f for f in findings if f.rule == rule and f.severity == "error"]
    assert hits, f"{rule} not reported; got {[str(f) for f in findings]}"
    for finding in hits:
        assert finding.source == "ks.jks"
        assert finding.message and finding.fix
        assert "store-pass" not in str(finding) and "wrong-password" not in str(finding)
        assert SHORT_CANARY not in str(finding) + finding.fix


def test_good_store_passes_every_rule(
    pki: Pki, assembled: Callable[..., bytes], keytool_runs: dict[str, KeytoolRun]
) -> None:
    for kind in ("ec", "rsa"):
        findings = lint_keystore(assembled(kind), secret(), declared_format="jks", now=NOW)
        assert findings == [], [str(f) for f in findings]
    for run in keytool_runs.values():
        findings = lint_keystore(run.good.read_bytes(), secret(), declared_format="jks", now=NOW)
        assert [f for f in findings if f.severity != "info"] == []
    # PKCS12 declared as PKCS12 is fine too.
    assert lint_keystore(assembled("ec", "pkcs12"), secret(), declared_format="pkcs12", now=NOW) == []


def test_specific_messages(findings_of: Callable[[str], list[Finding]]) -> None:
    def message(rule: str) -> str:
        return " | ".join(f.message for f in findings_of(rule) if f.rule == rule)

    assert "PKCS12, not JKS" in message("K01")
    assert "2 private-key entries" in message("K03")
    assert "KB0824494" in message("K04")
    assert "'Client'" in message("K05")
    assert "imported under alias 'signed'" in message("K07")
    assert "index 0" in message("K08")
    assert "only as a trusted entry" in message("K09")
    assert "clientAuth" in message("K10")
    assert "expired" in message("K11")
    assert "1024 bits" in message("K12")
    assert "PEM text" in message("K13")
    assert "unsupported protocol" in message("K15") and "KB0696002" in message("K15")
    assert "shorter than six characters" in message("K16")


def test_expiry_window_and_not_yet_valid(assembled: Callable[..., bytes]) -> None:
    data = assembled("ec")
    soon = lint_keystore(data, secret(), now=NOW + dt.timedelta(days=350), warn_days=30)
    assert [(f.rule, f.severity) for f in soon] == [("K11", "warning")]
    assert "expires in" in soon[0].message
    early = lint_keystore(data, secret(), now=NOW - dt.timedelta(days=5))
    assert ("K11", "error") in [(f.rule, f.severity) for f in early]
    assert any("not valid before" in f.message for f in early)
    late_life = lint_keystore(data, secret(), now=NOW + dt.timedelta(days=300), warn_days=30)
    assert [(f.rule, f.severity) for f in late_life] == [("K11", "info")]


def test_without_password_checks_what_it_can(assembled: Callable[..., bytes], pki: Pki) -> None:
    findings = lint_keystore(assembled("ec"), None, declared_format="jks", now=NOW)
    assert [(f.rule, f.severity) for f in findings] == [("K02", "info")]
    # Rules that need no password still fire.
    broken = raw_store(pki, chain=[pki.leaf(pki.key("ec")), pki.root, pki.ica])
    assert "K08" in {f.rule for f in lint_keystore(broken, None, now=NOW)}
    p12 = lint_keystore(assembled("ec", "pkcs12"), None, declared_format="pkcs12", now=NOW)
    assert [(f.rule, f.severity) for f in p12] == [("K02", "info")]


def test_pem_file_and_trusted_only(pki: Pki) -> None:
    not_a_store = lint_keystore(pem(pki.root), None, declared_format="jks")
    assert [(f.rule, f.severity) for f in not_a_store] == [("K01", "error")]
    assert "PEM text" in not_a_store[0].message
    trusted_only = encode_jks([JksTrustedCertEntry("root", 0, pki.root.public_bytes(DER))], secret())
    assert "K03" in {f.rule for f in lint_keystore(trusted_only, secret(), now=NOW)}


def _openssl() -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    return openssl


def test_openssl_sha1_signed_leaf_warns(tmp_path: Path, pki: Pki) -> None:
    from cryptography import x509

    from mtls_config.keystore import assemble_keystore

    key = pki.key("ec")
    csr = x509.CertificateSigningRequestBuilder().subject_name(name("sha1.test.example")).sign(key, hashes.SHA256())
    (tmp_path / "req.csr").write_bytes(csr.public_bytes(PEM))
    (tmp_path / "ica.pem").write_bytes(pem(pki.ica))
    (tmp_path / "ica.key").write_bytes(key_pem(pki.ica_key))
    (tmp_path / "ext.cnf").write_text("extendedKeyUsage=clientAuth\nbasicConstraints=critical,CA:FALSE\n")
    subprocess.run([_openssl(), "x509", "-req", "-in", "req.csr", "-CA", "ica.pem", "-CAkey", "ica.key",
                    "-CAcreateserial", "-days", "30", "-sha1", "-extfile", "ext.cnf", "-out", "leaf.pem"],
                   cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    data = assemble_keystore(key_pem(key), (tmp_path / "leaf.pem").read_bytes(), [pem(pki.ica, pki.root)], secret())
    findings = lint_keystore(data, secret())
    assert ("K12", "warning") in [(f.rule, f.severity) for f in findings], [str(f) for f in findings]
    assert any("SHA-1" in f.message for f in findings)


def test_openssl_made_pkcs12_declared_jks(tmp_path: Path, pki: Pki) -> None:
    openssl = _openssl()
    key = pki.key("ec")
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    (tmp_path / "cert.pem").write_bytes(pem(pki.leaf(key)))
    (tmp_path / "ca.pem").write_bytes(pem(pki.ica, pki.root))
    subprocess.run([openssl, "pkcs12", "-export", "-inkey", "key.pem", "-in", "cert.pem", "-certfile", "ca.pem",
                    "-name", "client", "-out", "client.p12", "-passout", "env:P12PASS"], cwd=tmp_path, check=True,
                   env={"P12PASS": "store-pass-4471", "PATH": "/usr/bin:/bin"}, capture_output=True)  # fmt: skip
    data = (tmp_path / "client.p12").read_bytes()
    # OpenSSL 3.0 writes the CA certificates without Java's trust attribute: K15, whatever the declared type.
    as_jks = lint_keystore(data, secret(), declared_format="jks", now=NOW)
    assert [(f.rule, f.severity) for f in as_jks] == [("K01", "error"), ("K15", "error")]
    as_p12 = lint_keystore(data, secret(), declared_format="pkcs12", now=NOW)
    assert [(f.rule, f.severity) for f in as_p12] == [("K15", "error")]


def test_mixed_case_pkcs12_alias_is_not_k05(tmp_path: Path, pki: Pki) -> None:
    """Java lower-cases PKCS12 aliases as it loads the file (keytool lists 'MyClient' as 'myclient' and finds it
    by either spelling), so a mixed-case friendlyName is no reason to block; in a JKS it is (see K05's fixture)."""
    openssl = _openssl()
    key = pki.key("ec")
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    (tmp_path / "cert.pem").write_bytes(pem(pki.leaf(key)))
    (tmp_path / "ca.pem").write_bytes(pem(pki.ica, pki.root))
    subprocess.run([openssl, "pkcs12", "-export", "-inkey", "key.pem", "-in", "cert.pem", "-certfile", "ca.pem",
                    "-name", "MyClient", "-out", "client.p12", "-passout", "env:P12PASS"], cwd=tmp_path, check=True,
                   env={"P12PASS": "store-pass-4471", "PATH": "/usr/bin:/bin"}, capture_output=True)  # fmt: skip
    data = (tmp_path / "client.p12").read_bytes()
    # Only K15 (OpenSSL 3.0 writes no trust attribute on the CA certificates), no K05.
    findings = lint_keystore(data, secret(), declared_format="pkcs12", now=NOW)
    assert [(f.rule, f.severity, f.alias) for f in findings] == [("K15", "error", "MyClient")]
    if shutil.which("keytool") is not None:
        listing = subprocess.run(["keytool", "-list", "-storetype", "PKCS12", "-keystore", "client.p12",
                                  "-storepass", "store-pass-4471"], cwd=tmp_path, capture_output=True, text=True,
                                 check=True).stdout  # fmt: skip
        assert "myclient, " in listing and "MyClient" not in listing


def test_a_password_that_is_not_utf8_is_a_password_problem_not_a_damaged_file(assembled: Callable[..., bytes]) -> None:
    """A password file saved in Latin-1 must not make a good JKS look 'damaged' (K01): the password is what
    is wrong, and the message says so without quoting it."""
    from mtls_config.errors import KeystorePasswordError
    from mtls_config.keystore import read_keystore

    data = assembled()
    latin1 = SecretValue("caf\u00e9-canary".encode("latin-1"), "file:password.txt")
    with pytest.raises(KeystorePasswordError, match="UTF-8") as err:
        read_keystore(data, latin1)
    assert "canary" not in str(err.value)
    findings = lint_keystore(data, latin1, now=NOW)
    assert "K01" not in {f.rule for f in findings}, [str(f) for f in findings]
    assert ("K02", "error") in {(f.rule, f.severity) for f in findings}


RSA_SHA256_OID = bytes.fromhex("06092a864886f70d01010b")  # the test ICA signs with RSA
PRIME256V1_OID = bytes.fromhex("06082a8648ce3d030107")


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("unknown signature algorithm", RSA_SHA256_OID, bytes.fromhex("06092a864886f70d010163")),
        ("unsupported curve", PRIME256V1_OID, bytes.fromhex("06082a8648ce3d030163")),
    ],
)
def test_a_certificate_cryptography_parses_only_lazily_is_k13_not_a_traceback(
    pki: Pki, what: str, old: bytes, new: bytes
) -> None:
    """cryptography parses a certificate's key, signature algorithm and extensions on first use: a stored
    certificate whose algorithm it does not know must be reported (K13), not crash the linter or the reader."""
    key = pki.key("ec")
    leaf = pki.leaf(key, cn="lazy.test.example").public_bytes(DER)
    assert old in leaf, what
    odd = leaf.replace(old, new)
    store = encode_jks(
        [
            JksPrivateKeyEntry("client", 0, pkcs8(key), (odd, pki.ica.public_bytes(DER), pki.root.public_bytes(DER))),
            JksTrustedCertEntry("odd", 0, odd),
        ],
        secret(),
    )
    for password in (secret(), None):
        findings = lint_keystore(store, password, now=NOW)
        assert ("K13", "error") in {(f.rule, f.severity) for f in findings}, (what, [str(f) for f in findings])
    with pytest.raises(KeystoreError):
        load_certificates(odd)


# --- trust store certificates ---------------------------------------------------------------------------------


def test_trust_cert_passes(pki: Pki) -> None:
    findings = lint_trust_certs(
        [("a.der", pki.root.public_bytes(DER)), ("b.pem", pem(pki.ica))], declared_format=["der", "pem"], now=NOW
    )
    assert findings == []


@pytest.mark.parametrize(
    ("case", "severity", "message"),
    [
        ("pem_as_der", "error", "PEM text where DER is expected"),
        ("der_as_pem", "error", "DER) data where PEM is expected"),
        ("two_certs", "error", "2 certificates in one record"),
        ("garbage", "error", "not a certificate"),
        ("duplicate", "warning", "already trusted by first.pem"),
        ("twice_in_one", "warning", "already trusted by x.pem"),  # the record that holds it first: itself
        ("named_by_a_function", "warning", "already trusted by first.pem"),
        ("private_key", "error", "holds a private key"),
    ],
)
def test_t01(pki: Pki, case: str, severity: str, message: str) -> None:
    items: list[tuple[Source, bytes]] = [("first.pem", pem(pki.root))]
    formats: list[Any] = ["pem"]
    if case == "pem_as_der":
        items, formats = [("x.der", pem(pki.ica))], ["der"]
    elif case == "der_as_pem":
        items, formats = [("x.pem", pki.ica.public_bytes(DER))], ["pem"]
    elif case == "two_certs":
        items, formats = [("x.pem", pem(pki.ica, pki.root))], ["pem"]
    elif case == "garbage":
        items, formats = [("x.der", b"\x01\x02 not asn.1")], ["der"]
    elif case == "duplicate":
        items.append(("second.der", pki.root.public_bytes(DER)))
        formats.append("der")
    elif case == "twice_in_one":
        items, formats = [("x.pem", pem(pki.ica, pki.ica))], ["pem"]
    elif case == "named_by_a_function":  # a source said only for a finding, as a plan's lint gives it
        items = [(lambda: "first.pem", pem(pki.root)), (lambda: "second.der", pki.root.public_bytes(DER))]
        formats.append("der")
    elif case == "private_key":
        items, formats = [("x.pem", pem(pki.ica) + key_pem(pki.key("ec")))], ["pem"]
    findings = lint_trust_certs(items, declared_format=formats, now=NOW)
    hits = [f for f in findings if f.rule == "T01" and f.severity == severity and message in f.message]
    assert hits, [str(f) for f in findings]
    assert all(b"PRIVATE" not in str(f).encode() or case == "private_key" for f in findings)


def test_t02(pki: Pki) -> None:
    key = pki.key("ec")
    server = pki.leaf(key, cn="partner.test.example", days=20, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    item = [("partner.pem", pem(server))]
    assert lint_trust_certs(item, now=NOW - dt.timedelta(days=10))[0].message.find("not valid before") >= 0
    soon = lint_trust_certs(item, now=NOW, warn_days=30)
    assert [(f.rule, f.severity) for f in soon] == [("T02", "warning")]
    assert lint_trust_certs(item, now=NOW, warn_days=5) == []
    expired = lint_trust_certs(item, now=NOW + dt.timedelta(days=40))
    assert [(f.rule, f.severity) for f in expired] == [("T02", "error")]


# --- a serial number that is not positive (K14, T03) -------------------------------------------------------------

AFTER_OPENSSL = NOW + dt.timedelta(days=1)  # openssl's certificates start when the session fixture makes them


def test_k14_non_positive_serial_in_a_keystore(pki: Pki, non_positive_serials: NonPositiveSerials) -> None:
    """Java and the instance accept such certificates, so a warning, never an error; whatever entry holds them."""
    from mtls_config.keystore import assemble_keystore

    made = non_positive_serials
    negative, zero = (load_certificates(p.read_bytes())[0].public_bytes(DER) for p in (made.negative, made.zero))
    key = pki.key("ec")
    leaf = pki.leaf(key, cn="positive.test.example")
    store = encode_jks(
        [JksPrivateKeyEntry("client", 0, pkcs8(key), tuple(c.public_bytes(DER) for c in (leaf, pki.ica, pki.root))),
         JksTrustedCertEntry("root", 0, pki.root.public_bytes(DER)),  # K15: the chain's root as a trusted entry
         JksTrustedCertEntry("old-negative", 0, negative), JksTrustedCertEntry("old-zero", 0, zero)],
        secret(),
    )  # fmt: skip
    findings = lint_keystore(store, secret(), declared_format="jks", now=AFTER_OPENSSL)
    assert [(f.rule, f.severity, f.alias) for f in findings] == [
        ("K14", "warning", "old-negative"),
        ("K14", "warning", "old-zero"),
    ], [str(f) for f in findings]
    assert "trusted certificate CN=Old CA negative has serial number -5, which is not positive" in findings[0].message
    assert "has serial number 0, which is not positive" in findings[1].message
    assert all("RFC 5280" in f.message and f.fix == "ask the CA to reissue it with a positive serial" for f in findings)

    # Our own leaf, issued with serial -7 by a CA, assembled like any other.
    own = assemble_keystore(key_pem(made.leaf_key), made.leaf.read_bytes(), [pem(pki.ica, pki.root)], secret())
    findings = lint_keystore(own, secret(), declared_format="jks", now=AFTER_OPENSSL)
    k14 = [f for f in findings if f.rule == "K14"]
    assert [(f.severity, f.message.split(",")[0]) for f in k14] == [("warning", "the certificate has serial number -7")]
    assert not [f for f in findings if f.severity == "error"], [str(f) for f in findings]
    # Strict path validation refuses the same serial: K10 says so and points at the same fix, not at the CA's
    # basicConstraints.
    k10 = [f for f in findings if f.rule == "K10" and "serial" in f.message]
    assert [f.fix for f in k10] == ["ask the CA to reissue the certificate with a positive serial (K14)"]


def test_t03_non_positive_serial_of_a_trust_certificate(pki: Pki, non_positive_serials: NonPositiveSerials) -> None:
    made = non_positive_serials
    zero_der = load_certificates(made.zero.read_bytes())[0].public_bytes(DER)
    items = [("old.pem", made.negative.read_bytes()), ("zero.der", zero_der), ("root.pem", pem(pki.root))]
    findings = lint_trust_certs(items, declared_format=["pem", "der", "pem"], now=AFTER_OPENSSL)
    assert [(f.rule, f.severity, f.source) for f in findings] == [
        ("T03", "warning", "old.pem"),
        ("T03", "warning", "zero.der"),
    ], [str(f) for f in findings]
    assert findings[0].message.startswith("CN=Old CA negative has serial number -5, which is not positive: RFC 5280")
    assert "serial number 0," in findings[1].message
    assert all(f.fix == "ask the CA to reissue it with a positive serial" for f in findings)
