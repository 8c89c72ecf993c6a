"""The knowledge base's own pitfalls as lint rules, with fixtures made by the real tools and read back by keytool
so that each fixture is shown to mean what it claims:

- K15: the CA certificates of the key entry's chain are not trusted entries (KB0696002: "If you get error
  'unsupported protocol' ..., ensure that you used the -trustcacerts import option in step A and that the
  resulting alias is of type 'TrustedCertEntry'"). In a PKCS12 file a trusted entry is a certificate with Java's
  trust attribute, which openssl and cryptography do not write (cryptography issue #7065).
- K16: a store password shorter than six characters, which keytool refuses ("Keystore password must be at least
  6 characters"). The password is a canary that no finding, message or output may show.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_config.cli.main import main
from mtls_config.engine import lint_findings
from mtls_config.keystore import Finding, assemble_keystore, lint_keystore, read_keystore
from mtls_config.keystore.speclint import lint_specs
from mtls_config.spec.loader import load_specs
from tests.keystore.conftest import (
    FAST_JVM,
    KEYSTORE_DOC,
    NOW,
    STORE_PASSWORD,
    KeytoolRun,
    Pki,
    key_pem,
    keytool,
    keytool_path,
    openssl_path,
    pem,
    raw_store,
    secret,
    store_args,
)

CANARY = "c4n"  # too short for keytool; must never be printed


def errors_and_warnings(findings: list[Finding]) -> list[tuple[str, str, str | None]]:
    return [(f.rule, f.severity, f.alias) for f in findings if f.severity != "info"]


def listing(folder: Path, store: str, password: str = STORE_PASSWORD) -> str:
    """``keytool -list -v``: what Java itself sees in the file."""
    return keytool("-list", "-v", *store_args(store, password), cwd=folder).stdout


def entry_types(text: str) -> list[str]:
    return re.findall(r"Entry type: (\w+)", text)


def chain_lengths(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"Certificate chain length: (\d+)", text)]


# --- K15 with keytool (JKS) ---------------------------------------------------------------------------------------


def test_k15_keytool_reply_with_its_chain_but_no_trusted_cas(keytool_runs: dict[str, KeytoolRun], pki: Pki) -> None:
    """The KB's case: the CA certificates went in with the reply (under the key's alias) and never as trusted
    entries. The key entry's chain is complete, so only K15 is reported."""
    run = keytool_runs["EC"]
    assert run.chain_reply_only is not None
    seen = listing(run.folder, run.chain_reply_only.name)
    assert "Your keystore contains 1 entry" in seen
    assert entry_types(seen) == ["PrivateKeyEntry"] and chain_lengths(seen) == [3]

    findings = lint_keystore(run.chain_reply_only.read_bytes(), secret(), declared_format="jks", now=NOW)
    assert errors_and_warnings(findings) == [("K15", "error", "client")], [str(f) for f in findings]
    k15 = findings[0]
    assert "'unsupported protocol'" in k15.message and "KB0696002" in k15.message
    assert "CN=Test Issuing CA, CN=Test Root CA" in k15.message
    assert "trust attribute" not in k15.message  # that part is for PKCS12 files
    assert "mtls-config keystore assemble" in k15.fix
    assert "keytool -importcert -trustcacerts -alias test-root-ca -file test-root-ca.pem" in k15.fix


def test_k15_holds_for_the_kb_procedure_and_for_the_root_alone(keytool_runs: dict[str, KeytoolRun]) -> None:
    """Both CAs imported with -trustcacerts (the KB's steps A3-A4), or only the root and then the reply with its
    chain: one CA of the chain as a trusted entry is what the KB asks for ("a root or intermediate")."""
    for run in keytool_runs.values():
        seen = listing(run.folder, run.good.name)
        assert entry_types(seen) == ["PrivateKeyEntry", "trustedCertEntry", "trustedCertEntry"], run.algorithm
        findings = lint_keystore(run.good.read_bytes(), secret(), declared_format="jks", now=NOW)
        assert "K15" not in {f.rule for f in findings}
    run = keytool_runs["EC"]
    assert run.root_then_chain_reply is not None
    seen = listing(run.folder, run.root_then_chain_reply.name)
    assert sorted(entry_types(seen)) == ["PrivateKeyEntry", "trustedCertEntry"] and chain_lengths(seen) == [3]
    findings = lint_keystore(run.root_then_chain_reply.read_bytes(), secret(), declared_format="jks", now=NOW)
    assert errors_and_warnings(findings) == [], [str(f) for f in findings]


