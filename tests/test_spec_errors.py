"""The bad-input corpus: every folder in ``tests/cases/spec_errors/`` is one bad spec repository.

Each case runs through the real CLI entry point with the case folder as the working directory and must exit 1
with exactly the stderr in its ``expected.txt``, no traceback, nothing on stdout. ``tests/cases/README.md``
describes the layout and the optional ``recipe.json`` (files made at test time: a 10 MB file, a symlink that
leaves the repository, canary values that must never be echoed).

Regenerate the expected files after a deliberate message change with::

    MTLS_CONFIG_UPDATE_CASES=1 .venv/bin/python -m pytest tests/test_spec_errors.py

and then read every changed ``expected.txt`` by eye before committing.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mtls_config.cli.main import main

CASES_DIR = Path(__file__).parent / "cases" / "spec_errors"
UPDATE = os.environ.get("MTLS_CONFIG_UPDATE_CASES") == "1"
CASE_META_FILES = {"expected.txt", "recipe.json"}
PROBLEM_LINE = re.compile(r"^[^\s:][^:]*:\d+:\d+: \S.*$")
SUMMARY_LINE = re.compile(r"^\d+ problems? found$")
# These also run in a child process through the installed console script: the real process boundary
# (exit status, stream encoding) for the inputs most likely to upset it.
SUBPROCESS_CASES = ("binary-garbage", "literal-password")


def case_names() -> list[str]:
    return sorted(p.name for p in CASES_DIR.iterdir() if p.is_dir())


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def read_recipe(case: Path) -> dict[str, Any]:
    path = case / "recipe.json"
    if not path.exists():
        return {}
    recipe: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    unknown = set(recipe) - {"args", "generate", "symlinks", "absent"}
    assert not unknown, f"{path}: unknown recipe keys {sorted(unknown)}"
    return recipe


def prepare(case: Path, tmp_path: Path) -> Path:
    """Copy the case into a fresh folder and carry out its recipe. A ``.git`` folder makes the copy a
    repository root, as a real spec repository is: the project-file search stops there and file references
    may not leave it."""
    work = tmp_path / case.name
    shutil.copytree(case, work, symlinks=True, ignore=shutil.ignore_patterns(*CASE_META_FILES))
    (work / ".git").mkdir()
    recipe = read_recipe(case)
    for item in recipe.get("generate", []):
        head = item.get("head", "").encode()
        line = item["repeat"].encode()
        size = int(item["size"])
        body = head + line * ((size - len(head)) // len(line) + 1)
        (work / item["path"]).write_bytes(body[:size])
    for link in recipe.get("symlinks", []):
        path = work / link["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.symlink_to(link["target"])
        except OSError as exc:  # pragma: no cover - platforms without symlinks
            pytest.skip(f"cannot create a symlink here: {exc}")
    return work


def cli_args(case: Path) -> list[str]:
    args: list[str] = read_recipe(case).get("args", ["validate"])
    return args


def check(case: Path, outcome: Outcome) -> None:
    for canary in read_recipe(case).get("absent", []):
        assert canary not in outcome.stdout, f"{case.name}: secret canary echoed on stdout"
        assert canary not in outcome.stderr, f"{case.name}: secret canary echoed on stderr"
    assert "Traceback" not in outcome.stderr + outcome.stdout, outcome.stderr
    assert "\x1b[" not in outcome.stderr + outcome.stdout, f"{case.name}: ANSI escapes in output"
    assert outcome.code == 1, f"{case.name}: exit code {outcome.code}, want 1\n{outcome.stderr}"
    assert outcome.stdout == "", f"{case.name}: unexpected stdout:\n{outcome.stdout}"
    lines = outcome.stderr.splitlines()
    assert lines, f"{case.name}: nothing on stderr"
    for line in lines[:-1]:
        assert PROBLEM_LINE.match(line), f"{case.name}: not 'path:line:col: ...': {line!r}"
    assert SUMMARY_LINE.match(lines[-1]), f"{case.name}: last line is not the summary: {lines[-1]!r}"

    expected_file = case / "expected.txt"
    if UPDATE:
        expected_file.write_text(outcome.stderr, encoding="utf-8")
        return
    assert expected_file.exists(), f"{case.name}: no expected.txt (run with MTLS_CONFIG_UPDATE_CASES=1)"
    expected = expected_file.read_text(encoding="utf-8")
    if outcome.stderr != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                outcome.stderr.splitlines(keepends=True),
                fromfile=f"{case.name}/expected.txt",
                tofile=f"{case.name} (actual stderr)",
            )
        )
        pytest.fail(f"stderr differs from expected.txt:\n{diff}", pytrace=False)


@pytest.mark.parametrize("name", case_names())
def test_spec_error_case(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES_DIR / name
    work = prepare(case, tmp_path)
    monkeypatch.chdir(work)
    monkeypatch.setenv("NO_COLOR", "1")
    code = main(cli_args(case))
    captured = capsys.readouterr()
    check(case, Outcome(code, captured.out, captured.err))


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "mtls-config"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from mtls_config.cli.main import run; run()"]


@pytest.fixture(scope="module")
def process_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Run the SUBPROCESS_CASES at the same time (the CLI's start-up dominates, so this keeps them fast).
    NO_COLOR is not set: output to a pipe must be plain by itself."""
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"}}
    env["TERM"] = "xterm-256color"
    running: dict[str, subprocess.Popen[str]] = {}
    for name in SUBPROCESS_CASES:
        case = CASES_DIR / name
        work = prepare(case, tmp_path_factory.mktemp(name))
        running[name] = subprocess.Popen(
            [*_console_script(), *cli_args(case)],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outcomes = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        outcomes[name] = Outcome(process.returncode, out, err)
    return outcomes


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_spec_error_case_in_a_process(name: str, process_outcomes: dict[str, Outcome]) -> None:
    if UPDATE:
        return  # the in-process test writes expected.txt
    check(CASES_DIR / name, process_outcomes[name])


def test_corpus_is_large_enough() -> None:
    names = case_names()
    assert len(names) >= 35, names
    for name in names:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name), f"case folder names are kebab-case: {name}"
