"""The keystore and cert commands end to end, through the real CLI entry point, with canary secrets that must
never show up in any output."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from mtls_config.cli.main import main
from tests.keystore.conftest import DER, Pki, pem

STORE_CANARY = "CANARY-store-pw-93a1f"
KEY_CANARY = "CANARY-key-pw-11b7"


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.transcript: list[str] = []

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = self.capsys.readouterr()
        self.transcript += [out, err]
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("KS_PASSWORD", STORE_CANARY)
    monkeypatch.setenv("KEY_PASSWORD", KEY_CANARY)
    monkeypatch.setenv("WRONG_PASSWORD", "CANARY-wrong-pw-5c2d")
    return Cli(capsys)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_full_procedure_without_leaking_secrets(
    tmp_path: Path, cli: Cli, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # A1-A2: key + CSR
    code, out, err = cli("keystore", "new", "--subject", "CN=cli.test.example,O=Keystore Tests,C=US",
                         "--san", "DNS:cli.test.example", "--san", "IP:127.0.0.1", "--key-type", "ec-p256",
                         "--key-out", "client.key", "--csr-out", "client.csr", "--key-password-env", "KEY_PASSWORD")  # fmt: skip
    assert code == 0, err
    assert mode(tmp_path / "client.key") == 0o600
    key_pem = (tmp_path / "client.key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key_pem
    key = serialization.load_pem_private_key(key_pem, KEY_CANARY.encode())
    csr = x509.load_pem_x509_csr((tmp_path / "client.csr").read_bytes())
    assert csr.is_signature_valid
    assert list(csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert len(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == 2

    # The CA signs; A3-A4: assemble
    signed = pki.sign_csr((tmp_path / "client.csr").read_bytes())
    (tmp_path / "signed.pem").write_bytes(pem(signed))
    (tmp_path / "root.pem").write_bytes(pem(pki.root))
    (tmp_path / "ica.pem").write_bytes(pem(pki.ica))
    assemble = ["keystore", "assemble", "--key", "client.key", "--key-password-env", "KEY_PASSWORD",
                "--cert", "signed.pem", "--chain", "root.pem", "--chain", "ica.pem", "--password-env", "KS_PASSWORD",
                "--alias", "client"]  # fmt: skip
    code, out, err = cli(*assemble, "--out", "client.jks")
    assert code == 0, err
    assert "client: PrivateKeyEntry, chain of 3" in out
    assert mode(tmp_path / "client.jks") == 0o600
    code, _, _ = cli(*assemble, "--out", "again.jks")
    assert (tmp_path / "again.jks").read_bytes() == (tmp_path / "client.jks").read_bytes()
    code, _, err = cli(*assemble, "--out", "client.jks")
    assert code == 1 and "exists already" in err

    # inspect, with and without the password
    code, out, err = cli("keystore", "inspect", "client.jks", "--password-env", "KS_PASSWORD", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["store_type"] == "jks" and report["integrity_verified"] is True
    assert [(e["alias"], e["kind"]) for e in report["entries"]] == [
        ("client", "private_key"), ("test-issuing-ca", "trusted_cert"), ("test-root-ca", "trusted_cert")
    ]  # fmt: skip
    assert report["entries"][0]["chain"][0]["extended_key_usage"] == ["clientAuth"]
    code, out, _ = cli("keystore", "inspect", "client.jks")
    assert code == 0 and "integrity NOT verified" in out and "not checked:" in out

    # lint: clean, then with the wrong password
    code, out, _ = cli(
        "keystore", "lint", "client.jks", "--password-env", "KS_PASSWORD", "--store-type", "jks", "--format", "json"
    )
    assert code == 0 and json.loads(out)["errors"] == 0
    code, out, _ = cli("keystore", "lint", "client.jks", "--password-env", "WRONG_PASSWORD")
    assert code == 1 and "K02" in out and "env:WRONG_PASSWORD" in out

    # D: export the public certificate
    code, _, err = cli("keystore", "export-cert", "client.jks", "--format", "der", "--out", "client.der")
    assert code == 0, err
    assert (tmp_path / "client.der").read_bytes() == signed.public_bytes(DER)
    code, out, _ = cli("cert", "inspect", "client.der", "--json")
    assert code == 0 and json.loads(out)["certificates"][0]["subject"] == signed.subject.rfc4514_string()
    code, out, _ = cli("cert", "inspect", "ica.pem")
    assert code == 0 and "Test Issuing CA" in out

    # Nothing secret in anything printed.
    transcript = "\n".join(cli.transcript)
    assert STORE_CANARY not in transcript and KEY_CANARY not in transcript and "CANARY-wrong" not in transcript
    plain_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for blob in (key_pem, plain_key):
        for line in blob.decode().splitlines()[1:-1]:
            assert line not in transcript


def test_passwords_never_come_from_argv(tmp_path: Path, cli: Cli) -> None:
    code, _, err = cli("keystore", "inspect", str(tmp_path / "x.jks"), "--password", STORE_CANARY)
    assert code == 1
    assert "unknown option --password" in err and STORE_CANARY not in err


def test_errors_are_messages_not_tracebacks(tmp_path: Path, cli: Cli, pki: Pki) -> None:
    (tmp_path / "root.pem").write_bytes(pem(pki.root))
    code, _, err = cli("keystore", "inspect", str(tmp_path / "root.pem"))
    assert code == 1 and "PEM text" in err and "Traceback" not in err
    code, _, err = cli("keystore", "assemble", "--key", str(tmp_path / "root.pem"), "--cert", str(tmp_path / "root.pem"),
                       "--out", str(tmp_path / "o.jks"))  # fmt: skip
    assert code == 1 and "keystore password is required" in err
    code, _, err = cli("keystore", "inspect", str(tmp_path / "root.pem"), "--password-env", "UNSET_VARIABLE_X")
    assert code == 1 and "UNSET_VARIABLE_X is not set" in err


def test_lint_exit_codes_and_json(tmp_path: Path, cli: Cli, pki: Pki) -> None:
    from mtls_config.keystore import JksTrustedCertEntry, encode_jks
    from mtls_config.secrets import SecretValue

    store = tmp_path / "trusted-only.jks"
    store.write_bytes(
        encode_jks(
            [JksTrustedCertEntry("Root", 0, pki.root.public_bytes(DER))], SecretValue(STORE_CANARY.encode(), "t")
        )
    )
    code, out, _ = cli("keystore", "lint", str(store), "--password-env", "KS_PASSWORD", "--json")
    assert code == 1
    data = json.loads(out)
    rules = {(f["rule"], f["severity"]) for f in data["findings"]}
    assert ("K03", "error") in rules and ("K05", "error") in rules
    assert all(f["source"] == str(store) and f["fix"] for f in data["findings"])


def test_password_file_and_plain_key(tmp_path: Path, cli: Cli, pki: Pki) -> None:
    (tmp_path / "pw.txt").write_text(STORE_CANARY + "\n")
    code, out, err = cli("keystore", "new", "--subject", "CN=plain.test.example", "--key-out", str(tmp_path / "k.pem"),
                         "--csr-out", str(tmp_path / "r.csr"))  # fmt: skip
    assert code == 0, err
    assert mode(tmp_path / "k.pem") == 0o600 and "not encrypted" in out
    code, _, err = cli("keystore", "new", "--subject", "CN=plain.test.example", "--key-out", str(tmp_path / "k.pem"),
                       "--csr-out", str(tmp_path / "r.csr"))  # fmt: skip
    assert code == 1 and "exists already" in err
    signed = pki.sign_csr((tmp_path / "r.csr").read_bytes())
    (tmp_path / "signed.pem").write_bytes(pem(signed, pki.ica, pki.root))  # the CA reply with its chain
    code, out, err = cli("keystore", "assemble", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "signed.pem"),
                         "--out", str(tmp_path / "c.p12"), "--format", "pkcs12", "--password-file", str(tmp_path / "pw.txt"))  # fmt: skip
    assert code == 0, err
    code, out, err = cli("keystore", "assemble", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "signed.pem"),
                         "--out", str(tmp_path / "again.p12"), "--format", "pkcs12", "--password-file", str(tmp_path / "pw.txt"))  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "again.p12").read_bytes() == (tmp_path / "c.p12").read_bytes()  # PKCS12 is deterministic too
    code, out, _ = cli(
        "keystore", "lint", str(tmp_path / "c.p12"), "--password-file", str(tmp_path / "pw.txt"), "--store-type", "jks"
    )
    assert code == 1 and "K01" in out and "PKCS12, not JKS" in out
    code, _, err = cli("keystore", "inspect", str(tmp_path / "c.p12"), "--password-file", str(tmp_path / "pw.txt"),
                       "--password-env", "KS_PASSWORD")  # fmt: skip
    assert code == 1 and "not both" in err
    assert STORE_CANARY not in "\n".join(cli.transcript)


def test_a_password_file_that_is_not_utf8_is_a_message_not_a_traceback(tmp_path: Path, cli: Cli, pki: Pki) -> None:
    """A Latin-1 password file: assemble (JKS, like PKCS12) says the password is not UTF-8 text, exit 1, and
    writes no keystore."""
    from tests.keystore.conftest import key_pem

    key = pki.key("ec")
    (tmp_path / "k.pem").write_bytes(key_pem(key))
    (tmp_path / "signed.pem").write_bytes(pem(pki.leaf(key, cn="latin1.test.example"), pki.ica, pki.root))
    (tmp_path / "pw.txt").write_bytes("caf\u00e9-CANARY".encode("latin-1"))
    for fmt in ("jks", "pkcs12"):
        out_file = tmp_path / f"c.{fmt}"
        code, _, err = cli("keystore", "assemble", "--key", str(tmp_path / "k.pem"), "--cert", str(tmp_path / "signed.pem"),
                           "--out", str(out_file), "--format", fmt, "--password-file", str(tmp_path / "pw.txt"))  # fmt: skip
        assert code == 1 and "not UTF-8" in err and "CANARY" not in err, (fmt, err)
        assert not out_file.exists()