def test_k15_and_k09_say_complementary_things(pki: Pki) -> None:
    """K09 speaks of the certificates the key entry's chain lacks, K15 of those it holds: the same missing CA is
    never reported twice. (keytool refuses to make these stores: "Failed to establish chain from reply".)"""
    leaf = pki.leaf(pki.key("ec"))

    # Leaf only, no trusted entries: the CAs are nowhere. K09 says so, once; K15 has nothing to add.
    nowhere = lint_keystore(raw_store(pki, chain=[leaf], trusted=False), secret(), now=NOW)
    assert errors_and_warnings(nowhere) == [("K09", "error", "client")], [str(f) for f in nowhere]
    assert "no entry of the keystore holds that issuer" in nowhere[0].message
    assert "-trustcacerts" in nowhere[0].message and "adds them as trusted entries" in nowhere[0].fix

    # Leaf only, the CAs as trusted entries: K09 (Java does not send them), no K15 (they are trusted).
    trusted_only = lint_keystore(raw_store(pki, chain=[leaf]), secret(), now=NOW)
    assert errors_and_warnings(trusted_only) == [("K09", "error", "client")]
    assert "only as a trusted entry" in trusted_only[0].message

    # Leaf and issuing CA, no trusted entries: K09 for the root the chain lacks, K15 for the CA it holds.
    both = lint_keystore(raw_store(pki, chain=[leaf, pki.ica], trusted=False), secret(), now=NOW)
    assert errors_and_warnings(both) == [("K09", "error", "client"), ("K15", "error", "client")]
    k09, k15 = both
    assert "stops at CN=Test Issuing CA (issuer CN=Test Root CA,O=Keystore Tests)" in k09.message
    assert "(CN=Test Issuing CA)" in k15.message and "Root" not in k15.message


