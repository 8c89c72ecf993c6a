"""Consoles and the one place that turns library errors into messages and exit codes.

Everything the CLI prints to a terminal goes through these consoles, and they print it literally: a string is
never read as rich markup or emoji codes (a fingerprint's ``:CD:`` stays ``:CD:``, a subject's ``[bold]`` stays
``[bold]``), nothing is highlighted, and a control character in it is shown as its escape (``\x1b``), never
obeyed (``mtls_config.literal``). Only the styles our own code attaches to a ``Text`` are rendered.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from mtls_config.errors import Interrupted, MtlsConfigError, SpecError
from mtls_config.literal import visible, visible_lines
from mtls_config.redaction import redact
from mtls_config.runtime import end

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

P = ParamSpec("P")
T = TypeVar("T")


def no_color() -> bool:
    """NO_COLOR (no-color.org) is set: no ANSI escapes at all, not even bold (rich alone keeps bold)."""
    return bool(os.environ.get("NO_COLOR"))


class LiteralConsole(Console):
    """A rich console that prints strings and ``Text`` literally (see the module docstring)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.update(markup=False, emoji=False, highlight=False)
        super().print(*(_literal(o) for o in objects), **kwargs)


def _literal(renderable: Any) -> Any:
    if isinstance(renderable, str):
        return Text(visible_lines(renderable))  # a Text is never parsed for markup or emoji
    if isinstance(renderable, Text) and visible_lines(renderable.plain) != renderable.plain:
        return _escaped(renderable)
    return renderable


def _escaped(text: Text) -> Text:
    """``text`` with its control characters (but line breaks) escaped, each keeping the style it had."""
    plain = text.plain
    cuts = sorted(
        {i for i, c in enumerate(plain) if visible_lines(c) != c}
        | {i + 1 for i, c in enumerate(plain) if visible_lines(c) != c}
    )
    out = Text(style=text.style, justify=text.justify, overflow=text.overflow, no_wrap=text.no_wrap, end=text.end)
    for piece in text.divide(cuts):
        if len(piece.plain) == 1 and visible_lines(piece.plain) != piece.plain:
            escaped = Text(visible_lines(piece.plain), style=piece.style)
            for span in piece.spans:
                escaped.stylize(span.style, 0, len(escaped.plain))
            piece = escaped
        out.append_text(piece)
    return out


def _console(file: Any) -> LiteralConsole:
    # Made per call so that redirected streams (tests, pipes) are honoured; rich drops escapes when the
    # stream is not a terminal.
    return LiteralConsole(
        file=file,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=True,
        color_system=None if no_color() else "auto",
    )


def stdout() -> Console:
    return _console(sys.stdout)


def stderr() -> Console:
    return _console(sys.stderr)


def fail(message: str, *, hint: str | None = None) -> typer.Exit:
    """Print an error (and a hint) to stderr, every secret of the run masked; return the exit to raise."""
    err = stderr()
    # escaped before it becomes Text: rich's Text drops BEL, BS, VT, FF and CR silently, and they must be seen
    err.print(Text.assemble(("error: ", "bold red"), visible_lines(redact(message))))
    if hint:
        err.print(Text.assemble(("  hint: ", "yellow"), visible_lines(redact(hint))))
    return typer.Exit(EXIT_ERROR)


def print_error(exc: MtlsConfigError) -> None:
    """A library error on stderr: a spec error's problems one per line, else the message and its hint."""
    if isinstance(exc, SpecError):
        err = stderr()
        for problem in exc.problems:
            err.print(visible(redact(str(problem))))
        count = len(exc.problems)
        err.print(f"{count} problem{'s' if count != 1 else ''} found", markup=False)
    else:
        fail(exc.message, hint=exc.hint)


def report_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Run a command; a library error becomes its message on stderr and exit code 1, never a traceback. A command
    a signal stopped says so and exits with 128 + the signal's number (130 for Ctrl-C)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except typer.Exit as exc:
            # The command is done and has closed what it opened (its blocks have exited): in the console script's
            # process that is the end, before what the command made (still held by this exception) is freed.
            end(exc.exit_code)
            raise
        except Interrupted as exc:
            from mtls_config.cli.interrupt import exit_code, signal_name

            stderr().print(f"interrupted ({signal_name(exc)}): {redact(exc.message)}", markup=False)
            raise typer.Exit(exit_code(exc)) from None
        except MtlsConfigError as exc:
            print_error(exc)
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            # A Ctrl-C the command's own handling did not turn into ``Interrupted`` (it came as a prompt was
            # shown, before the prompt's wait began): typer would end the command with 130 and not a word.
            stderr().print("interrupted", markup=False)
            raise typer.Exit(130) from None

    return wrapper


def print_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
