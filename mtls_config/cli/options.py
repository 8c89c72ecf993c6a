"""The output options every command spells the same way: ``--format/-f`` with its choices (``text|json`` at
least, more where a command renders more), ``--json`` kept as a hidden alias of ``--format json`` for scripts
written before ``--format`` was everywhere, and ``--verbose/-v``.

``tests/test_cli_options.py`` walks every command: each that prints a result takes ``--format`` with ``text`` and
``json`` among its choices and the hidden ``--json``.

Light: typer only, so that importing it costs the start-up nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import typer

TextOrJson = Literal["text", "json"]

FormatOpt = Annotated[
    TextOrJson,
    typer.Option("--format", "-f", metavar="text|json", help="text, or json (for scripts)."),
]
JsonAlias = Annotated[
    bool,
    typer.Option("--json", hidden=True, help="The same as --format json (kept for scripts written before --format)."),
]


F = TypeVar("F", bound=str)


def chosen_format(output_format: F, json_alias: bool) -> F | Literal["json"]:
    """The format asked for: ``--json`` means ``--format json``; given beside another format, it is a usage error."""
    if json_alias and output_format not in ("text", "json"):
        raise typer.BadParameter(
            f"--json asks for json and --format for {output_format}: give one", param_hint="--json"
        )
    return "json" if json_alias else output_format
