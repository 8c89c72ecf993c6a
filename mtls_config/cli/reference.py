"""``mtls-config reference``: regenerate docs/reference/ (spec and CLI references) from the code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mtls_config.cli.console import report_errors, stdout
from mtls_config.cli.helptext import command_tree
from mtls_config.reference import cli_reference, spec_reference


def write_references(out: Path, app: typer.Typer) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        out / "specs.md": spec_reference(),
        out / "cli.md": cli_reference(command_tree(app)),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def register(app: typer.Typer) -> None:
    @app.command(hidden=True)
    @report_errors
    def reference(
        out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Folder for specs.md and cli.md.")] = Path(
            "docs/reference"
        ),
    ) -> None:
        """Regenerate the spec and CLI references (docs/reference/) from the code.

        Example: mtls-config reference --out docs/reference
        """
        for path in write_references(out, app):
            stdout().print(str(path), markup=False)
