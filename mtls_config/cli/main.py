"""The ``mtls-config`` command: the typer app and its entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from mtls_config import __version__
from mtls_config.cli.console import EXIT_ERROR, EXIT_OK, fail, no_color, print_json, report_errors, stderr, stdout
from mtls_config.cli.helptext import command_tree
from mtls_config.cli.lazy import LazyCommand, lazy_group
from mtls_config.cli.options import FormatOpt, JsonAlias, chosen_format
from mtls_config.runtime import ends_itself, exiting, tune_process
from mtls_config.wording import plural

# The commands whose modules load only when one of them runs (mtls_config.cli.lazy): `--version`, `--help`
# and `validate` import neither the engine, the HTTP client, pyjks nor the emulator. `help` is what
# `mtls-config --help` lists, the first paragraph of the command's own help (tests/test_cli_lazy.py holds them
# equal).
LAZY_COMMANDS = (
    LazyCommand("plan", "mtls_config.cli.reconcile", "Show what apply would change on the instance. Read-only."),
    LazyCommand(
        "apply", "mtls_config.cli.reconcile", "Apply the specs (or a saved plan: 'apply plan.json') to the instance."
    ),
    LazyCommand(
        "drift",
        "mtls_config.cli.reconcile",
        "Report how the instance differs from the specs. Read-only, no prompts: made for cron jobs.",
    ),
    LazyCommand(
        "import",
        "mtls_config.cli.reconcile",
        "Adopt an existing hand-made set-up: write specs for the instance's mTLS records and own them.",
    ),
    LazyCommand(
        "verify",
        "mtls_config.cli.verify",
        "Prove the mutual-TLS set-up works: a real TLS handshake with the keystore's key against the partner\n"
        "endpoint, then one real HTTP request; reports each stage (dns, connect, tls, client-cert, http) and, when\n"
        "it fails, why and how to fix it. Checks what the instance (Java) would do differently: it sends no\n"
        "certificate when none of our chain's issuers is in the server's CA list.",
    ),
    LazyCommand(
        "doctor",
        "mtls_config.cli.doctor",
        "Check the instance and its account: reachability, TLS, credentials, the user and its roles, read access to\n"
        "each table the specs use (every table mtls-config uses, without specs), the columns they need, the Batch and\n"
        "Attachment APIs, the update set that would capture message changes, the instance's build. Each check is ok,\n"
        "warn or fail, with what was found and how to fix it. Read-only. Exit 0 when no check fails, 1 otherwise.",
    ),
    LazyCommand(
        "keystore",
        "mtls_config.cli.keystore",
        "Keystore chores of the mutual-TLS procedure: new key + CSR, assemble, inspect, export, lint.",
    ),
    LazyCommand("cert", "mtls_config.cli.keystore", "Certificates (PEM/DER, bundles): inspect."),
    LazyCommand(
        "emulator",
        "mtls_config.cli.emulator",
        "A local emulated ServiceNow instance (Table, Attachment and Batch APIs) for trying mtls-config and for tests.",
    ),
    LazyCommand(
        "lock",
        "mtls_config.cli.lock",
        "The stack lock that apply takes on the instance: show it, or remove one left by a dead run.",
    ),
)

app = typer.Typer(
    name="mtls-config",
    help="Manage a ServiceNow instance's outbound mutual-TLS set-up as code.\n\n"
    "Specs (YAML) -> validate -> plan -> apply; drift detection; keystore chores; handshake verification.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=lazy_group(LAZY_COMMANDS),
)

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
    output_format: FormatOpt = "text",
    json_alias: JsonAlias = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also list every resource: its address (KIND/NAME) and where it is."),
    ] = False,
) -> None:
    """Check spec files: YAML, fields, references and files. Reports every problem, each as
    path:line:col: kind/name: field: message. Then lints every KeyStore and TrustStoreCert (rules K01-K16,
    T01-T03): errors fail, warnings are shown. Exit 0 when valid, 1 otherwise.

    Example: mtls-config validate specs/
    """
    from dataclasses import asdict

    from mtls_config.cli.keystore import print_findings_summary
    from mtls_config.errors import SpecError
    from mtls_config.keystore.lint import has_errors
    from mtls_config.keystore.speclint import lint_specs
    from mtls_config.literal import visible
    from mtls_config.spec.paths import display_path
    from mtls_config.spec.stack import load_stack

    fmt = chosen_format(output_format, json_alias)
    try:
        specs = load_stack(paths, env).specs
    except SpecError as exc:
        if fmt != "json":
            raise
        print_json({"valid": False, "problems": [asdict(p) for p in exc.problems], "findings": [], "resources": []})
        raise typer.Exit(EXIT_ERROR) from None
    findings = [] if no_lint else lint_specs(specs)
    if fmt == "json":
        print_json(
            {
                "valid": not has_errors(findings),
                "problems": [],
                "findings": [f.to_json() for f in findings],
                "files": [display_path(f) for f in specs.files],
                "resources": [
                    {"address": r.address, "kind": r.kind, "name": r.name, "at": specs.origins[r.address].at()}
                    for r in specs.resources
                ],
            }
        )
        raise typer.Exit(EXIT_ERROR if has_errors(findings) else EXIT_OK)
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
    if verbose:
        for resource in specs.resources:
            stdout().print(f"  {visible(resource.address)}  ({specs.origins[resource.address].at()})", markup=False)


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
    from mtls_config.spec.schema import write_schemas

    written = write_schemas(out)
    for path in written:
        stdout().print(str(path), markup=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (usage errors are 1, not click's 2: 2 means 'changes')."""
    args = list(sys.argv[1:] if argv is None else argv)
    # typer renders help with its own rich console; this is its switch. Set on every call once typer's help
    # module is loaded, not only when NO_COLOR is set, so that a process calling main() more than once (tests)
    # does not keep a stale value; loaded for it only when NO_COLOR asks (its import is most of --help's cost).
    if no_color() or "typer.rich_utils" in sys.modules:
        # bound to its own name: a bare ``import typer.rich_utils`` here would make ``typer`` a local of this
        # function, unbound in the handlers below whenever this branch is not taken
        import typer.rich_utils as typer_help

        typer_help.COLOR_SYSTEM = None if no_color() else "auto"
    tree = command_tree(app)
    try:
        # Without standalone mode click *returns* the code of a typer.Exit raised inside a command.
        returned = tree.main(args=args, prog_name="mtls-config", standalone_mode=False)
    except typer.Exit as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # typer's way of saying Ctrl-C outside a command's run
            stderr().print("interrupted", markup=False)
        return exc.exit_code
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group run without a command: its help says what to run
            exc.show(file=sys.stderr)  # type: ignore[attr-defined]
            return EXIT_ERROR
        from mtls_config.cli.usage import describe

        message, hint = describe(exc, tree, args)
        fail(message, hint=hint)
        return EXIT_ERROR
    except typer.Abort:
        stderr().print("aborted", markup=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        stderr().print("interrupted", markup=False)
        return 130
    return returned if isinstance(returned, int) else EXIT_OK


def run() -> None:
    """The console script: the process is ours, so it gets the run's collector settings, and a command that is done
    ends it (``runtime.end``)."""
    tune_process()
    ends_itself()
    code = main()
    exiting()
    sys.exit(code)


__all__ = ["app", "fail", "main", "run"]
