"""``mtls-config doctor`` through the CLI against an emulator served on 127.0.0.1: each check's verdict, what it
found and how to fix it, for a healthy account and for the ways an account or instance falls short."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.emulator.server import ThreadedServer
from tests.engine.conftest import ADMIN, as_user, serve

CHECKS = [
    "specs", "reachability", "tls", "credentials", "user", "roles",
    "read sys_certificate", "read sys_protocol_profile", "read sys_rest_message", "read sys_rest_message_fn",
    "read sys_soap_message", "read sys_soap_message_function", "read sys_user_group",
    "columns", "batch api", "attachment api", "update set", "build",
]  # fmt: skip


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], dict[str, dict[str, str]]]:
    code = main(["doctor", "--format", "json", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and err == "", err
    report = json.loads(out)
    return code, report, {c["name"]: c for c in report["checks"]}


def test_a_healthy_account_passes_every_check(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, checks = doctor(capsys, "--instance", served.url)
    assert code == 0 and report["ok"] is True and report["instance"] == served.url
    assert list(checks) == CHECKS
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert checks["specs"]["found"] == "8 resources in the specs of stack 'two-partners-demo'"
    assert checks["user"]["found"] == "admin (admin)"
    assert checks["columns"]["found"].startswith("all 20 columns mtls-config writes are present")
    assert "update set 'Default'" in checks["update set"]["found"] and "never promote" in checks["update set"]["fix"]
    assert "glide.buildtag=glide-mtls-config-emulator" in checks["build"]["found"]
    # the text form: one line per check, then the verdict
    assert main(["doctor", "--instance", served.url]) == 0
    out = capsys.readouterr().out
    assert "ok   batch api" in out and "All checks passed (0 warnings)." in out


def test_a_user_with_only_itil_fails_naming_the_missing_role(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, "itil")
    code, report, checks = doctor(capsys, "--instance", served.url)
    assert code == 1 and report["ok"] is False
    assert checks["credentials"]["status"] == "ok"
    roles = checks["roles"]
    assert roles["status"] == "fail" and "instance user 'itil' lacks the roles this needs: admin, for" in roles["found"]
    assert "It holds: itil" in roles["found"] and roles["fix"].startswith("grant them to the user")
    assert checks["read sys_certificate"] == {
        "name": "read sys_certificate",
        "status": "fail",
        "found": "filtered: without admin the instance answers this user's reads with no rows",
        "fix": "grant admin (see the roles check)",
    }
    assert checks["read sys_soap_message"]["found"].startswith("filtered: without web_service_admin or admin")
    assert checks["columns"]["status"] == "warn"  # the dictionary is admin's to read
    assert "to create" not in json.dumps(report)


def test_a_column_the_instance_lacks(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, "admin")
    with serve(absent_columns=("sys_soap_message.enable_mutual_auth",)) as server:
        code, _, checks = doctor(capsys, "--instance", server.url)
    assert code == 1
    assert checks["columns"]["status"] == "fail"
    assert checks["columns"]["found"].startswith("the instance has no column sys_soap_message.enable_mutual_auth")


def test_a_current_update_set_other_than_default_is_a_warning(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with httpx.Client(base_url=served.url, auth=ADMIN) as c:
        me = c.get("/api/now/table/sys_user", params={"sysparm_query": "user_name=admin"}).json()["result"][0]
        sprint = c.post("/api/now/table/sys_update_set", json={"name": "Sprint 12"}).json()["result"]
        r = c.post(
            "/api/now/table/sys_user_preference",
            json={"user": me["sys_id"], "name": "sys_update_set", "value": sprint["sys_id"]},
        )
        assert r.status_code == 201, r.text
    code, _, checks = doctor(capsys, "--instance", served.url)
    assert code == 0  # a warning passes
    found = checks["update set"]
    assert found["status"] == "warn"
    assert "captured in update set 'Sprint 12' (in progress): someone may promote it" in found["found"]
    assert found["fix"].startswith("set the user's current update set to Default")


def test_without_message_bindings_nothing_is_captured(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for spec in (stack_dir / "resources").glob("*.yaml"):
        docs = spec.read_text().split("\n---\n")
        spec.write_text("\n---\n".join(d for d in docs if "kind: MessageBinding" not in d))
    code, _, checks = doctor(capsys, "--instance", served.url)
    assert code == 0
    assert "read sys_rest_message" not in checks
    assert checks["update set"]["found"].startswith("nothing mtls-config writes for the specs of stack")


def test_without_a_project_every_table_is_checked(
    tmp_path: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, checks = doctor(capsys, "--instance", served.url)
    assert code == 0
    assert checks["specs"]["found"] == "no project file here: checking every table mtls-config uses"
    assert "read sys_soap_message_function" in checks and "read sys_certificate" in checks


def test_bad_credentials_stop_after_the_first_request(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, "admin", "wrong-canary-Passw0rd")
    code, report, checks = doctor(capsys, "--instance", served.url)
    assert code == 1 and "wrong-canary-Passw0rd" not in json.dumps(report)
    assert (checks["reachability"]["status"], checks["credentials"]["status"]) == ("ok", "fail")
    assert checks["roles"]["status"] == "skip" and checks["build"]["status"] == "skip"


def test_an_instance_that_does_not_answer(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(monkeypatch, "admin")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    code, _, checks = doctor(capsys, "--instance", f"http://127.0.0.1:{port}")
    assert code == 1
    assert checks["reachability"]["status"] == "fail" and "cannot reach" in checks["reachability"]["found"]
    assert checks["credentials"]["status"] == "skip"


def test_missing_credentials_are_a_failed_check_not_a_crash(
    stack_dir: Path, served: ThreadedServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SN_USERNAME")
    code, _, checks = doctor(capsys, "--instance", served.url)
    assert code == 1
    assert checks["settings"]["status"] == "fail" and "SN_USERNAME is not set" in checks["settings"]["found"]
    assert checks["reachability"]["status"] == "skip"


def test_the_local_instance(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, checks = doctor(capsys)
    assert code == 0
    assert checks["tls"]["found"] == "the embedded local instance: no network"
