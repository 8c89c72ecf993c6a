"""${name} substitution: one spec tree, several instances, per-environment values; undefined names are errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtls_config.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_variables_per_environment(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stack_dir / "mtls-config.yaml").write_text(
        "stack: two-partners-demo\nspecs: [resources]\n"
        "variables: {acme_port: '443', note: shared}\n"
        "environments:\n"
        "  dev: {instance: local, variables: {acme_port: '8443'}}\n"
        "  prod: {instance: local}\n"
    )
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(
        spec.read_text()
        .replace("port: 443", "port: ${acme_port}")
        .replace("description: Client keystore presented to Acme Payments", "description: ${note} $${not a var}")
    )
    code, out, _ = run(["plan", "--env", "dev", "--json"], capsys)
    assert code == 2
    changes = {c["address"]: c for c in json.loads(out)["resource_changes"]}
    assert changes["ProtocolProfile/acmemtls"]["after"]["default_port"] == 8443
    assert changes["KeyStore/Acme Payments client"]["after"]["short_description"] == "shared ${not a var}"
    code, out, _ = run(["plan", "--env", "prod", "--json"], capsys)
    changes = {c["address"]: c for c in json.loads(out)["resource_changes"]}
    assert changes["ProtocolProfile/acmemtls"]["after"]["default_port"] == 443
    assert run(["validate", "--env", "dev"], capsys)[0] == 0


def test_undefined_variable_names_file_line_and_field(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("port: 443", "port: ${missing_port}"))
    code, _, err = run(["plan"], capsys)
    assert code == 1
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "missing_port" in text)
    assert f"resources/acme-payments.yaml:{line}:" in err
    assert "ProtocolProfile/acmemtls" not in err or "spec.port" in err
    assert "undefined variable 'missing_port'" in err
