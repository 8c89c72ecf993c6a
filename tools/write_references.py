"""Regenerate the generated references, docs/reference/specs.md and docs/reference/cli.md, from the code.

A maintainer's step, not a user's command (tests/test_docs.py fails until the references are fresh):

    python tools/write_references.py [--out docs/reference]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mtls_config.cli.helptext import command_tree
from mtls_config.cli.main import app
from mtls_config.reference import cli_reference, spec_reference

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reference", help="folder for specs.md and cli.md")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for name, text in {"specs.md": spec_reference(), "cli.md": cli_reference(command_tree(app))}.items():
        (out / name).write_text(text, encoding="utf-8")
        print(out / name)


if __name__ == "__main__":
    main()
