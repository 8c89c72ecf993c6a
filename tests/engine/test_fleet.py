"""Fleet mode: --env with a glob plans/drifts every matching environment concurrently, one combined report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer


@pytest.fixture
def two_instances() -> Iterator[tuple[str, str]]:
    with ThreadedServer(create_app(EmulatorConfig())) as a, ThreadedServer(create_app(EmulatorConfig())) as b:
        yield a.url, b.url


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_env_glob_covers_every_matching_environment(
    stack_dir: Path, two_instances: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url_a, url_b = two_instances
    (stack_dir / "mtls-config.yaml").write_text(
        "stack: two-partners-demo\nspecs: [resources]\nenvironments:\n"
        f"  prod-a: {{instance: '{url_a}'}}\n  prod-b: {{instance: '{url_b}'}}\n  dev: {{instance: local}}\n"
    )
    monkeypatch.setenv("SN_USERNAME", "admin")
    monkeypatch.setenv("SN_PASSWORD", "admin")
    assert run(["apply", "--env", "prod-a", "--auto-approve"], capsys)[0] == 0

    code, out, _ = run(["plan", "--env", "prod-*", "--format", "json"], capsys)
    assert code == 2  # the worst of: prod-a no changes, prod-b 8 creates
    report = json.loads(out)
    assert sorted(report["environments"]) == ["prod-a", "prod-b"]
    assert report["environments"]["prod-a"]["summary"]["no-op"] == 8
    assert report["environments"]["prod-b"]["summary"]["create"] == 8
    assert report["environments"]["prod-a"]["instance"] == url_a

    code, out, _ = run(["plan", "--env", "prod-*"], capsys)
    assert "== environment prod-a ==" in out and "== environment prod-b ==" in out
    assert "Fleet: 2 environments, 1 with changes, 0 with errors." in out

    code, _, _ = run(["drift", "--env", "prod-*", "--format", "junit", "--out", "fleet.xml"], capsys)
    assert code == 2
    xml = (stack_dir / "fleet.xml").read_text()
    assert xml.count("<testsuite ") == 2 and url_a in xml and url_b in xml

    code, _, err = run(["plan", "--env", "staging-*"], capsys)
    assert code == 1 and "no environment matches 'staging-*'" in err
    code, _, err = run(["apply", "--env", "prod-*", "--auto-approve"], capsys)
    assert code == 1 and "one environment" in err
