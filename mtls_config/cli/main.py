"""The ``mtls-config`` command: the typer app and its entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
import typer.rich_utils

from mtls_config import __version__
from mtls_config.cli.console import EXIT_ERROR, EXIT_OK, fail, no_color, report_errors, stderr, stdout
from mtls_config.cli.emulator import emulator_app
from mtls_config.cli.helptext import command_tree
from mtls_config.cli.keystore import cert_app, keystore_app, print_findings_summary
from mtls_config.keystore.lint import has_errors
from mtls_config.keystore.speclint import lint_specs
from mtls_config.runtime import tune_process
from mtls_config.spec.schema import write_schemas
from mtls_config.spec.stack import load_stack
from mtls_config.wording import plural

app = typer.Typer(
    name="mtls-config",
    help="Manage a ServiceNow instance's outbound mutual-TLS set-up as code.\n\n"
    "Specs (YAML) -> validate -> plan -> apply; drift detection; keystore chores; handshake verification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(keystore_app)
app.add_typer(cert_app)
app.add_typer(emulator_app)

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="[PATH]...",
        help="Spec files or folders (searched recursively for *.yaml/*.yml). "
        "Default: the project file's 'specs', else the current folder.",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        stdout().print(f"mtls-config {__version__}", markup=False)
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Manage a ServiceNow instance's outbound mutual-TLS set-up as code."""


@app.command()
@report_errors
def validate(
    paths: PathsArg = None,
    no_lint: Annotated[bool, typer.Option("--no-lint", help="Skip the keystore/certificate lint rules.")] = False,
    env: Annotated[
        str | None,
        typer.Option("--env", "-e", metavar="NAME", help="Validate with this environment's spec paths and variables."),
    ] = None,
) -> None:
    """Check spec files: YAML, fields, references and files. Reports every problem, each as
    path:line:col: kind/name: field: message. Then lints every KeyStore and TrustStoreCert (rules K01-K16,
    T01-T03): errors fail, warnings are shown. Exit 0 when valid, 1 otherwise.

    Example: mtls-config validate specs/
    """
    specs = load_stack(paths, env).specs
    if not no_lint:
        findings = lint_specs(specs)
        if findings:
            print_findings_summary(findings)
        if has_errors(findings):
            raise typer.Exit(EXIT_ERROR)
    counts: dict[str, int] = {}
    for resource in specs.resources:
        counts[resource.kind] = counts.get(resource.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no resources"
    stdout().print(
        f"valid: {plural(len(specs.resources), 'resource')} in {plural(len(specs.files), 'file')} ({summary})",
        markup=False,
    )


@app.command()
@report_errors
def schema(
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Folder to write the JSON Schemas to.")
    ] = Path("schemas"),
) -> None:
    """Write JSON Schemas for spec documents (one per kind, one for any document, one for the project file).

    Point your editor at them with a first line such as
    '# yaml-language-server: $schema=../schemas/resource.schema.json'.

    Example: mtls-config schema --out schemas
    """
    written = write_schemas(out)
    for path in written:
        stdout().print(str(path), markup=False)


def _register_commands() -> None:
    from mtls_config.cli import lock as lock_command
    from mtls_config.cli import reconcile
    from mtls_config.cli import verify as verify_command

    reconcile.register(app)
    verify_command.register(app)
    lock_command.register(app)
    __import__("mtls_config.cli.doctor", fromlist=["register"]).register(app)


_register_commands()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors are 1, not click's 2: 2 means 'changes')."""
    args = list(sys.argv[1:] if argv is None else argv)
    # typer renders help with its own rich console; this is its switch. Set on every call, not only when
    # NO_COLOR is set, so that a process calling main() more than once (tests) does not keep a stale value.
    typer.rich_utils.COLOR_SYSTEM = None if no_color() else "auto"
    try:
        # Without standalone mode click *returns* the code of a typer.Exit raised inside a command.
        returned = command_tree(app).main(args=args, prog_name="mtls-config", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            stderr().print(f"error: {exc.format_message()}", markup=False)
        return EXIT_ERROR
    except typer.Abort:
        stderr().print("aborted", markup=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        stderr().print("interrupted", markup=False)
        return 130
    return returned if isinstance(returned, int) else EXIT_OK


def run() -> None:
    """The console script: the process is ours, so it gets the run's collector settings."""
    tune_process()
    sys.exit(main())


__all__ = ["app", "fail", "main", "run"]
