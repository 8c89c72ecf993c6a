"""Lint rules run on the KeyStore and TrustStoreCert resources of loaded specs, and through 'validate'."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.keystore.speclint import lint_specs
from mtls_config.spec.loader import Origin, load_specs
from tests.keystore.conftest import DER, KEYSTORE_DOC, NOW, Pki, key_pem, pem, secret

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"
LOCATION = re.compile(r"\.yaml:\d+:\d+$")


def test_example_stack_lints_clean() -> None:
    specs = load_specs([EXAMPLE / "resources"], root=EXAMPLE)
    findings = lint_specs(specs)
    assert [f for f in findings if f.severity != "info"] == [], [str(f) for f in findings]


def test_example_stack_without_secrets_still_checks_certificates(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    shutil.copytree(EXAMPLE, stack)
    (stack / "demo-secrets" / "keystore-password.txt").unlink()
    (stack / "demo-secrets" / "acme-client-key.pem").unlink()
    findings = lint_specs(load_specs([stack / "resources"], root=stack))
    infos = [f for f in findings if f.severity == "info"]
    assert infos and all(f.rule == "K02" for f in infos)
    assert any("private key not resolved" in f.message for f in infos)
    assert any("password not resolved" in f.message for f in infos)
    assert not [f for f in findings if f.severity == "error"]
    assert all(LOCATION.search(f.source) for f in findings)


@pytest.fixture
def broken_stack(tmp_path: Path, pki: Pki, assembled: object) -> Path:
    from mtls_config.keystore import assemble_keystore

    key = pki.key("ec")
    leaf = pki.leaf(key, cn="Spec Client")
    (tmp_path / "key.pem").write_bytes(key_pem(key))
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    (tmp_path / "ica.pem").write_bytes(pem(pki.ica))
    (tmp_path / "p12.jks").write_bytes(
        assemble_keystore(key_pem(key), pem(leaf), [pem(pki.ica, pki.root)], secret(), fmt="pkcs12")
    )
    (tmp_path / "partner.der").write_bytes(pem(pki.root))  # PEM text in a file declared DER
    (tmp_path / "partner2.der").write_bytes(pki.root.public_bytes(DER))
    docs = KEYSTORE_DOC.format(name="pkcs12-declared-jks", body="  file: p12.jks")
    docs += KEYSTORE_DOC.format(
        name="built-no-root",
        body="  build:\n    key: {fromFile: key.pem}\n    cert: leaf.pem\n    chain: [ica.pem]",
    )
    docs += (
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: partner}\n"
        "spec: {format: der, file: partner.der}\n---\n"
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: partner-again}\n"
        "spec: {format: der, file: partner2.der}\n"
    )
    (tmp_path / "resources.yaml").write_text(docs)
    return tmp_path


def test_findings_carry_spec_locations(broken_stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = load_specs([broken_stack / "resources.yaml"], root=broken_stack)
    findings = lint_specs(specs, environ={"SPEC_KS_PASSWORD": "store-pass-4471"}, now=NOW)
    got = {(f.rule, f.severity, f.source.rsplit(":", 2)[-2]) for f in findings}
    assert ("K01", "error", "6") in got  # spec.file of the first document
    assert ("K09", "error", "14") in got  # spec.build of the second
    assert ("T01", "error", "23") in got  # PEM where DER is declared
    assert any(f.rule == "T01" and f.severity == "warning" and "already trusted" in f.message for f in findings)
    assert all(LOCATION.search(f.source) for f in findings)


def test_unresolved_password_is_an_info_not_an_error(broken_stack: Path) -> None:
    specs = load_specs([broken_stack / "resources.yaml"], root=broken_stack)
    findings = lint_specs(specs, environ={}, now=NOW)
    assert any(f.rule == "K02" and f.severity == "info" and "SPEC_KS_PASSWORD" in f.message for f in findings)
    assert ("K01", "error") in {(f.rule, f.severity) for f in findings}  # password-less checks still ran


def test_validate_fails_on_lint_errors_unless_no_lint(
    broken_stack: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPEC_KS_PASSWORD", "store-pass-4471")
    monkeypatch.chdir(broken_stack)
    assert main(["validate", "resources.yaml"]) == 1
    out = capsys.readouterr().out
    assert "resources.yaml:6:" in out and "K01" in out and "fix:" in out
    assert "store-pass-4471" not in out
    assert main(["validate", "--no-lint", "resources.yaml"]) == 0
    assert "valid:" in capsys.readouterr().out


def test_validate_example_passes() -> None:
    assert main(["validate", str(EXAMPLE / "resources")]) == 0


def test_unresolved_password_of_a_keystore_file_does_not_claim_a_placeholder_build(broken_stack: Path) -> None:
    """A keystore named by file is not built: without its password the checks that need it are skipped, and the
    info must say that rather than 'built with a placeholder password: all but the password itself was checked'."""
    specs = load_specs([broken_stack / "resources.yaml"], root=broken_stack)
    findings = lint_specs(specs, environ={}, now=NOW)
    file_doc = [f for f in findings if f.rule == "K02" and f.source.rsplit(":", 2)[-2] in ("6", "7", "8")]
    assert file_doc, [str(f) for f in findings]
    assert not any("placeholder" in f.message for f in file_doc), [str(f) for f in file_doc]
    built = [f for f in findings if f.rule == "K02" and "placeholder" in f.message]
    assert built and all(f.source.rsplit(":", 2)[-2] not in ("6", "7", "8") for f in built)


def test_a_spec_location_is_written_for_each_finding_and_only_for_one(
    tmp_path: Path, pki: Pki, assembled: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lint says where each finding is (the spec's field, a duplicate naming the spec that trusts the certificate
    first), and writes no location for the many specs that have nothing to say (a plan lints thousands)."""
    (tmp_path / "shared.jks").write_bytes(assembled("ec", "jks"))
    trust = (
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {{name: {name}}}\nspec: {{file: {file}}}\n---\n"
    )
    (tmp_path / "root.pem").write_bytes(pem(pki.root))
    (tmp_path / "ica.pem").write_bytes(pem(pki.ica))
    docs = "".join(KEYSTORE_DOC.format(name=f"ks-{i}", body="  file: shared.jks") for i in range(3))
    docs += trust.format(name="root", file="root.pem") + trust.format(name="ica", file="ica.pem")
    docs += trust.format(name="root-again", file="root.pem")
    (tmp_path / "resources.yaml").write_text(docs)
    specs = load_specs([tmp_path / "resources.yaml"], root=tmp_path)
    written: list[tuple[object, ...]] = []
    at = Origin.at

    def counted(origin: Origin, *loc: str | int) -> str:
        written.append(loc)
        return at(origin, *loc)

    monkeypatch.setattr(Origin, "at", counted)
    findings = lint_specs(specs, environ={"SPEC_KS_PASSWORD": "store-pass-4471"}, now=NOW)
    first = specs.origins["TrustStoreCert/root"]
    again = specs.origins["TrustStoreCert/root-again"]
    said = [(f.rule, f.severity, f.source) for f in findings]
    assert said == [("T01", "warning", at(again, "spec", "file"))], [str(f) for f in findings]
    assert findings[0].message.endswith(f"is already trusted by {at(first, 'spec', 'file')}")
    assert written == [("spec", "file"), ("spec", "file")]  # the duplicate's and the one it names
    # a short password: said at each keystore's own password field, though the file is linted once
    written.clear()
    findings = lint_specs(specs, environ={"SPEC_KS_PASSWORD": "short"}, now=NOW)
    k16 = [f.source for f in findings if f.rule == "K16"]
    assert k16 == [at(specs.origins[f"KeyStore/ks-{i}"], "spec", "password") for i in range(3)]
