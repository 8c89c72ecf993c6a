"""The CLI's foundation: --version, --help on every command, exit codes of usage errors, plain output when
NO_COLOR is set or the output is not a terminal, and validate on the example stack."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.rich_utils

from mtls_config import __version__
from mtls_config.cli.main import app, main

from .conftest import EXAMPLE_STACK, REPO_ROOT

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BAD_SPEC = "apiVersion: mtls-config/v1\nkind: ProtocolProfile\nmetadata: {name: HTTPS}\nspec: {keyStore: x}\n"


def command_paths() -> list[tuple[str, ...]]:
    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(app), ()))


def leaf_commands() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    leaves = []
    for path in command_paths():
        command: Any = root
        for part in path:
            command = command.commands[part]
        if not hasattr(command, "commands"):
            leaves.append(path)
    return leaves


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"], capsys) == (0, f"mtls-config {__version__}\n", "")


def test_the_foundation_commands_exist() -> None:
    assert {("validate",), ("schema",)} <= set(command_paths())


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "(root)")
def test_help_of_every_command_exits_0(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([*path, "--help"], capsys)
    assert code == 0, err
    assert "Usage: mtls-config " + " ".join(path) in " ".join(out.split())
    assert err == ""
    assert "-h" in out  # the short help option is listed too


@pytest.mark.parametrize("path", leaf_commands(), ids=" ".join)
def test_every_command_help_shows_an_example(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*path, "-h"], capsys)
    assert code == 0
    assert "Example" in out, f"'mtls-config {' '.join(path)} --help' shows no example a new user can copy"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "--no-such-option"], "error: unknown option --no-such-option\n"),
        (["no-such-command"], "error: unknown command 'no-such-command'\n"),
        (["schema", "--out"], "error: --out needs a value (DIR)\n"),
        (["--no-such-root-option"], "error: unknown option --no-such-root-option\n"),
    ],
)
def test_usage_errors_exit_1_not_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    # 2 is reserved for "changes present" (plan, drift): a usage error must never look like that.
    # tests/test_cli_options.py holds the wording of each kind of usage error.
    code, out, err = run(argv, capsys)
    assert code == 1
    assert err.startswith(message) and "\n  hint: " in err
    assert out == ""


def test_no_arguments_shows_help_and_is_not_mistaken_for_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([], capsys)
    assert code in (0, 1)
    assert "Usage: mtls-config" in out + err
    assert "validate" in out + err


def test_validate_the_example_stack(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", str(EXAMPLE_STACK)], capsys)
    assert (code, err) == (0, "")
    assert out.startswith(
        "valid: 8 resources in 2 files (2 KeyStore, 2 TrustStoreCert, 2 ProtocolProfile, 2 MessageBinding)"
    )


def test_validate_all_specs_in_the_repository(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    code, out, err = run(["validate", "specs"], capsys)
    assert (code, err) == (0, ""), err
    assert out.startswith("valid: ")


def test_validate_without_paths_uses_the_project_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLE_STACK)
    code, out, _ = run(["validate"], capsys)
    assert code == 0
    assert out.startswith("valid: 8 resources in 2 files")


def test_validate_reports_problems_on_stderr_and_exits_1(spec_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (spec_repo / "a.yaml").write_text(BAD_SPEC)
    code, out, err = run(["validate"], capsys)
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "a.yaml:3:12: ProtocolProfile/HTTPS: metadata.name: a protocol profile's name is its URL scheme and must "
        "be lower-case letters only (a-z), e.g. 'mauth'; 'HTTPS' is not",
        "1 problem found",
    ]


def test_a_library_error_is_a_message_and_exit_1(spec_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (spec_repo / "mtls-config.yaml").write_text("stack: a\nenvironments: {}\n")
    (spec_repo / "a.yaml").write_text(BAD_SPEC)
    code, _, err = run(["validate", "a.yaml", "nope.yaml"], capsys)
    assert code == 1
    assert "Traceback" not in err
    assert "nope.yaml:1:1: no such file or directory" in err


def test_schema_writes_the_schemas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["schema", "--out", str(tmp_path / "s")], capsys)
    assert (code, err) == (0, "")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(Path(line).name for line in out.splitlines())
    assert "resource.schema.json" in out


# --- plain output: NO_COLOR and non-terminal streams ---------------------------------------------------------


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "mtls-config"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from mtls_config.cli.main import run; run()"]


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TERM"}}
    env.update(extra)
    return env


def _on_a_terminal(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    import pty

    primary, secondary = pty.openpty()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    process.primary = primary  # type: ignore[attr-defined]
    return process


def _read_terminal(process: subprocess.Popen[bytes]) -> str:
    primary: int = process.primary  # type: ignore[attr-defined]
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=60)
    os.close(primary)
    return b"".join(chunks).decode("utf-8", "replace")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, as rich asks."""

    def isatty(self) -> bool:
        return True


def run_on_fake_terminal(argv: list[str], monkeypatch: pytest.MonkeyPatch, *, no_color: bool) -> tuple[int, str]:
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(typer.rich_utils, "COLOR_SYSTEM", typer.rich_utils.COLOR_SYSTEM)  # restored afterwards
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main(argv)
    return code, terminal.getvalue()


def test_on_a_terminal_help_is_styled(monkeypatch: pytest.MonkeyPatch) -> None:
    # The control for the tests below: without NO_COLOR a terminal gets escapes, so those tests could fail.
    code, output = run_on_fake_terminal(["validate", "--help"], monkeypatch, no_color=False)
    assert code == 0
    assert "Usage: mtls-config validate" in ANSI_ESCAPE.sub("", output)
    assert ANSI_ESCAPE.search(output)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["validate", "--help"], "Usage: mtls-config validate"),
        (["--help"], "Usage: mtls-config"),
        (["validate", "--no-such-option"], "unknown option"),
        (["validate", "a.yaml"], "a.yaml:3:12:"),
        (["--version"], "mtls-config "),
    ],
)
def test_no_color_means_no_escapes_even_on_a_terminal(
    argv: list[str], expected: str, monkeypatch: pytest.MonkeyPatch, spec_repo: Path
) -> None:
    (spec_repo / "a.yaml").write_text(BAD_SPEC)
    _, output = run_on_fake_terminal(argv, monkeypatch, no_color=True)
    assert expected in output
    assert not ANSI_ESCAPE.search(output), repr(output[:300])


def test_a_real_pseudo_terminal_with_no_color_gets_no_escapes(tmp_path: Path) -> None:
    # Off a terminal (a pipe) output is plain too: the corpus's child-process cases check that.
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("pseudo-terminals are POSIX only")
    (tmp_path / ".git").mkdir()
    terminal = _on_a_terminal(
        [*_console_script(), "validate", "--help"], tmp_path, _environ(TERM="xterm-256color", NO_COLOR="1")
    )
    output = _read_terminal(terminal)
    assert "Usage: mtls-config validate" in output
    assert not ANSI_ESCAPE.search(output), repr(output[:400])


def test_a_ctrl_c_a_command_did_not_handle_says_interrupted_and_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    """A KeyboardInterrupt that escapes a command's own handling (one that came as a prompt was shown, before the
    prompt's wait began) is said, not swallowed: typer alone would end the command with 130 and no word."""
    from mtls_config.cli.console import report_errors

    @report_errors
    def command() -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as stopped:
        command()
    assert stopped.value.exit_code == 130
    assert capsys.readouterr().err == "interrupted\n"
