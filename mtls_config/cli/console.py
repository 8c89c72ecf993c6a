"""Consoles and the one place that turns library errors into messages and exit codes."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from mtls_config.errors import MtlsConfigError, SpecError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

P = ParamSpec("P")
T = TypeVar("T")


def no_color() -> bool:
    """NO_COLOR (no-color.org) is set: no ANSI escapes at all, not even bold (rich alone keeps bold)."""
    return bool(os.environ.get("NO_COLOR"))


def stdout() -> Console:
    # Made per call so that redirected streams (tests, pipes) are honoured; rich drops escapes when the
    # stream is not a terminal.
    return Console(file=sys.stdout, highlight=False, soft_wrap=True, color_system=None if no_color() else "auto")


def stderr() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True, color_system=None if no_color() else "auto")


def fail(message: str, *, hint: str | None = None) -> typer.Exit:
    """Print an error (and a hint) to stderr; return the exit to raise."""
    err = stderr()
    err.print(Text.assemble(("error: ", "bold red"), message))
    if hint:
        err.print(Text.assemble(("  hint: ", "yellow"), hint))
    return typer.Exit(EXIT_ERROR)


def report_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Run a command; a library error becomes its message on stderr and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            err = stderr()
            for problem in exc.problems:
                err.print(str(problem), markup=False, highlight=False)
            count = len(exc.problems)
            err.print(f"{count} problem{'s' if count != 1 else ''} found", markup=False)
            raise typer.Exit(EXIT_ERROR) from None
        except MtlsConfigError as exc:
            raise fail(exc.message, hint=exc.hint) from None

    return wrapper


def print_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
