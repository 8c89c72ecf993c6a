"""Drift reports (text, JSON, JUnit), expiry warnings and the delete safety net, through the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from tests.engine.conftest import short_lived_cert


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_expiry_is_a_warning_unless_fail_on_expiry(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stack_dir / "certs" / "expiring.pem").write_text(short_lived_cert(10))
    (stack_dir / "resources" / "expiring.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: Expiring partner}\n"
        "spec: {file: ../certs/expiring.pem, warnDays: 30}\n"
    )
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    code, out, _ = run(["drift"], capsys)
    assert code == 0
    assert "TrustStoreCert/Expiring partner: certificate expires in 9 days" in out or "expires in 10 days" in out
    code, out, _ = run(["drift", "--fail-on-expiry", "--format", "json"], capsys)
    assert code == 2
    report = json.loads(out)
    assert report["drift"] is True
    assert any("expires in" in f["message"] for f in report["findings"])


def test_junit_report_one_case_per_resource_and_failures_for_drift(
    stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("port: 443", "port: 8443"))
    code, _, _ = run(["drift", "--format", "junit", "--out", "drift.xml"], capsys)
    assert code == 2
    root = ET.parse(stack_dir / "drift.xml").getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 8 and suite.get("tests") == "8" and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["ProtocolProfile/acmemtls"]
    failure = failed[0].find("failure")
    assert failure is not None and "default_port: instance 443, spec 8443" in (failure.text or "")
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "data" / "junit-report.xsd"))
    schema.validate(str(stack_dir / "drift.xml"))  # raises with the first violation
    broken = (stack_dir / "drift.xml").read_text().replace('time="0"', "", 1)
    assert not schema.is_valid(broken)  # the schema does check what it claims to


def test_deleting_all_owned_records_needs_an_explicit_flag(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    # an empty spec tree is refused by validation: keep one unrelated resource, drop the rest
    (stack_dir / "resources" / "only.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: Other CA}\n"
        "spec: {file: ../certs/demo-root-ca.pem}\n"
    )
    for f in (stack_dir / "resources").glob("*.yaml"):
        if f.name != "only.yaml":
            f.unlink()
    code, _, err = run(["apply", "--prune", "--auto-approve"], capsys)
    assert code == 1 and "deletes all 8 records" in err and "--allow-delete-all" in err
    code, out, err = run(["apply", "--prune", "--auto-approve", "--allow-delete-all"], capsys)
    assert code == 0, out + err
    assert "8 applied" not in out and "9 applied" in out  # 8 deletions + 1 create


def test_markdown_reports_are_tables(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "--format", "markdown"], capsys)
    assert code == 2
    lines = out.splitlines()
    assert lines[0] == "### mtls-config plan: `two-partners-demo` on `local`"
    header = lines.index("| | resource | action | changes |")
    assert lines[header + 1] == "|---|---|---|---|"
    rows = [line for line in lines[header + 2 :] if line.startswith("| `")]
    assert len(rows) == 8 and all(row.count(" | ") == 3 for row in rows)  # pipes in values are escaped
    assert "spec (sensitive: not shown)" in out and "demo-keystore-password" not in out
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    code, out, _ = run(["drift", "--format", "markdown"], capsys)
    assert code == 0 and "**No drift**: 8 of 8 resources in sync." in out


def test_lint_errors_in_the_specs_block_apply(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (stack_dir / "certs" / "expired.pem").write_text(short_lived_cert(-3))
    (stack_dir / "resources" / "expired.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: Expired partner}\n"
        "spec: {file: ../certs/expired.pem}\n"
    )
    code, out, _ = run(["plan", "--json"], capsys)
    assert code == 1
    errors = [f for f in json.loads(out)["findings"] if f["severity"] == "error"]
    assert [f["address"] for f in errors] == ["TrustStoreCert/Expired partner"]
    assert errors[0]["message"].startswith("T02")
    code, out, err = run(["apply", "--auto-approve"], capsys)
    assert code == 1 and "nothing was applied" in err and "T02" in err


def test_verbose_reports_request_costs_on_stderr(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["plan", "--verbose"], capsys)
    assert code == 2
    line = next(x for x in err.splitlines() if x.startswith("local: "))
    assert "requests (" in line and "table.list" in line and "KB received" in line
    assert "local: " not in out  # stdout stays the plan alone
    code, _, err = run(["drift", "-v", "--format", "json"], capsys)
    assert "table.list" in err
