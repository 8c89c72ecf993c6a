"""drift on a stack whose plan has errors: the exit code says error, so the report must say which."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from tests.engine.conftest import rename_soap_message


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_drift_text_names_the_error_behind_exit_1(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0

    asyncio.run(rename_soap_message(stack_dir))
    code, out, err = run(["drift"], capsys)
    assert code == 1
    assert "No drift" not in out
    assert "SOAP message 'Globex Orders' does not exist on the instance" in out + err
    code, out, _ = run(["drift", "--format", "markdown"], capsys)
    assert code == 1
    assert "**Drift check failed**" in out and "does not exist on the instance" in out
    code, _, _ = run(["drift", "--format", "junit", "--out", "drift.xml"], capsys)
    assert code == 1
    suite = ET.parse(stack_dir / "drift.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1" and suite.get("tests") == "8"
    errored = [c for c in suite.findall("testcase") if c.find("error") is not None]
    assert [c.get("name") for c in errored] == ["MessageBinding/globex-orders"]
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "data" / "junit-report.xsd")).validate(
        str(stack_dir / "drift.xml")
    )
