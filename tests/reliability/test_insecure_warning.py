"""``--insecure`` lets instance credentials and keystore passwords travel over plain http: every run that connects
with it says so on stderr (plan, apply, drift, import, lock status|release, verify's instance part), and a run
without it does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.cli.target import insecure_warning
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.settings import InstanceSettings
from tests.reliability.harness import example_repo

COMMANDS = {
    "plan": ["plan"],
    "apply": ["apply", "--auto-approve"],
    "drift": ["drift"],
    "import": ["import", "--out", "imported"],
    "lock status": ["lock", "status"],
    "lock release": ["lock", "release"],
    "verify": ["verify", "acme-payments-api", "--timeout", "2"],
}


@pytest.fixture(scope="module")
def served() -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(EmulatorConfig())) as server:
        yield server


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_run_with_insecure_warns_on_stderr(
    name: str,
    served: ThreadedServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example_repo(tmp_path, monkeypatch)
    for flag, expect_warning in (([], False), (["--insecure"], True)):
        main([*COMMANDS[name], "--instance", served.url, *flag])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        assert ("warning: --insecure:" in err) is expect_warning, (name, flag, err)
        assert "warning: --insecure" not in out  # stderr only: reports on stdout stay clean


def test_the_warning_says_what_travels_unencrypted_and_where() -> None:
    remote = InstanceSettings(url="http://test-instance.example:8080", auth=None, insecure=True)
    said = insecure_warning(remote)
    assert "credentials and keystore passwords go to http://test-instance.example:8080" in said
    assert "unencrypted" in said
    local = InstanceSettings(url="http://127.0.0.1:8080", auth=None, insecure=True)
    assert "unencrypted" in insecure_warning(local)
