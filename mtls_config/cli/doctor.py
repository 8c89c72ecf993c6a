"""``mtls-config doctor``: check that the instance account can do what the specs need; the checks are in
``mtls_config.doctor``, this renders them and picks the exit code (0 when none fails)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from mtls_config.cli.console import EXIT_ERROR, EXIT_OK, print_json, report_errors, stdout
from mtls_config.cli.interrupt import run_command
from mtls_config.cli.options import FormatOpt, JsonAlias, chosen_format
from mtls_config.cli.target import TimeoutOpt, connect
from mtls_config.literal import visible
from mtls_config.settings import DEFAULT_COMMAND_TIMEOUT
from mtls_config.spec.stack import find_project
from mtls_config.wording import plural

if TYPE_CHECKING:
    from mtls_config.doctor import Report

STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@report_errors
def doctor(
    instance: Annotated[
        str | None,
        typer.Option(
            "--instance",
            "-i",
            metavar="URL",
            help="Instance URL or 'local'. Default: the --env's instance, else $SN_INSTANCE, else local. "
            "Credentials come from the environment (SN_USERNAME/SN_PASSWORD or SN_CLIENT_ID/SN_CLIENT_SECRET).",
        ),
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", "-e", metavar="NAME", help="A named environment of the project file.")
    ] = None,
    output_format: FormatOpt = "text",
    json_alias: JsonAlias = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Allow plain http:// to a non-loopback instance (never for production).")
    ] = False,
    ca_bundle: Annotated[
        str | None, typer.Option("--ca-bundle", metavar="FILE", help="PEM bundle to verify the instance's TLS.")
    ] = None,
    timeout: TimeoutOpt = DEFAULT_COMMAND_TIMEOUT,
) -> None:
    """Check the instance and its account: reachability, TLS, credentials, the user and its roles, read access to
    each table the specs use (every table mtls-config uses, without specs), the columns they need, the Batch and
    Attachment APIs, the update set that would capture message changes, the instance's build. Each check is ok,
    warn or fail, with what was found and how to fix it. Read-only. Exit 0 when no check fails, 1 otherwise.

    Examples:
      mtls-config doctor --env prod
      mtls-config doctor --instance https://acme.service-now.com --format json
    """
    from mtls_config.doctor import diagnose, scope_for, unusable
    from mtls_config.errors import MtlsConfigError

    project = find_project(None)
    scope, specs_check = scope_for(project, env)

    async def main() -> Report:
        try:
            opened = connect(
                instance, env_name=env, project=project, insecure=insecure, ca_bundle=ca_bundle, timeout=timeout
            )
        except MtlsConfigError as exc:
            return unusable(instance or (f"environment {env}" if env else "the default instance"), exc, [specs_check])
        async with opened as client:
            settings = client.settings
            return await diagnose(client, scope, url=settings.url, local=settings.is_local, prelude=[specs_check])

    report = run_command(main())
    if chosen_format(output_format, json_alias) == "json":
        print_json(report.as_dict())
    else:
        stdout().print(render(report))
    raise typer.Exit(EXIT_OK if report.ok else EXIT_ERROR)


def render(report: Report) -> Text:
    out = Text()
    out.append("Doctor for ", style="bold").append(visible(report.instance), style="bold cyan").append("\n\n")
    width = max(len(c.name) for c in report.checks)
    for c in report.checks:
        out.append(f"  {c.status:4} ", style=STYLES[c.status]).append(f"{c.name:{width}}  ")
        out.append(visible(c.found)).append("\n")
        if c.fix and c.status in ("warn", "fail"):
            out.append(f"  {'':4} {'':{width}}  fix: {visible(c.fix)}\n", style="dim")
    failed = sum(1 for c in report.checks if c.status == "fail")
    warned = sum(1 for c in report.checks if c.status == "warn")
    out.append("\n")
    if failed:
        out.append(f"{plural(failed, 'check')} failed, {plural(warned, 'warning')}.", style="bold red")
    else:
        out.append(f"All checks passed ({plural(warned, 'warning')}).", style="bold green")
    return out


def register(app: typer.Typer) -> None:
    app.command()(doctor)
