"""Specs that share a keystore file: each run reads and lints a file once, yet every spec is still checked with
its own password, a file changed between runs is read afresh, and no password is kept as a cache key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from mtls_config.desired import build_desired
from mtls_config.keystore.speclint import _Seen, lint_specs
from mtls_config.resources.key_store import _leaf_info
from mtls_config.resources.kind import BuildContext
from mtls_config.secrets import SecretValue
from mtls_config.spec.inputs import RunInputs
from mtls_config.spec.loader import load_specs
from tests.keystore.conftest import NOW, STORE_PASSWORD, Pki, key_pem, pem, secret

KEYSTORE = """apiVersion: mtls-config/v1
kind: KeyStore
metadata: {{name: {name}}}
spec: {{format: {fmt}, file: {file}, password: {{fromEnv: {variable}}}}}
---
"""
ENV = {"RIGHT_PASSWORD": STORE_PASSWORD, "WRONG_PASSWORD": "not-the-store-password"}


def _stack(folder: Path, fmt: str, *docs: tuple[str, str, str]) -> Path:
    text = "".join(KEYSTORE.format(name=n, fmt=fmt, file=f, variable=v) for n, f, v in docs)
    (folder / "resources.yaml").write_text(text)
    return folder / "resources.yaml"


def _subjects(spec_file: Path) -> dict[str, object]:
    desired = build_desired(load_specs([spec_file], root=spec_file.parent), environ=ENV)
    return {r.name: r.info.get("subject") for r in desired.resources}


def _password_errors(spec_file: Path) -> dict[str, bool]:
    specs = load_specs([spec_file], root=spec_file.parent)
    findings = lint_specs(specs, environ=ENV, now=NOW)
    lines = {name: specs.origins[f"KeyStore/{name}"].at("spec", "file") for name in ("right", "wrong")}
    return {
        name: any(f.rule == "K02" and f.severity == "error" and f.source == where for f in findings)
        for name, where in lines.items()
    }


def test_pkcs12_shared_by_two_specs_is_read_with_each_ones_password(
    tmp_path: Path, assembled: Callable[..., bytes]
) -> None:
    (tmp_path / "shared.p12").write_bytes(assembled("ec", "pkcs12"))
    spec_file = _stack(
        tmp_path,
        "pkcs12",
        ("right", "shared.p12", "RIGHT_PASSWORD"),
        ("wrong", "shared.p12", "WRONG_PASSWORD"),
        ("right-again", "shared.p12", "RIGHT_PASSWORD"),
    )
    subjects = _subjects(spec_file)
    # A PKCS12 opens only with its password: the wrong one shows no certificate, whatever the right one read.
    assert subjects["right"] == subjects["right-again"] == "CN=assembled-ec.test.example,O=Keystore Tests"
    assert subjects["wrong"] is None
    assert _password_errors(spec_file) == {"right": False, "wrong": True}


def test_jks_shared_by_two_specs_is_linted_with_each_ones_password(
    tmp_path: Path, assembled: Callable[..., bytes]
) -> None:
    (tmp_path / "shared.jks").write_bytes(assembled("ec", "jks"))
    spec_file = _stack(
        tmp_path, "jks", ("right", "shared.jks", "RIGHT_PASSWORD"), ("wrong", "shared.jks", "WRONG_PASSWORD")
    )
    assert _password_errors(spec_file) == {"right": False, "wrong": True}
    # Reversed order: the first spec's result must not stand in for the second's either.
    spec_file = _stack(
        tmp_path, "jks", ("wrong", "shared.jks", "WRONG_PASSWORD"), ("right", "shared.jks", "RIGHT_PASSWORD")
    )
    assert _password_errors(spec_file) == {"right": False, "wrong": True}


def test_same_password_from_two_sources_is_named_by_each(tmp_path: Path, assembled: Callable[..., bytes]) -> None:
    (tmp_path / "shared.jks").write_bytes(assembled("ec", "jks"))
    spec_file = _stack(
        tmp_path, "jks", ("one", "shared.jks", "WRONG_PASSWORD"), ("two", "shared.jks", "ALSO_WRONG_PASSWORD")
    )
    specs = load_specs([spec_file], root=tmp_path)
    findings = lint_specs(specs, environ={**ENV, "ALSO_WRONG_PASSWORD": ENV["WRONG_PASSWORD"]}, now=NOW)
    messages = {f.source: f.message for f in findings if f.rule == "K02" and f.severity == "error"}
    assert "env:WRONG_PASSWORD" in messages[specs.origins["KeyStore/one"].at("spec", "file")]
    assert "env:ALSO_WRONG_PASSWORD" in messages[specs.origins["KeyStore/two"].at("spec", "file")]


def test_a_file_changed_between_runs_is_read_again(tmp_path: Path, pki: Pki) -> None:
    from mtls_config.keystore import assemble_keystore

    def write(cn: str) -> None:
        key = pki.key("ec")
        keystore = assemble_keystore(key_pem(key), pem(pki.leaf(key, cn=cn)), [pem(pki.ica, pki.root)], secret())
        (tmp_path / "client.jks").write_bytes(keystore)

    spec_file = _stack(
        tmp_path, "jks", ("right", "client.jks", "RIGHT_PASSWORD"), ("more", "client.jks", "RIGHT_PASSWORD")
    )
    write("before.test.example")
    assert set(_subjects(spec_file).values()) == {"CN=before.test.example,O=Keystore Tests"}
    write("after.test.example")
    assert set(_subjects(spec_file).values()) == {"CN=after.test.example,O=Keystore Tests"}


CANARY = "canary-shared-Keystore-Pa55-41d7"


def test_caches_hold_no_password(assembled: Callable[..., bytes]) -> None:
    password = SecretValue(CANARY.encode(), "env:CANARY")
    environ = {"STORE_PASSWORD": CANARY}
    run = BuildContext(RunInputs(environ))
    _leaf_info(assembled("ec", "pkcs12"), password, "pkcs12", run)
    seen = _Seen(RunInputs(environ))
    assert CANARY not in repr(run) + repr(seen)
    seen.findings[seen.key(hashlib.sha256(assembled("ec", "jks")).digest(), password, "jks", 30)] = []
    for cache in (run, seen):
        text = repr(cache) + repr({k: v for k, v in vars(cache).items() if k != "environ"})
        assert CANARY not in text and CANARY.encode().hex() not in text
        for key in run.memo if cache is run else seen.findings:
            assert not any(isinstance(part, SecretValue) for part in key)
            assert CANARY.encode() not in repr(key).encode()


@pytest.mark.parametrize("fmt", ["jks", "pkcs12"])
def test_one_run_reads_a_shared_file_once(fmt: str, assembled: Callable[..., bytes]) -> None:
    run = BuildContext()
    data = assembled("ec", fmt)
    first = _leaf_info(data, secret(), fmt, run)  # type: ignore[arg-type]
    assert _leaf_info(data, secret(), fmt, run) == first  # type: ignore[arg-type]
    assert len(run.memo) == 1


def test_a_password_file_changed_between_lint_runs_is_read_again(
    tmp_path: Path, assembled: Callable[..., bytes]
) -> None:
    (tmp_path / "shared.jks").write_bytes(assembled("ec", "jks"))
    docs = [KEYSTORE.format(name=n, fmt="jks", file="shared.jks", variable="X") for n in ("right", "wrong")]
    (tmp_path / "resources.yaml").write_text("".join(docs).replace("{fromEnv: X}", "{fromFile: pw.txt}"))
    specs = load_specs([tmp_path / "resources.yaml"], root=tmp_path)

    def password_errors() -> int:
        findings = lint_specs(specs, environ={}, now=NOW)
        return sum(1 for f in findings if f.rule == "K02" and f.severity == "error")

    (tmp_path / "pw.txt").write_text(STORE_PASSWORD)
    assert password_errors() == 0
    (tmp_path / "pw.txt").write_text("changed-since")
    assert password_errors() == 2  # each spec names the file, each is told
    (tmp_path / "pw.txt").unlink()
    findings = lint_specs(specs, environ={}, now=NOW)
    assert sum(1 for f in findings if f.rule == "K02" and f.severity == "info" and "pw.txt" in f.message) == 2
