"""The app's click command tree, with ``--help`` that reads as written by hand.

typer shows something in the value column of every option that declares no metavar: the click type's name
(``TEXT``, ``<path>``) up to 0.28, the Python type (``<str>``, ``<list[Path]>``) from 0.29, and 0.29 shows
``<bool>`` for flags too, the help option it adds itself included. So every option that takes a value declares its
metavar where it is declared (``PATH``, ``URL``, ``NAME``, ``N``, ``SECONDS``; a test walks every command and
holds it), and this module blanks the value column of every flag, the help option included, which typer lets no
declaration reach, and has arguments print their metavar as declared. Both kinds of typer then print the same.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import typer
import typer.main

from mtls_config.cli.lazy import LazyCommands


def command_tree(app: typer.Typer) -> Any:
    """``typer.main.get_command(app)`` with flags that show no value type (a click command; typer >= 0.29
    vendors click, so the type is not named here)."""
    root = typer.main.get_command(app)
    _blank_flags(root)
    commands = getattr(root, "commands", None) or {}
    if isinstance(commands, LazyCommands):
        commands.prepare = _blank_tree  # a lazily listed command gets the same when it is built, if ever
        commands = commands.built()
    for command in commands.values():
        _blank_tree(command)
    return root


def _blank_tree(command: Any) -> None:
    for _path, each in walk(command):
        _blank_flags(each)


def walk(command: Any, path: str = "mtls-config") -> Iterator[tuple[str, Any]]:
    """Every command of the tree with its full name, parents first, subcommands in name order."""
    yield path, command
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        yield from walk(sub, f"{path} {name}")


def _blank_flags(command: Any) -> None:
    for param in command.params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if param.param_type_name == "argument" and param.metavar is not None:
            _literal_argument(param)
    make_help_option = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make_help_option(ctx)  # click makes it per call, typer 0.29 once per command
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


def _literal_argument(argument: Any) -> None:
    """An argument's declared metavar (``[PATH]...``, ``FILE``) with no type beside it, and verbatim in the usage
    line. typer 0.27-0.28 print the type's metavar (``<path>``), 0.29 the Python type (``<list[Path]>``) and wrap
    the metavar in brackets again (``[[PATH]...]...``); each is answered here, where it exists."""
    metavar = argument.metavar
    if getattr(argument, "type", None) is not None:
        argument.type = copy.copy(argument.type)  # click's types are shared objects: change only this argument's
        argument.type.get_metavar = lambda *args, **kwargs: ""
    if hasattr(argument, "_usage_display_name"):
        argument._usage_display_name = lambda: metavar
    if hasattr(argument, "display_type_rich"):
        argument.display_type_rich = lambda ctx: None
