"""Names the spec schema accepts but an encoded query's IN list cannot hold: a comma separates IN values."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_certificate_name_with_a_comma_applies_and_plans_noop(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("name: Acme Payments server CA", "name: Acme Payments, server CA"))
    code, out, err = run(["apply", "--auto-approve"], capsys)
    assert code == 0, out + err
    code, out, err = run(["plan"], capsys)
    assert code == 0, out + err
    assert "No changes" in out


def test_a_name_with_a_caret_is_an_error_not_a_traceback(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("name: Acme Payments server CA", "name: Acme Payments ^ server CA"))
    code, _, err = run(["plan"], capsys)
    assert code == 1
    # refused by the spec check, at the line that holds it, before anything talks to the instance
    line = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "Acme Payments ^ server CA" in t)
    assert f"acme-payments.yaml:{line}:" in err and "'^' cannot be used here" in err
