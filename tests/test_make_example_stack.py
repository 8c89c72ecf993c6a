"""``tools/make_example_stack.py``, run as the README says (a script in a checkout, here from another folder),
writes what the committed example stack holds: the same files, certificates with the same names, key types,
extensions and lifetimes, a keystore with the same entries; and the example stack validates with them. The
committed material itself is not regenerated (it would change on every run: fresh keys, serials and dates)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mtls_config.keystore import read_keystore
from mtls_config.keystore.certs import describe_certificate_key
from mtls_config.keystore.speclint import lint_specs
from mtls_config.secrets import SecretValue
from mtls_config.spec.loader import load_specs
from tests.conftest import EXAMPLE_STACK, REPO_ROOT

KEY_IDS = (x509.SubjectKeyIdentifier.oid, x509.AuthorityKeyIdentifier.oid)


def describe(cert: x509.Certificate) -> dict[str, Any]:
    """What a certificate is, without what changes on every run (key, key ids, serial, dates)."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "key": describe_certificate_key(cert),
        "signature": cert.signature_algorithm_oid.dotted_string,
        "extensions": [
            (e.oid.dotted_string, e.critical, None if e.oid in KEY_IDS else e.value) for e in cert.extensions
        ],
        "lifetime": cert.not_valid_after_utc - cert.not_valid_before_utc,
    }


def certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    if path.suffix == ".der":
        return [x509.load_der_x509_certificate(data)]
    return x509.load_pem_x509_certificates(data)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example") / "two-partners"
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "make_example_stack.py"), "--out", str(out)],
        cwd=tmp_path_factory.getbasetemp(),
        env={**os.environ, "PYTHONPATH": ""},  # the tool finds tests.pki in its own checkout
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr == ""
    return out


def test_the_tool_writes_the_committed_files(generated: Path) -> None:
    made = sorted(p.relative_to(generated) for p in generated.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(EXAMPLE_STACK)
        for folder in ("certs", "demo-secrets", "keystores")
        for p in (EXAMPLE_STACK / folder).rglob("*")
        if p.is_file()
    )
    assert made == committed


def test_its_certificates_are_what_the_committed_ones_are(generated: Path) -> None:
    for path in sorted((EXAMPLE_STACK / "certs").iterdir()):
        ours = [describe(c) for c in certificates(generated / "certs" / path.name)]
        assert ours == [describe(c) for c in certificates(path)], path.name


def test_its_keystore_holds_what_the_committed_one_holds(generated: Path) -> None:
    password = SecretValue((EXAMPLE_STACK / "demo-secrets" / "keystore-password.txt").read_text().strip().encode(), "t")
    assert (generated / "demo-secrets" / "keystore-password.txt").read_bytes() == (
        EXAMPLE_STACK / "demo-secrets" / "keystore-password.txt"
    ).read_bytes()

    def entries(path: Path) -> list[tuple[str, str, str | None, list[dict[str, Any]]]]:
        contents = read_keystore(path.read_bytes(), password)
        return [(e.alias, e.kind, e.key_algorithm, [describe(c) for c in e.chain]) for e in contents.entries]

    name = Path("keystores") / "globex-client.jks"
    assert entries(generated / name) == entries(EXAMPLE_STACK / name)


def test_the_example_stack_validates_with_it(generated: Path, tmp_path: Path) -> None:
    stack = tmp_path / "two-partners"
    shutil.copytree(EXAMPLE_STACK, stack)
    shutil.copytree(generated, stack, dirs_exist_ok=True)
    findings = lint_specs(load_specs([stack / "resources"], root=stack))
    assert [str(f) for f in findings if f.severity != "info"] == []
