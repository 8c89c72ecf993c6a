"""A failed run still writes its report: ``drift --format junit|json|markdown|text|openmetrics --out FILE`` against an
unreachable instance, one that never answers (cut by ``--timeout``), a spec error, an unknown environment, or a
fleet where one environment fails. The file exists, is owner-only (0600, created so), says what failed, and the
JUnit validates against ``tests/data/junit-report.xsd`` with the error as a failing test case, so a CI JUnit
publisher shows the failure instead of nothing. The OpenMetrics file parses with the Prometheus parser and says
``mtls_config_drift_last_run_success 0``; it is readable as a new file is (node-exporter reads it as another user).

One data file per case in ``cases/reports/``. Plans and reports written over an existing, readable file end up
0600 too (the new file replaces it; it is never widened nor chmod-ed).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import xmlschema
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from mtls_config.cli.main import main
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from tests.reliability.harness import count, example_repo
from tests.reliability.slow_servers import slow_server

CASES = sorted((Path(__file__).parent / "cases" / "reports").glob("*.json"))
SCHEMA = xmlschema.XMLSchema(str(Path(__file__).resolve().parents[1] / "data" / "junit-report.xsd"))
SUFFIX = {"junit": "xml", "json": "json", "markdown": "md", "text": "txt", "openmetrics": "prom"}


@contextmanager
def _closed_port() -> Iterator[str]:
    """A loopback URL nothing listens on: connections are refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return example_repo(tmp_path, monkeypatch)


def _arguments(failure: str, repo: Path, stack: ExitStack) -> list[str]:
    if failure == "unreachable":
        return ["--instance", stack.enter_context(_closed_port()), "--timeout", "4"]
    if failure == "silent":
        return ["--instance", stack.enter_context(slow_server("silent"))[1], "--timeout", "2"]
    if failure == "spec-error":
        spec = repo / "resources" / "globex-orders.yaml"
        spec.write_text(
            spec.read_text().replace("  description: Globex's", "  unknownField: 1\n  description: Globex's")
        )
        return []
    if failure == "unknown-env":
        return ["--env", "nope"]
    if failure == "fleet":
        served = stack.enter_context(ThreadedServer(create_app(EmulatorConfig())))
        dead = stack.enter_context(_closed_port())
        (repo / "mtls-config.yaml").write_text(
            "stack: two-partners-demo\nspecs: [resources]\nenvironments:\n"
            f"  good: {{instance: '{served.url}'}}\n  gone: {{instance: '{dead}'}}\n"
        )
        return ["--env", "*", "--timeout", "4"]
    raise AssertionError(failure)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_failed_run_writes_its_report(path: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    fmt = case["format"]
    out_file = repo / f"drift.{SUFFIX[fmt]}"
    with ExitStack() as stack:
        extra = _arguments(case["failure"], repo, stack)
        code = main(["drift", "--format", fmt, "--out", str(out_file), *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == case["exit"], (code, out, err)
    assert out_file.is_file(), f"no report written; stderr: {err}"
    umask = os.umask(0o077)
    os.umask(umask)
    assert stat.S_IMODE(out_file.stat().st_mode) == (0o666 & ~umask if fmt == "openmetrics" else 0o600)
    text = out_file.read_text(encoding="utf-8")
    for line in case["contains"]:
        assert line in text, f"missing from the report:\n{line}\n--- it was:\n{text}"
    if fmt == "junit":
        SCHEMA.validate(str(out_file))
        failing = [
            case_
            for case_ in ET.fromstring(text).iter("testcase")
            if case_.find("error") is not None or case_.find("failure") is not None
        ]
        assert failing, "the error is not a failing test case"
    elif fmt == "json":
        data = json.loads(text)
        reports = data.get("environments", [data])
        assert any(r.get("error") for r in reports), data
        assert all(r["format_version"] == "1" and "resources" in r for r in reports)
    elif fmt == "openmetrics":
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert 0 in [s.value for s in families["mtls_config_drift_last_run_success"].samples], text
    count("failed_run_reports")


def test_files_written_over_readable_ones_end_up_owner_only(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A plan saved, and a report written, where a world-readable file was: the result is 0600."""
    with ThreadedServer(create_app(EmulatorConfig())) as served:
        for name, argv in (
            ("plan.json", ["plan", "--out", "plan.json"]),
            ("drift.xml", ["drift", "--format", "junit", "--out", "drift.xml"]),
        ):
            target = repo / name
            target.write_text("old\n")
            target.chmod(0o644)
            code = main([*argv, "--instance", served.url])
            capsys.readouterr()
            assert code in (0, 2), (name, code)
            assert stat.S_IMODE(target.stat().st_mode) == 0o600, name
            assert target.read_text() != "old\n"
