"""What build_desired reads once per run (keystore files, secrets) is read as it is at each run, and each spec
still gets its own: same file name in another folder, another variable, another password file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_config.desired import build_desired
from mtls_config.resources.trust_store_cert import normalise_pem, pem_of_der
from mtls_config.secrets import SecretValue
from mtls_config.spec.loader import load_specs
from tests.conftest import EXAMPLE_STACK

JKS = EXAMPLE_STACK / "keystores" / "globex-client.jks"


def _keystores(folder: Path, password_refs: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(JKS, folder / "client.jks")
    docs = [
        f"apiVersion: mtls-config/v1\nkind: KeyStore\nmetadata: {{name: {folder.name}-{i}}}\n"
        f"spec: {{file: client.jks, password: {ref}}}\n"
        for i, ref in enumerate(password_refs)
    ]
    (folder / "keystores.yaml").write_text("---\n".join(docs))


def _passwords(root: Path, environ: dict[str, str] | None = None) -> dict[str, bytes]:
    desired = build_desired(load_specs([root], root=root), environ=environ or {})
    out = {}
    for r in desired.resources:
        assert isinstance(r.password, SecretValue)
        out[r.name] = r.password.reveal()
    return out


def test_each_spec_gets_the_secret_it_names(tmp_path: Path) -> None:
    for folder, text in (("one", b"password-of-one"), ("two", b"password-of-two")):
        _keystores(tmp_path / folder, ["{fromFile: pw.txt}", "{fromEnv: A}", "{fromEnv: B}", "{fromFile: pw.txt}"])
        (tmp_path / folder / "pw.txt").write_bytes(text + b"\n")
    got = _passwords(tmp_path, {"A": "from-a", "B": "from-b"})
    assert got == {
        "one-0": b"password-of-one", "one-1": b"from-a", "one-2": b"from-b", "one-3": b"password-of-one",
        "two-0": b"password-of-two", "two-1": b"from-a", "two-2": b"from-b", "two-3": b"password-of-two",
    }  # fmt: skip


def test_a_password_file_or_keystore_changed_between_runs_is_read_again(tmp_path: Path) -> None:
    _keystores(tmp_path / "ks", ["{fromFile: pw.txt}", "{fromFile: pw.txt}"])
    (tmp_path / "ks" / "pw.txt").write_bytes(b"first")
    assert set(_passwords(tmp_path).values()) == {b"first"}
    (tmp_path / "ks" / "pw.txt").write_bytes(b"second")
    assert set(_passwords(tmp_path).values()) == {b"second"}

    def digests() -> set[str]:
        desired = build_desired(load_specs([tmp_path], root=tmp_path), environ={})
        return {r.content.digest for r in desired.resources if r.content is not None}

    before = digests()
    (tmp_path / "ks" / "client.jks").write_bytes(JKS.read_bytes() + b"\0")
    after = digests()
    assert len(before) == len(after) == 1 and before != after


def test_a_missing_secret_is_reported_for_every_spec_that_names_it(tmp_path: Path) -> None:
    from mtls_config.errors import SpecError

    _keystores(tmp_path / "ks", ["{fromEnv: MISSING}", "{fromEnv: MISSING}"])
    with pytest.raises(SpecError) as caught:
        build_desired(load_specs([tmp_path], root=tmp_path), environ={})
    assert sorted(p.address for p in caught.value.problems) == ["KeyStore/ks-0", "KeyStore/ks-1"]


def test_pem_of_der_is_the_normalised_pem(tmp_path: Path) -> None:
    from bench.stacks import mint_pems
    from mtls_config.keystore import load_certificates

    pems = mint_pems(3) + [
        (EXAMPLE_STACK / "certs" / name).read_text()
        for name in ("acme-client.pem", "demo-root-ca.pem", "acme-server-ca.pem")
    ]
    for text in pems:
        cert = load_certificates(text.encode())[0]
        assert pem_of_der(cert.public_bytes(Encoding.DER)) == normalise_pem(cert.public_bytes(Encoding.PEM).decode())
