"""Plans and drift reports say which value is the instance's and which the spec's, on the line of each field, in
every format: text, Markdown, JUnit and JSON (``instance``/``spec`` beside ``before``/``after``).

The issue's case: someone switches mutual authentication off by hand. ``false -> true`` read as "someone switched
it on"; the line now says ``instance false, spec true`` (drift) and ``instance false -> spec true`` (plan)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from mtls_config.cli.main import main
from tests.engine.conftest import open_local

FIELD = "message.use_mutual_auth"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


async def _switch_off_by_hand(stack_dir: Path) -> None:
    async with open_local(stack_dir) as c:
        message = (await c.list("sys_rest_message", query="name=Acme Payments API", fields=["sys_id"]))[0]
        await c.update("sys_rest_message", message["sys_id"], {"use_mutual_auth": "false"})


@pytest.fixture
def switched_off(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    asyncio.run(_switch_off_by_hand(stack_dir))
    return stack_dir


def test_drift_text_names_the_sides(switched_off: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["drift"], capsys)
    assert code == 2
    assert f"      ~ {FIELD}: instance false, spec true\n" in out
    assert "false -> true" not in out


def test_plan_text_names_the_sides(switched_off: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan"], capsys)
    assert code == 2
    assert f"      ~ {FIELD}: instance false -> spec true\n" in out


def test_the_concepts_page_shows_what_drift_prints(switched_off: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["drift"], capsys)
    docs = (Path(__file__).resolve().parents[2] / "docs" / "concepts.md").read_text()
    shown = docs.split("drift says\n\n```text\n", 1)[1].split("```", 1)[0]
    assert code == 2 and shown.splitlines() and set(shown.splitlines()) <= set(out.splitlines()), out


def test_drift_markdown_and_junit_name_the_sides(switched_off: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["drift", "--format", "markdown"], capsys)
    assert code == 2
    assert f"`{FIELD}`: instance `false`, spec `true`" in out
    code, out, _ = run(["drift", "--format", "junit"], capsys)
    failures = [f for f in ET.fromstring(out).iter("failure")]
    assert [f.text for f in failures] == [f"{FIELD}: instance false, spec true"]


def test_plan_markdown_names_the_sides(switched_off: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "--format", "markdown"], capsys)
    assert code == 2
    assert f"`{FIELD}`: instance `false` → spec `true`" in out


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_json_keeps_before_after_and_adds_the_sides(
    command: str, switched_off: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([command, "--format", "json"], capsys)
    assert code == 2
    data = json.loads(out)
    if command == "plan":
        fields = [f for c in data["resource_changes"] for f in c["changed_fields"]]
    else:
        fields = [f for r in data["resources"] for f in r["fields"]]
    assert fields == [
        {"field": FIELD, "before": False, "after": True, "instance": False, "spec": True, "sensitive": False}
    ]


def test_create_delete_and_sensitive_lines(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan"], capsys)
    assert code == 2
    # A create has only the spec's side; a password shows no value on either.
    assert "      + default_port: spec 443\n" in out
    assert "      + key_store_password: spec (sensitive: not shown)\n" in out
    assert run(["apply", "--auto-approve"], capsys)[0] == 0

    async def guess_password() -> None:
        async with open_local(stack_dir) as c:
            record = (await c.list("sys_certificate", query="name=Acme Payments client", fields=["sys_id"]))[0]
            await c.update(
                "sys_certificate", record["sys_id"], {"key_store_password": "guessed"}, input_display_value=True
            )

    asyncio.run(guess_password())
    code, out, _ = run(["drift"], capsys)
    assert "      ~ key_store_password: instance and spec differ (sensitive: not shown)\n" in out
    assert "guessed" not in out

    spec = stack_dir / "resources" / "globex-orders.yaml"
    spec.unlink()
    code, out, _ = run(["plan", "--prune"], capsys)
    assert code == 2
    # A delete has only the instance's side.
    assert "      - default_port: instance 443\n" in out
