"""``--help`` of every command reads as written by hand: each value has a metavar a person chose (PATH, URL,
NAME, N, SECONDS, a choice list), flags show none, and no type name of the machinery leaks through (typer
0.29 prints ``<bool>``, ``<str>``, ``<list[Path]>``; older typer ``TEXT``, ``INTEGER``, ``BOOLEAN``).

Run it on the locked typer and on the newest (``MTLS_CI_DEPS=newest .ci/run``); they render differently."""

from __future__ import annotations

import re

import pytest

from mtls_config.cli.helptext import command_tree, walk
from mtls_config.cli.main import app, main

COMMANDS = [(path, command) for path, command in walk(command_tree(app)) if not getattr(command, "hidden", False)]
# click's type names (older typer prints them in capitals when no metavar is declared)
CLICK_TYPE_NAMES = re.compile(r"\b(TEXT|INTEGER|BOOLEAN|FLOAT|FILENAME|DIRECTORY|CHOICE|UUID)\b")
TYPE_IN_ANGLES = re.compile(r"<[^<>\s]+>")  # <bool>, <str>, <list[Path]>, <text|json>


def _value_params(command: object) -> list[object]:
    params = getattr(command, "params", [])
    return [p for p in params if not getattr(p, "is_flag", False) and not getattr(p, "hidden", False)]


def test_the_walk_covers_every_command_group() -> None:
    paths = {path for path, _ in COMMANDS}
    for expected in ("mtls-config keystore new", "mtls-config cert inspect", "mtls-config emulator serve",
                     "mtls-config lock status", "mtls-config plan", "mtls-config verify"):  # fmt: skip
        assert expected in paths
    assert len(paths) > 20


@pytest.mark.parametrize("path", [path for path, command in COMMANDS if _value_params(command)])
def test_every_value_has_a_chosen_metavar(path: str) -> None:
    command = dict(COMMANDS)[path]
    for param in _value_params(command):
        name = "/".join(getattr(param, "opts", [])) or getattr(param, "name", "?")
        assert param.metavar, f"{path} {name}: declare a metavar (PATH, URL, NAME, N, SECONDS...)"  # type: ignore[attr-defined]
        choices = getattr(getattr(param, "type", None), "choices", None)
        if choices:
            listed = [getattr(c, "value", c) for c in choices]
            assert param.metavar == "|".join(listed), f"{path} {name}: the metavar lists the choices"  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS])
def test_help_reads_as_written(path: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # no cell is cut short, so every metavar is seen whole
    monkeypatch.setenv("NO_COLOR", "1")
    code = main([*path.split()[1:], "--help"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert path.split(maxsplit=1)[-1] in out if " " in path else "Usage: mtls-config" in out
    assert not TYPE_IN_ANGLES.findall(out), out
    assert not CLICK_TYPE_NAMES.findall(out), out
    assert "--help" in out and "Show this message and exit." in out
    help_line = next(line for line in out.splitlines() if "--help" in line and "Show this message" in line)
    assert re.search(r"--help\s+-h\s+Show this message", help_line) or re.search(r"-h, --help\s+Show", help_line)
    for param in _value_params(dict(COMMANDS)[path]):
        assert param.metavar in out, f"{param.metavar} not shown"  # type: ignore[attr-defined]