# --- K15 with openssl and cryptography (PKCS12) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def p12_folder(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Path:
    """The same key, leaf and CAs as PKCS12 files made four ways (keytool needed to read them back)."""
    keytool_path()
    openssl = openssl_path()
    folder = tmp_path_factory.mktemp("p12")
    key = pki.key("ec")
    leaf = pki.leaf(key, cn="p12.test.example")
    (folder / "key.pem").write_bytes(key_pem(key))
    (folder / "leaf.pem").write_bytes(pem(leaf))
    (folder / "cas.pem").write_bytes(pem(pki.ica, pki.root))
    env = {"P12PASS": STORE_PASSWORD, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    subprocess.run([openssl, "pkcs12", "-export", "-inkey", "key.pem", "-in", "leaf.pem", "-certfile", "cas.pem",
                    "-name", "client", "-out", "openssl.p12", "-passout", "env:P12PASS"], cwd=folder, env=env,
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    # cryptography: the CAs as plain `cas` (no trust attribute), and as a Java trust store (with it).
    password = serialization.BestAvailableEncryption(STORE_PASSWORD.encode())
    (folder / "cryptography.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(b"client", key, leaf, [pki.ica, pki.root], password)
    )
    trust = [pkcs12.PKCS12Certificate(pki.ica, b"issuingca"), pkcs12.PKCS12Certificate(pki.root, b"rootca")]
    (folder / "truststore.p12").write_bytes(pkcs12.serialize_java_truststore(trust, password))
    # The openssl file with the trust store merged in by keytool: the CAs become trusted entries.
    shutil.copy(folder / "openssl.p12", folder / "merged.p12")
    keytool("-importkeystore", "-noprompt", "-srckeystore", "truststore.p12", "-srcstoretype", "PKCS12",
            "-srcstorepass", STORE_PASSWORD, "-destkeystore", "merged.p12", "-deststoretype", "PKCS12",
            "-deststorepass", STORE_PASSWORD, cwd=folder)  # fmt: skip
    return folder


@pytest.mark.parametrize("made_by", ["openssl", "cryptography"])
def test_k15_pkcs12_with_plain_cas(p12_folder: Path, made_by: str) -> None:
    """keytool lists one entry: the CAs are in the key's chain only (cryptography issue #7065)."""
    store = f"{made_by}.p12"
    seen = listing(p12_folder, store)
    assert "Your keystore contains 1 entry" in seen
    assert entry_types(seen) == ["PrivateKeyEntry"] and chain_lengths(seen) == [3]
    findings = lint_keystore((p12_folder / store).read_bytes(), secret(), declared_format="pkcs12", now=NOW)
    assert errors_and_warnings(findings) == [("K15", "error", "client")], [str(f) for f in findings]
    assert "Java's trust attribute" in findings[0].message and "'unsupported protocol'" in findings[0].message


def test_k15_pkcs12_with_trusted_cas(p12_folder: Path) -> None:
    seen = listing(p12_folder, "truststore.p12")
    assert entry_types(seen) == ["trustedCertEntry", "trustedCertEntry"]  # serialize_java_truststore's doing
    seen = listing(p12_folder, "merged.p12")
    assert sorted(entry_types(seen)) == ["PrivateKeyEntry", "trustedCertEntry", "trustedCertEntry"]
    findings = lint_keystore((p12_folder / "merged.p12").read_bytes(), secret(), declared_format="pkcs12", now=NOW)
    assert errors_and_warnings(findings) == [], [str(f) for f in findings]


def test_k15_is_not_guessed_when_the_trust_attributes_cannot_be_read(tmp_path: Path, p12_folder: Path) -> None:
    """A legacy (RC2/3DES) PKCS12 file cannot be searched for Java's trust attribute: an info, not an error."""
    run = subprocess.run([openssl_path(), "pkcs12", "-export", "-legacy", "-inkey", "key.pem", "-in", "leaf.pem",
                          "-certfile", "cas.pem", "-name", "client", "-out", str(tmp_path / "legacy.p12"),
                          "-passout", f"pass:{STORE_PASSWORD}"], cwd=p12_folder, capture_output=True, check=False)  # fmt: skip
    if run.returncode != 0:
        pytest.skip(f"openssl pkcs12 -legacy unavailable: {run.stderr.decode()[-200:]}")
    data = (tmp_path / "legacy.p12").read_bytes()
    assert read_keystore(data, secret()).trusted_entries_known is False
    findings = lint_keystore(data, secret(), declared_format="pkcs12", now=NOW)
    assert [(f.rule, f.severity) for f in findings] == [("K15", "info")], [str(f) for f in findings]
    assert "not checked" in findings[0].message


# --- K16 ---------------------------------------------------------------------------------------------------------


def assert_no_canary(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text, text


def assert_says_no_length(finding: Finding) -> None:
    """Nor the password's length: "shorter than six characters" says all there is."""
    for text in (finding.message, finding.fix):
        assert not re.search(r"\b3\b|three", text), text


def test_k16_keytool_refuses_the_password_the_lint_flags(tmp_path: Path, pki: Pki) -> None:
    """The store opens with the short password (Java reads it: the password is the store's), keytool refuses to
    set such a password, and lint reports K16 without quoting the password or its length."""
    data = raw_store(pki, password=CANARY)
    (tmp_path / "short.jks").write_bytes(data)
    seen = listing(tmp_path, "short.jks", CANARY)
    assert entry_types(seen) == ["PrivateKeyEntry", "trustedCertEntry", "trustedCertEntry"]
    (tmp_path / "good.jks").write_bytes(raw_store(pki))
    refused = keytool("-storepasswd", "-new", CANARY, *store_args("good.jks"), cwd=tmp_path, check=False)
    assert refused.returncode != 0 and "must be at least 6 characters" in refused.stdout + refused.stderr

    findings = lint_keystore(data, secret(CANARY), declared_format="jks", now=NOW)
    assert errors_and_warnings(findings) == [("K16", "error", None)], [str(f) for f in findings]
    k16 = findings[0]
    assert "shorter than six characters" in k16.message and "Keystore password must be at least 6" in k16.message
    assert "(test)" in k16.message  # where the password came from, which is safe to say
    assert_no_canary(str(k16), k16.fix, json.dumps(k16.to_json()))
    assert_says_no_length(k16)


def test_k16_openssl_pkcs12_with_a_short_password(tmp_path: Path, pki: Pki) -> None:
    """openssl makes a PKCS12 with any password; keytool opens it with that password."""
    key = pki.key("ec")
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    (tmp_path / "leaf.pem").write_bytes(pem(pki.leaf(key, cn="short.test.example")))
    (tmp_path / "cas.pem").write_bytes(pem(pki.ica, pki.root))
    subprocess.run([openssl_path(), "pkcs12", "-export", "-inkey", "key.pem", "-in", "leaf.pem", "-certfile",
                    "cas.pem", "-name", "client", "-out", "short.p12", "-passout", "env:P12PASS"], cwd=tmp_path,
                   env={"P12PASS": CANARY, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    assert entry_types(listing(tmp_path, "short.p12", CANARY)) == ["PrivateKeyEntry"]
    findings = lint_keystore((tmp_path / "short.p12").read_bytes(), secret(CANARY), declared_format="pkcs12", now=NOW)
    assert errors_and_warnings(findings) == [("K16", "error", None), ("K15", "error", "client")]
    assert_no_canary(*(str(f) + f.fix for f in findings))
    assert_says_no_length(findings[0])


def test_k16_counts_as_java_does(tmp_path: Path, pki: Pki) -> None:
    """Six is enough, five is not; characters are counted in UTF-16 code units, as keytool counts them: an emoji
    is two. keytool itself agrees on both sides of the line."""
    for password, short in (("abcde", True), ("abcdef", False), ("ab\U0001f600c", True), ("ab\U0001f600cd", False)):
        findings = lint_keystore(raw_store(pki, password=password), secret(password), now=NOW)
        assert ("K16" in {f.rule for f in findings}) is short, password
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    for password, accepted in (("ab\U0001f600cd", True), ("ab\U0001f600c", False)):
        store = f"made-{accepted}.jks"
        made = subprocess.run([keytool_path(), *FAST_JVM, "-genkeypair", "-storetype", "JKS", "-keystore", store,
                               "-storepass", password, "-keypass", password, "-alias", "client", "-keyalg", "EC",
                               "-dname", "CN=emoji.test.example"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert (made.returncode == 0) is accepted, made.stdout + made.stderr
        if accepted:
            findings = lint_keystore((tmp_path / store).read_bytes(), secret(password), now=NOW)
            assert "K16" not in {f.rule for f in findings} and "K02" not in {f.rule for f in findings}
        else:
            assert "must be at least 6 characters" in made.stdout + made.stderr


# --- the CLI and the spec path -------------------------------------------------------------------------------------


def test_cli_lint_flags_both_pitfalls(
    tmp_path: Path, keytool_runs: dict[str, KeytoolRun], pki: Pki, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The issue's done-when: `keystore lint` flags a JKS whose CA certificates are not trusted entries, and a store
    password of `abc`."""
    run = keytool_runs["EC"]
    assert run.chain_reply_only is not None
    monkeypatch.setenv("KS_PASSWORD", STORE_PASSWORD)
    assert main(["keystore", "lint", str(run.chain_reply_only), "--password-env", "KS_PASSWORD"]) == 1
    out = capsys.readouterr().out
    assert "error K15 [client]" in out and "unsupported protocol" in out and "fix: re-assemble" in out

    (tmp_path / "abc.jks").write_bytes(raw_store(pki, password="abc"))
    monkeypatch.setenv("ABC_PASSWORD", "abc")
    assert main(["keystore", "lint", str(tmp_path / "abc.jks"), "--password-env", "ABC_PASSWORD", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(f["rule"], f["severity"]) for f in report["findings"]] == [("K16", "error")]
    assert "env:ABC_PASSWORD" in report["findings"][0]["message"]


def test_cli_assemble_refuses_a_short_password(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = pki.key("ec")
    (tmp_path / "k.pem").write_bytes(key_pem(key))
    (tmp_path / "signed.pem").write_bytes(pem(pki.leaf(key, cn="short.test.example"), pki.ica, pki.root))
    args = ["keystore", "assemble", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "signed.pem")]
    for fmt in ("jks", "pkcs12"):
        for index, (password, code) in enumerate(((CANARY, 1), ("abc", 1), (CANARY + "ary", 0))):
            monkeypatch.setenv("KS_PASSWORD", password)
            out_file = tmp_path / f"store-{index}.{fmt}"
            got = main([*args, "--out", str(out_file), "--format", fmt, "--password-env", "KS_PASSWORD"])
            out, err = capsys.readouterr()
            assert got == code, (fmt, password, out, err)
            assert out_file.exists() is (code == 0)
            if code == 1:
                assert "K16" in out and "shorter than six characters" in out and "was not written" in err
                assert "Traceback" not in out + err
            if password == CANARY:
                assert_no_canary(out, err)


def test_spec_password_too_short_points_at_the_password_field(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate and plan: K16 at the spec's `password:` line, for a keystore file and for a build; the other
    checks still run (the build's missing root, K09); nothing shows the password."""
    key = pki.key("ec")
    leaf = pki.leaf(key, cn="spec.test.example")
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    (tmp_path / "ica.pem").write_bytes(pem(pki.ica))
    (tmp_path / "client.jks").write_bytes(
        assemble_keystore(key_pem(key), pem(leaf), [pem(pki.ica, pki.root)], secret(CANARY))
    )
    docs = KEYSTORE_DOC.format(name="from-file", body="  file: client.jks")
    docs += KEYSTORE_DOC.format(
        name="built", body="  build:\n    key: {fromFile: key.pem}\n    cert: leaf.pem\n    chain: [ica.pem]"
    )
    (tmp_path / "keystores.yaml").write_text(docs)
    specs = load_specs([tmp_path / "keystores.yaml"], root=tmp_path)
    environ = {"SPEC_KS_PASSWORD": CANARY}

    findings = lint_specs(specs, environ=environ, now=NOW)
    k16 = sorted((f.source.rsplit(":", 2)[-2], f.severity) for f in findings if f.rule == "K16")
    assert k16 == [("18", "error"), ("7", "error")], [str(f) for f in findings]  # the two `password:` lines
    assert ("K09", "error") in {(f.rule, f.severity) for f in findings}  # the build still checked
    assert_no_canary(*(str(f) + f.fix for f in findings))
    for finding in findings:
        assert_says_no_length(finding)

    planned = lint_findings(specs, environ, NOW)
    assert sorted((f.address, f.severity) for f in planned if f.message.startswith("K16")) == [
        ("KeyStore/built", "error"),
        ("KeyStore/from-file", "error"),
    ]

    monkeypatch.setenv("SPEC_KS_PASSWORD", CANARY)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "keystores.yaml"]) == 1
    out, err = capsys.readouterr()
    assert "keystores.yaml:7:" in out and "keystores.yaml:18:" in out and "K16" in out
    assert_no_canary(out, err)


def test_a_spec_with_a_long_enough_password_has_no_k16(tmp_path: Path, pki: Pki) -> None:
    key = pki.key("ec")
    (tmp_path / "client.jks").write_bytes(
        assemble_keystore(key_pem(key), pem(pki.leaf(key, cn="ok.test.example")), [pem(pki.ica, pki.root)], secret())
    )
    (tmp_path / "keystores.yaml").write_text(KEYSTORE_DOC.format(name="ok", body="  file: client.jks"))
    specs = load_specs([tmp_path / "keystores.yaml"], root=tmp_path)
    findings = lint_specs(specs, environ={"SPEC_KS_PASSWORD": STORE_PASSWORD}, now=NOW)
    assert errors_and_warnings(findings) == [], [str(f) for f in findings]


def test_the_certificates_only_path_does_not_report_k15(tmp_path: Path, pki: Pki) -> None:
    """Without the private key, a build is checked on its certificates as assemble will store them: with the CAs as
    trusted entries, so K15 cannot fire there."""
    leaf = pki.leaf(pki.key("ec"), cn="nokey.test.example")
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    (tmp_path / "cas.pem").write_bytes(pem(pki.ica, pki.root))
    body = "  build:\n    key: {fromEnv: UNSET_KEY_VARIABLE}\n    cert: leaf.pem\n    chain: [cas.pem]"
    (tmp_path / "keystores.yaml").write_text(KEYSTORE_DOC.format(name="nokey", body=body))
    findings = lint_specs(load_specs([tmp_path / "keystores.yaml"], root=tmp_path), environ={}, now=NOW)
    assert errors_and_warnings(findings) == [], [str(f) for f in findings]
    assert any("private key not resolved" in f.message for f in findings)
