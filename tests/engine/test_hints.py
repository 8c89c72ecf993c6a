"""Every hint the issue found misleading, made true: each case runs the CLI as a new user would, reads what it
says, and where it says what to do next, does that and checks it works.

- a bare instance name in any case; an instance URL with a path (the hint names the base URL, which works)
- ``--target`` with a near miss gets "did you mean"; ``validate --verbose`` lists the addresses, as the hint says
- ``import`` that finds nothing says so and writes nothing; one that imports gives the next command with the same
  ``--instance``, which plans no changes
- ``validate`` of a spec whose password is not resolvable names how to resolve it (not a flag it lacks)
- ``keystore assemble`` without the intermediate names the missing issuing CA, and assembles once it is given
- an empty folder: an error without an invented position, pointing at the quickstart and ``import``
- ``apply plan.json`` with nothing to do says so
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.emulator.server import ThreadedServer
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings, settings_from_env
from tests.engine.conftest import ADMIN, EXAMPLE, hand_made_keystore

REPO = EXAMPLE.parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def url(served: ThreadedServer) -> str:
    """The address of an emulated instance on a real socket (loopback); the CLI signed in as its admin."""
    return served.url


# --- the instance URL ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["acmeXYZnope", "ACMEXYZNOPE", "acmexyznope"])
def test_a_bare_instance_name_in_any_case(given: str) -> None:
    environ = {"SN_USERNAME": "u", "SN_PASSWORD": "p"}
    assert settings_from_env(given, env=environ).url == "https://acmexyznope.service-now.com"
    assert settings_from_env("LOCAL", env={}).is_local


def test_a_bare_instance_name_in_capitals_is_taken(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No request is sent (the credentials are missing): the URL was accepted, the next thing to fix is named.
    monkeypatch.delenv("SN_USERNAME", raising=False)
    code, _, err = run(["plan", "--instance", "acmeXYZnope"], capsys)
    assert code == 1 and "not an http(s) URL" not in err
    assert err.startswith("error: environment variable SN_USERNAME is not set")


def test_what_is_not_an_instance_name_gets_an_example(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", "--instance", "acme corp"], capsys)
    assert code == 1
    assert "instance URL 'acme corp' is not an http(s) URL" in err
    assert "a bare instance name (acme for https://acme.service-now.com" in err


@pytest.mark.parametrize("path", ["/api/now", "/api/now/table/sys_certificate", "/now/nav/ui/classic/params"])
def test_an_instance_url_with_a_path_names_the_base_url_which_works(
    path: str, stack_dir: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["plan", "--instance", url + path], capsys)
    assert code == 1
    assert f"error: instance URL '{url}{path}' has a path ('{path}'); mtls-config needs the instance's base" in err
    assert "Requested URI does not represent any resource" not in err
    hint = err.split("hint: give ", 1)[1].split(" ", 1)[0]
    assert hint == url
    code, out, _ = run(["plan", "--instance", hint], capsys)
    assert code == 2 and "8 to create" in out


# --- --target -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("Keystore/Acme", "KeyStore/Acme Payments client"),
        ("KeyStore/acme payments client", "KeyStore/Acme Payments client"),
        ("ProtocolProfile/acme", "ProtocolProfile/acmemtls"),
        ("MessageBinding/globex-order", "MessageBinding/globex-orders"),
    ],
)
def test_target_gets_did_you_mean(given: str, meant: str, stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", "--target", given], capsys)
    assert code == 1
    assert f"error: unknown address '{given}' (did you mean '{meant}'?)" in err
    code, out, _ = run(["plan", "--target", meant], capsys)
    assert code == 2
    # The hint says validate --verbose lists the addresses: it does.
    assert "'mtls-config validate --verbose' lists them all" in err
    code, out, _ = run(["validate", "--verbose"], capsys)
    assert code == 0 and f"  {meant}  (resources/" in out


# --- import ----------------------------------------------------------------------------------------------------------


async def _hand_made_keystore(url: str, name: str = "Legacy client") -> None:
    settings = InstanceSettings(url=url, auth=BasicAuth(ADMIN[0], SecretValue(ADMIN[1].encode(), "test")))
    async with InstanceClient(settings) as client:
        await hand_made_keystore(client, name)


@pytest.fixture
def empty_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "adopted"
    project.mkdir()
    (project / ".git").mkdir()
    monkeypatch.chdir(project)
    return project


def test_import_that_finds_nothing_says_so_and_writes_nothing(
    empty_project: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["import", "--instance", url, "--out", "imported"], capsys)
    assert code == 0
    assert f"Nothing to import: {url} holds no keystores" in out
    assert "Nothing was written." in out and "Wrote" not in out
    assert not (empty_project / "imported").exists()
    code, out, _ = run(["import", "--instance", url, "--filter", "acme*"], capsys)
    assert "mutual-auth message bindings matching --filter acme* that the stack does not own already" in out


def test_import_says_the_next_command_for_the_same_instance_and_it_plans_no_changes(
    empty_project: Path, url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_hand_made_keystore(url))
    code, out, _ = run(["import", "--instance", url, "--out", "imported"], capsys)
    assert code == 0
    last = out.splitlines()[-1]
    assert last.startswith("Wrote the specs to imported/ (2 files). Set MTLS_KEYSTORE_PASSWORD_LEGACY_CLIENT (the ")
    command = last.split("then run '", 1)[1].split("'", 1)[0]
    assert command == f"mtls-config plan imported --instance {url}"
    # Following it, with the variable set, plans the instance the records came from: no changes.
    monkeypatch.setenv("MTLS_KEYSTORE_PASSWORD_LEGACY_CLIENT", "demo-keystore-password")
    code, out, _ = run(shlex.split(command)[1:], capsys)
    assert code == 0 and "No changes." in out and url in out
    # -v lists what was written: each file is there.
    code, out, _ = run(["import", "--instance", url, "--out", "again", "-v"], capsys)
    assert code == 0 and "Nothing to import" in out  # the first import owns the records now
    asyncio.run(_hand_made_keystore(url, "Second client"))
    code, out, _ = run(["import", "--instance", url, "--out", "again", "-v"], capsys)
    wrote = [line.removeprefix("  wrote ") for line in out.splitlines() if line.startswith("  wrote ")]
    assert len(wrote) == 2 and all((empty_project / path).is_file() for path in wrote), out
    assert "(2 files)" in out.splitlines()[-1]


# --- validate's lint of a password it cannot resolve ---------------------------------------------------------------


def test_validate_does_not_suggest_an_option_it_lacks(
    stack_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = stack_dir / "resources" / "globex-orders.yaml"
    spec.write_text(
        spec.read_text().replace(
            "password: {fromFile: ../demo-secrets/keystore-password.txt}", "password: {fromEnv: GLOBEX_PW}"
        )
    )
    monkeypatch.delenv("GLOBEX_PW", raising=False)
    code, out, _ = run(["validate"], capsys)
    assert code == 0
    assert "--password-env" not in out
    assert "store password not resolved (environment variable GLOBEX_PW is not set); not checked without the " in out
    assert "fix: export GLOBEX_PW before running" in out
    assert out.count(": info K02: ") == 1  # said once, at the reference


# --- keystore assemble without the intermediate --------------------------------------------------------------------


def test_assemble_without_the_intermediate_names_the_missing_issuing_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLE)
    out = tmp_path / "client.jks"
    argv = ["keystore", "assemble", "--key", "demo-secrets/acme-client-key.pem", "--cert", "certs/acme-client.pem",
            "--out", str(out), "--password-file", "demo-secrets/keystore-password.txt", "--chain", "certs/demo-root-ca.pem"]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 1 and not out.exists()
    assert "its issuing CA (CN=Demo Issuing CA) is missing" in err
    assert "CN=Demo Root CA was given but cannot link without it" in err
    assert "not in the chain" not in err
    assert "hint: add the certificate of CN=Demo Issuing CA to the chain (--chain FILE" in err
    code, said, err = run([*argv, "--chain", "certs/demo-issuing-ca.pem"], capsys)
    assert code == 0, err
    assert out.exists() and "chain of 3" in said


# --- an empty folder ---------------------------------------------------------------------------------------------------


def test_an_empty_folder_points_at_the_quickstart_and_import(
    empty_project: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["validate"], ["plan"], ["drift"]):
        code, out, err = run(command, capsys)
        assert code == 1, command
        assert err.splitlines()[:2] == [
            "error: no spec files (*.yaml, *.yml) in the current folder",
            "  hint: start from the example stack (docs/quickstart.md: cp -r specs/examples/two-partners my-mtls), "
            "or write specs for an existing set-up with 'mtls-config import --instance URL --out specs'",
        ], command
        assert ":1:1:" not in err
    assert (REPO / "docs" / "quickstart.md").is_file() and (REPO / "specs" / "examples" / "two-partners").is_dir()
    code, out, _ = run(["import", "--instance", url, "--out", "specs"], capsys)  # the hint's command runs
    assert code == 0 and "Nothing to import" in out
    code, _, err = run(["validate", "nothing-here/"], capsys)
    assert "nothing-here:1:1: no such file or directory" in err  # a path given that is not there: its own message


# --- apply plan.json with nothing to do ----------------------------------------------------------------------------


def test_apply_of_a_saved_plan_with_nothing_to_do_says_so(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--out", "first.json"], capsys)[0] == 2
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    code, out, _ = run(["apply", "first.json"], capsys)  # its changes were made meanwhile
    assert code == 0
    assert out == "No changes left to apply: the instance matches the specs (8 resources); nothing was written.\n"
    assert run(["plan", "--out", "noop.json"], capsys)[0] == 0
    code, out, _ = run(["apply", "noop.json"], capsys)
    assert code == 0
    assert out == "No changes to apply: the instance matches the specs (8 resources); nothing was written.\n"
