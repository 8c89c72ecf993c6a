"""One option style on every command: each command that prints a result takes ``--format`` (``text|json`` at
least), keeps ``--json`` as a hidden alias that still works, and usage errors of every kind are said in our own
``error: ... / hint: ...`` form with exit 1 (2 means "changes" for plan and drift)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mtls_config.cli.helptext import command_tree, walk
from mtls_config.cli.main import app, main

LEAVES = {
    path.removeprefix("mtls-config "): command
    for path, command in walk(command_tree(app))
    if not getattr(command, "commands", None) and path != "mtls-config"
}
# Commands without a report to format, and why: each other command must take --format text|json.
NO_REPORT = {
    "apply": "prints the plan it applies and each resource's outcome; the plan's JSON is 'plan --format json'",
    "schema": "prints the paths of the JSON Schemas it wrote",
    "keystore new": "writes a key and a CSR and says where",
    "keystore assemble": "writes a keystore and says where; its --format is the keystore's (jks|pkcs12)",
    "keystore export-cert": "writes a certificate and says where; its --format is the certificate's (pem|der)",
    "lock release": "says whether it released a lock",
    "emulator serve": "a server: prints its address and runs",
    "emulator seed": "says what it seeded",
    "emulator reset": "says what it reset",
}


def _option(command: Any, name: str) -> Any:
    return next((p for p in command.params if name in getattr(p, "opts", [])), None)


def test_every_command_is_listed_once() -> None:
    assert set(NO_REPORT) <= set(LEAVES), sorted(set(NO_REPORT) - set(LEAVES))
    assert len(LEAVES) > len(NO_REPORT) + 5


@pytest.mark.parametrize("path", sorted(set(LEAVES) - set(NO_REPORT)))
def test_every_report_takes_format_and_the_hidden_json(path: str) -> None:
    command = LEAVES[path]
    fmt = _option(command, "--format")
    assert fmt is not None and "-f" in fmt.opts, f"'{path}' takes no --format/-f"
    choices = fmt.metavar.split("|")
    assert choices[:2] == ["text", "json"], f"'{path} --format' offers {choices}: text first, then json"
    alias = _option(command, "--json")
    assert alias is not None and alias.hidden and getattr(alias, "is_flag", False), f"'{path}' lacks a hidden --json"


@pytest.mark.parametrize("path", sorted(set(LEAVES) - set(NO_REPORT)))
def test_a_bad_format_is_a_usage_error_in_our_words(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*path.split(), "--format", "yaml"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    first, hint = err.splitlines()
    assert re.fullmatch(r"error: --format: 'yaml' is not one of text, json(, \w+)*", first), err
    assert hint == f"  hint: 'mtls-config {path} --help' says more"


def test_verbose_where_there_is_more_to_say() -> None:
    # Each says more with it (tests: plan and drift test_reports, apply below, validate test_hints, import
    # test_hints, verify tests/verify/test_cli); the other reports print all they know already.
    for path in ("plan", "apply", "drift", "validate", "import", "verify"):
        verbose = _option(LEAVES[path], "--verbose")
        assert verbose is not None and "-v" in verbose.opts, path


# --- --json still works, and says the same as --format json -----------------------------------------------------


@pytest.fixture
def example(example_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MTLS_PW", "demo-keystore-password")
    return example_repo


def _json_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


def _timeless(data: Any) -> Any:
    """``data`` without the keys that differ from one run to the next (times, durations)."""
    if isinstance(data, dict):
        return {k: _timeless(v) for k, v in data.items() if k not in {"created_at", "duration_ms", "checksum"}}
    if isinstance(data, list):
        return [_timeless(v) for v in data]
    return data


@pytest.mark.parametrize(
    "argv",
    [
        ["validate"],
        ["plan"],
        ["drift"],
        ["import", "--out", "imported"],
        ["lock", "status"],
        ["cert", "inspect", "certs/demo-root-ca.pem"],
        ["keystore", "inspect", "keystores/globex-client.jks", "--password-env", "MTLS_PW"],
        ["keystore", "lint", "keystores/globex-client.jks", "--password-env", "MTLS_PW"],
        ["verify", "--endpoint", "https://127.0.0.1:9/x", "--keystore", "Globex client"],
        ["doctor"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_the_hidden_json_is_format_json(argv: list[str], example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, data = _json_of([*argv, "--format", "json"], capsys)
    again, alias = _json_of([*argv, "--json"], capsys)
    assert code == again
    assert _timeless(data) == _timeless(alias)


def test_json_beside_another_format_is_refused(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--json", "--format", "markdown"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: --json: --json asks for json and --format for markdown: give one\n")


def test_keystore_lint_format_jks_still_means_the_store_type(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --format was the declared keystore type before it meant the output: old scripts keep working, with a note.
    argv = ["keystore", "lint", "keystores/globex-client.jks", "--password-env", "MTLS_PW"]
    assert main([*argv, "--format", "pkcs12"]) == 1
    out, err = capsys.readouterr()
    assert "K01" in out and "note: --format pkcs12 is --store-type pkcs12 now" in err
    assert main([*argv, "--store-type", "pkcs12"]) == 1
    assert "K01" in capsys.readouterr().out


# --- usage errors in our words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "error", "hint"),
    [
        (
            ["plan", "--prun"],
            "unknown option --prun",
            "did you mean --prune? 'mtls-config plan --help' lists the options",
        ),
        (["plan", "--parallelism", "3"], "unknown option --parallelism", "'mtls-config plan --help' lists the options"),
        (["plna"], "unknown command 'plna'", "did you mean 'plan'? 'mtls-config --help' lists the commands"),
        (
            ["keystore", "inspekt"],
            "unknown command 'inspekt'",
            "did you mean 'inspect'? 'mtls-config keystore --help' lists the commands",
        ),
        (
            ["drift", "-f"],
            "-f needs a value (text|json|junit|markdown|openmetrics)",
            "'mtls-config drift --help' says more",
        ),
        (
            ["keystore", "inspect"],
            "missing argument FILE",
            "usage: mtls-config keystore inspect [OPTIONS] FILE; 'mtls-config keystore inspect --help' says more",
        ),
        (
            ["keystore", "new", "--key-out", "k", "--csr-out", "c"],
            "missing option --subject",
            "usage: mtls-config keystore new [OPTIONS]; 'mtls-config keystore new --help' says more",
        ),
        (
            ["lock", "status", "extra"],
            "unexpected argument extra",
            "usage: mtls-config lock status [OPTIONS]; 'mtls-config lock status --help' says more",
        ),
        (["apply", "--parallelism", "0"], "--parallelism: ", "'mtls-config apply --help' says more"),
        (
            ["keystore", "assemble", "--format", "zip"],
            "--format: 'zip' is not one of jks, pkcs12",
            "'mtls-config keystore assemble --help' says more",
        ),
    ],
)
def test_usage_errors_in_our_words(argv: list[str], error: str, hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {error}"), err
    err = err.replace("{FILE}", "FILE")  # typer 0.28's usage line (its --help's too) braces an argument
    assert err.endswith(f"\n  hint: {hint}\n"), err
    assert "Usage:" not in err and "Error:" not in err and "Invalid value" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["plna"],
        ["plan", "--prun"],
        ["keystore", "inspect"],
        ["drift", "--format", "yaml"],
        ["validate", "--json", "-f", "x"],
    ],
    ids=" ".join,
)
def test_usage_errors_in_our_words_in_a_fresh_process(argv: list[str], tmp_path: Path) -> None:
    """As a user's shell runs it: a new process, no colour switch set, typer's help renderer not yet imported
    (in-process tests import it early, which once hid a traceback here)."""
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mtls-config"), *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  hint: "), done.stderr


def test_apply_verbose_lists_the_unchanged_and_what_the_run_cost(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--auto-approve"]) == 0
    capsys.readouterr()
    assert main(["apply", "--auto-approve", "--verbose"]) == 0
    out, err = capsys.readouterr()
    assert "    KeyStore/Acme Payments client  (no-op)" in out
    assert re.search(r"^local: \d+ requests \(.*\), 0 retries, [\d.]+ KB sent, [\d.]+ KB received$", err, re.M), err
    assert main(["apply", "--auto-approve"]) == 0
    out, err = capsys.readouterr()
    assert "(no-op)" not in out and "requests (" not in err
