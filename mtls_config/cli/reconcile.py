"""plan, apply and drift: read the specs, talk to the instance, render, choose the exit code."""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import typer

from mtls_config.cli.console import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    print_error,
    print_json,
    report_errors,
    stderr,
    stdout,
)
from mtls_config.cli.interrupt import ask, exit_code, prompting, run_command, signal_name
from mtls_config.cli.lock import lock_hints, note, target_flags
from mtls_config.cli.options import FormatOpt, JsonAlias, chosen_format
from mtls_config.cli.progress import ApplyProgress
from mtls_config.cli.target import LOCAL_STATE_DIR, TimeoutOpt, connect
from mtls_config.errors import Interrupted, MtlsConfigError, PlanError, ProjectError
from mtls_config.files import PLAN, read_text, write_private, write_shared
from mtls_config.redaction import redact
from mtls_config.runtime import cycle_collector
from mtls_config.settings import DEFAULT_COMMAND_TIMEOUT, INSTANCE_VARIABLE, LOCAL_INSTANCE
from mtls_config.spec.project import ProjectFile
from mtls_config.spec.stack import find_project
from mtls_config.wording import plural

if TYPE_CHECKING:
    # The engine (deepdiff, numpy) and the HTTP client load only when a command runs: `--help` and
    # `--version` stay fast.
    from mtls_config.client import InstanceClient
    from mtls_config.fleet import Connect, Connection
    from mtls_config.plan import Plan

T = TypeVar("T")

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="[PATH]...",
        help="Spec files or folders. Default: the project file's 'specs' (or the environment's).",
        show_default=False,
    ),
]
InstanceOpt = Annotated[
    str | None,
    typer.Option(
        "--instance",
        "-i",
        metavar="URL",
        help="Instance URL (https://acme.service-now.com) or 'local' (the embedded instance). "
        "Default: the --env's instance, else $SN_INSTANCE, else local. Credentials come from the environment "
        "(SN_USERNAME/SN_PASSWORD or SN_CLIENT_ID/SN_CLIENT_SECRET), never from the command line.",
        show_default=False,
    ),
]
EnvOpt = Annotated[
    str | None, typer.Option("--env", "-e", metavar="NAME", help="A named environment of the project file.")
]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Allow plain http:// to a non-loopback instance (never for production).")
]
CaBundleOpt = Annotated[
    str | None, typer.Option("--ca-bundle", metavar="FILE", help="PEM bundle to verify the instance's TLS certificate.")
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target", "-t", metavar="KIND/NAME", help="Only this resource (KIND/NAME) and what it depends on. Repeatable."
    ),
]
ExcludeOpt = Annotated[
    list[str] | None, typer.Option("--exclude", "-x", metavar="KIND/NAME", help="Leave out KIND/NAME. Repeatable.")
]
PruneOpt = Annotated[
    bool, typer.Option("--prune", help="Delete owned records no longer in the specs (bindings are restored).")
]


def _connector(
    instance: str | None, insecure: bool, ca_bundle: str | None, stats: RequestLog | None, timeout: float
) -> Connect:
    """How a fleet run reaches each environment's instance (each within ``timeout`` seconds); what each connection
    cost goes in ``stats``."""
    from mtls_config.fleet import Connection

    @asynccontextmanager
    async def connection(project: ProjectFile, env: str | None) -> AsyncIterator[Connection]:
        async with connect(
            instance, env_name=env, project=project, insecure=insecure, ca_bundle=ca_bundle, timeout=timeout
        ) as client:
            try:
                yield Connection(client, client.settings.url)
            finally:
                if stats is not None:
                    stats.append((env or client.settings.url, client.stats.snapshot()))

    return connection


def rerun_arguments(
    paths: list[Path] | None, instance: str | None, env: str | None, insecure: bool, ca_bundle: str | None
) -> str:
    """The arguments that make a re-run read the same specs and reach the same instance as this run: the spec paths
    given (not a saved plan: it no longer matches what the run wrote), the target, and its TLS options."""
    given = "".join(f" {shlex.quote(str(path))}" for path in paths or [])
    flags = target_flags(instance, env)
    if insecure:
        flags += " --insecure"
    if ca_bundle is not None:
        flags += f" --ca-bundle {shlex.quote(ca_bundle)}"
    return given + flags


def _run(
    project: ProjectFile,
    instance: str | None,
    env: str | None,
    insecure: bool,
    ca_bundle: str | None,
    body: Callable[[InstanceClient, str], Awaitable[T]],
    timeout: float = DEFAULT_COMMAND_TIMEOUT,
    *,
    stats: RequestLog | None = None,
) -> T:
    """``body`` with a client for the target; what the run cost goes in ``stats`` (also when it fails)."""

    async def main() -> T:
        async with connect(
            instance, env_name=env, project=project, insecure=insecure, ca_bundle=ca_bundle, timeout=timeout
        ) as client:
            try:
                return await body(client, client.settings.url)
            finally:
                if stats is not None:
                    stats.append((env or client.settings.url, client.stats.snapshot()))

    return run_command(main())


RequestLog = list[tuple[str, dict[str, dict[str, int]]]]


def _print_stats(stats: RequestLog) -> None:
    """--verbose: what the run cost on the instance, per target (requests, retries, bytes), on stderr."""
    for label, snapshot in stats:
        total = snapshot["total"]
        parts = ", ".join(f"{name} {op['requests']}" for name, op in snapshot.items() if name != "total")
        stderr().print(
            f"{label}: {plural(total['requests'], 'request')} ({parts}), {plural(total['retries'], 'retry', 'retries')}, "
            f"{total['bytes_sent'] / 1024:.1f} KB sent, {total['bytes_received'] / 1024:.1f} KB received",
            markup=False,
        )


def _worst(codes: list[int]) -> int:
    return EXIT_ERROR if EXIT_ERROR in codes else (EXIT_CHANGES if EXIT_CHANGES in codes else EXIT_OK)


@report_errors
def plan(
    paths: PathsArg = None,
    instance: InstanceOpt = None,
    env: EnvOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", metavar="FILE", help="Save the plan (JSON) for 'apply PLAN'.")
    ] = None,
    json_alias: JsonAlias = False,
    output_format: Annotated[
        Literal["text", "json", "markdown"],
        typer.Option(
            "--format", "-f", metavar="text|json|markdown", help="text, json, or markdown (a pull-request comment)."
        ),
    ] = "text",
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode/--no-detailed-exitcode",
            help="Exit 2 when there are changes (0 none, 1 error). On by default.",
        ),
    ] = True,
    target: TargetOpt = None,
    exclude: ExcludeOpt = None,
    prune: PruneOpt = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="The full listing: unchanged resources too, and every field of every change; and what the run "
            "cost in requests.",
        ),
    ] = False,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = DEFAULT_COMMAND_TIMEOUT,
) -> None:
    """Show what apply would change on the instance. Read-only.

    Lists the changes and a summary: unchanged resources are counted, and a plan of more than 50 changes
    lists its creates and deletes by name (updates always with their fields); --verbose lists everything.

    Examples:
      mtls-config plan specs/
      mtls-config plan --env prod --out plan.json
    """
    from mtls_config.fleet import environments, fleet_document, label, plan_environments

    envs = environments(find_project(paths), env, instance)
    stats: RequestLog = []
    connection = _connector(instance, insecure, ca_bundle, stats, timeout)
    fmt = chosen_format(output_format, json_alias)
    # A plan printed as text shows no checksum: it is made only for one that is saved or shown (JSON, markdown).
    seal = fmt != "text" or out is not None
    results = run_command(
        plan_environments(paths, envs, connection, prune=prune, targets=target or [], excludes=exclude or [], seal=seal)
    )
    from mtls_config.render import plan_markdown, plan_text  # loaded with the engine, after the first request

    if verbose:
        _print_stats(stats)
    codes: list[int] = []
    sections: dict[str, object] = {}
    for env_name, result in results:
        name = label(env_name)
        if isinstance(result, MtlsConfigError):
            codes.append(EXIT_ERROR)
            sections[name] = {"error": result.message}
            if fmt == "text":
                stderr().print(f"error: {name}: {result}", markup=False)
            continue
        plan_ = result.plan
        codes.append(
            EXIT_ERROR if plan_.errors else (EXIT_CHANGES if plan_.has_changes and detailed_exitcode else EXIT_OK)
        )
        if fmt == "json" or (out is not None and len(results) > 1):
            # the plan as its JSON reads back, without a round trip through text (a text plan needs none of it)
            sections[name] = plan_.sealed().model_dump(mode="json", by_alias=True)
        if out is not None and len(results) == 1:
            write_private(out, plan_.to_json())
        if fmt == "text":
            if len(results) > 1:
                stdout().print(f"== environment {name} ==", markup=False)
            stdout().print(plan_text(plan_, verbose=verbose))
            for line in result.housekeeping.lines():
                stdout().print(f"Housekeeping: apply will {line}.", markup=False)
            if out is not None and len(results) == 1:
                stdout().print(f"\nSaved the plan to {out}; apply it with: mtls-config apply {out}", markup=False)
            if len(results) > 1:
                stdout().print()
        elif fmt == "markdown":
            sys.stdout.write(plan_markdown(plan_) + "\n")
    if len(results) > 1:
        if out is not None:
            write_private(out, json.dumps({"environments": sections}, indent=2, sort_keys=True) + "\n")
        if fmt == "json":
            sys.stdout.write(json.dumps(fleet_document(sections), indent=2, sort_keys=True) + "\n")
        elif fmt == "text":
            changed = sum(1 for c in codes if c == EXIT_CHANGES)
            failed = sum(1 for c in codes if c == EXIT_ERROR)
            stdout().print(
                f"Fleet: {plural(len(results), 'environment')}, {changed} with changes, {failed} with errors.",
                markup=False,
            )
    elif fmt == "json":
        sys.stdout.write(json.dumps(next(iter(sections.values())), indent=2, sort_keys=True) + "\n")
    raise typer.Exit(_worst(codes))


@report_errors
def apply(
    paths: PathsArg = None,
    instance: InstanceOpt = None,
    env: EnvOpt = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
    parallelism: Annotated[
        int, typer.Option("--parallelism", min=1, max=64, metavar="N", help="Concurrent writes.")
    ] = 10,
    target: TargetOpt = None,
    exclude: ExcludeOpt = None,
    prune: PruneOpt = False,
    allow_delete_all: Annotated[
        bool, typer.Option("--allow-delete-all", help="Allow a plan that deletes all or most owned records.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="The full listing: the plan's every resource (unchanged ones too) and every applied one; and what "
            "the run cost in requests (on stderr).",
        ),
    ] = False,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = DEFAULT_COMMAND_TIMEOUT,
) -> None:
    """Apply the specs (or a saved plan: 'apply plan.json') to the instance.

    Shows the plan when it asks for confirmation (or with --verbose); with --auto-approve or a saved plan
    (reviewed already) only its summary line. Then progress (a bar on a terminal) and the results: failures and skips with why, applied
    resources listed (counted by action when more than 50).

    A saved plan is applied only if it still holds: the records it planned are re-read and a plan whose
    records changed meanwhile is refused, naming them; it keeps the --prune/--target/--exclude it was made with.
    Without a terminal, a run from specs needs --auto-approve (a saved plan was reviewed already).

    Examples:
      mtls-config apply specs/ --auto-approve
      mtls-config apply plan.json
    """
    # The engine, the plan and the renderers load in the first request's shadow (``fleet.load_with_engine``).
    from mtls_config.access import load_while_reading
    from mtls_config.fleet import is_pattern, load_with_engine

    if is_pattern(env):
        raise ProjectError("apply takes one environment, not a pattern", hint="run one apply per environment")
    saved: Plan | None = None
    spec_paths = paths
    if paths and len(paths) == 1 and paths[0].suffix == ".json" and paths[0].is_file():
        from mtls_config.plan import Plan

        saved = Plan.from_json(read_text(paths[0], PLAN))
        spec_paths = None
        # the saved plan says what it covers: the same prune, targets and excludes as when it was made
        prune, target, exclude = saved.prune, saved.targets, saved.excludes
    project = find_project(spec_paths)
    stack_name = project.project.stack
    if saved is not None and saved.stack != stack_name:
        raise PlanError(f"the saved plan is for stack '{saved.stack}', these specs are stack '{stack_name}'")
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not auto_approve and not interactive and saved is None:
        raise PlanError(
            "apply needs confirmation and there is no terminal to ask",
            hint="review 'mtls-config plan' and run apply with --auto-approve, or apply a saved plan file",
        )

    progress = ApplyProgress(terminal=sys.stderr.isatty(), console=stderr())

    async def body(client: InstanceClient, name: str) -> int:
        async with progress.ticking():
            return await apply_body(client, name)

    async def apply_body(client: InstanceClient, name: str) -> int:
        # the specs are read while the plan's first request (alone: it proves the credentials) is out
        stack, grants = await load_while_reading(client, functools.partial(load_with_engine, spec_paths, env, project))
        from mtls_config.engine import apply_planned, journal_file, make_planned
        from mtls_config.render import apply_text, plan_summary, plan_text

        progress.reading(len(stack.specs.resources))
        # The specs are not kept past the plan: the writes need what the plan made of them, and holding the
        # documents, their marks and models through the apply was its peak memory's largest avoidable part.
        planned_stack, state_dir, specs = stack.name, stack.project.root / LOCAL_STATE_DIR, stack.specs
        del stack
        planned = await make_planned(
            client,
            specs,
            grants=grants,
            instance_name=name,
            stack=planned_stack,
            prune=prune,
            targets=target or [],
            excludes=exclude or [],
        )
        del specs
        asking = saved is None and not auto_approve
        if asking or planned.plan.errors or verbose:
            stdout().print(plan_text(planned.plan, verbose=verbose))
        elif planned.plan.has_changes or saved is None:  # reviewed already, or not to be reviewed here: one line
            stdout().print(plan_summary(planned.plan))
        if not planned.plan.has_changes and not planned.plan.errors:
            tidied: list[str] = []
            if planned.housekeeping:  # what a stopped run left: tidied under the lock, with nothing to confirm
                tidied = list((await apply_planned(client, planned, saved=saved, notify=note)).tidied)
                for line in tidied:
                    stdout().print(f"Housekeeping: {line}.", markup=False)
            if saved is not None:  # its plan is not shown again: say what became of it
                left = "left " if saved.has_changes else ""
                written = "" if tidied else "; nothing was written"
                stdout().print(
                    f"No changes {left}to apply: the instance matches the specs "
                    f"({plural(planned.plan.summary.no_op, 'resource')}){written}.",
                    markup=False,
                )
            return EXIT_OK
        if asking:
            # a person reading the plan is not the instance being slow; Ctrl-C ends the wait at once
            with client.deadline.paused(), prompting():
                answer = ask("\nApply these changes? Only 'yes' is accepted", default="no")
            if answer.strip().lower() != "yes":
                stderr().print("Apply cancelled; nothing was changed.", markup=False)
                return EXIT_ERROR
        progress.writing(planned.plan.resource_changes)
        applying = apply_planned(
            client,
            planned,
            saved=saved,
            parallelism=parallelism,
            allow_delete_all=allow_delete_all,
            journal_path=journal_file(state_dir, planned_stack),
            progress=progress.advance,
            notify=note,
        )
        del planned  # apply_planned lets go of the plan once its writes are compiled: nothing here holds it
        with cycle_collector(True):  # the writes' answers leave cycles behind (``runtime``)
            result = await applying
        progress.stop()
        stdout().print(apply_text(result, verbose=verbose))
        return EXIT_OK if result.ok else EXIT_ERROR

    stats: RequestLog = []
    try:
        with lock_hints(instance, env):
            try:
                code = _run(project, instance, env, insecure, ca_bundle, body, timeout, stats=stats)
            finally:
                if verbose:
                    _print_stats(stats)
    except Interrupted as exc:
        command = "mtls-config apply" + rerun_arguments(spec_paths, instance, env, insecure, ca_bundle)
        if exc.result is None:
            rerun = f"Nothing was applied. Run '{command}' again when you are ready."
        else:
            rerun = (
                f"Run '{command}' again: it recognises what this run wrote and finishes the rest, never making a "
                "record twice."
            )
        from mtls_config.render import interrupted_text

        stderr().print(interrupted_text(exc, signal_name=signal_name(exc), stack=stack_name, rerun=rerun))
        raise typer.Exit(exit_code(exc)) from None
    raise typer.Exit(code)


@report_errors
def drift(
    paths: PathsArg = None,
    instance: InstanceOpt = None,
    env: EnvOpt = None,
    output_format: Annotated[
        Literal["text", "json", "junit", "markdown", "openmetrics"],
        typer.Option(
            "--format",
            "-f",
            metavar="text|json|junit|markdown|openmetrics",
            help="text, json, junit (one test case per resource), markdown, or openmetrics (Prometheus metrics: "
            "expiry per certificate, drift per kind, the run's time and outcome).",
        ),
    ] = "text",
    json_alias: JsonAlias = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write the report to a file (openmetrics: replaced at once, as node-exporter's textfile collector "
            "needs).",
        ),
    ] = None,
    fail_on_expiry: Annotated[
        bool, typer.Option("--fail-on-expiry", help="Count certificates expiring within warnDays as drift.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also report what the run cost in requests (on stderr).")
    ] = False,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = DEFAULT_COMMAND_TIMEOUT,
) -> None:
    """Report how the instance differs from the specs. Read-only, no prompts: made for cron jobs.

    Reports changed, missing and unexpected (owned but no longer in the specs) records and certificates
    expiring within their warnDays. Exit 0 clean, 2 drift, 1 error.

    A failed run still writes its report (the error as a failing case, or success 0 in the metrics).

    Examples:
      mtls-config drift specs/
      mtls-config drift --env prod --format junit --out drift.xml
      mtls-config drift --env prod --format openmetrics --out /var/lib/node_exporter/textfile/mtls.prom
    """
    from mtls_config.fleet import Result, environments, fleet_document, label, plan_environments

    output_format = chosen_format(output_format, json_alias)
    stats: RequestLog = []
    results: list[Result]
    try:
        envs = environments(find_project(paths), env, instance)
        connection = _connector(instance, insecure, ca_bundle, stats, timeout)
        results = run_command(plan_environments(paths, envs, connection, catch=True, seal=False))  # no plan shown
    except Interrupted:
        raise  # stopped by a signal: no report of a run that did not finish, the exit code says it
    except MtlsConfigError as exc:  # before any environment ran (the project file): still a report, with the error
        results = [(env, exc)]
    from mtls_config.render import (  # loaded with the engine, after the first request
        drift_error_report,
        drift_junit,
        drift_markdown,
        drift_openmetrics,
        drift_report,
        drift_text,
    )

    if verbose:
        _print_stats(stats)
    reports: list[dict[str, object]] = []
    codes: list[int] = []
    texts: list[str] = []
    for env_name, result in results:
        name = label(env_name)
        if isinstance(result, MtlsConfigError):
            # A failed run still writes its report, the error as a failing case: a CI publisher shows it.
            codes.append(EXIT_ERROR)
            if len(results) > 1:
                stderr().print(f"error: {name}: {redact(str(result))}", markup=False)
            else:
                print_error(result)
            stack_name, target = _drift_target(paths, env_name, instance)
            report = drift_error_report(result.message, stack=stack_name, instance=target, hint=result.hint or "")
            if len(results) > 1:
                report["environment"] = name
            reports.append(report)
            if output_format == "markdown":
                texts.append(drift_markdown(report))
            elif output_format == "text":
                texts.append(_plain(drift_text(report)))
            continue
        report = drift_report(result.plan, fail_on_expiry=fail_on_expiry)
        if len(results) > 1:
            report["environment"] = name
        reports.append(report)
        codes.append(EXIT_ERROR if result.plan.errors else (EXIT_CHANGES if report["drift"] else EXIT_OK))
        if output_format == "text":
            rendered = drift_text(report)
            if len(results) > 1:
                stdout().print(f"== environment {name} ==", markup=False)
            stdout().print(rendered)
            texts.append(_plain(rendered))
        elif output_format == "markdown":
            texts.append(drift_markdown(report))
    if output_format == "json":
        data: object = reports[0] if len(results) == 1 and reports else fleet_document(reports)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    elif output_format == "junit":
        text = drift_junit(*reports)
    elif output_format == "openmetrics":
        text = drift_openmetrics(*reports)
    else:
        text = "\n".join(texts)
    text = redact(text)  # a message the instance echoed may be in it
    if out is not None and output_format == "openmetrics":
        write_shared(out, text)  # node-exporter's textfile collector runs as another user
    elif out is not None:
        write_private(out, text)
    elif output_format != "text":
        sys.stdout.write(text)
    raise typer.Exit(_worst(codes))


def _plain(text: object) -> str:
    return str(getattr(text, "plain", text)) + "\n"


def _drift_target(paths: list[Path] | None, env: str | None, instance: str | None) -> tuple[str, str]:
    """The stack and instance a failed drift run was about, as far as they can be told without it."""
    try:
        project = find_project(paths)
    except MtlsConfigError:
        return "unknown", instance or "unknown"
    chosen = project.project.environments.get(env) if env is not None else None
    target = instance or (chosen.instance if chosen is not None else None) or os.environ.get(INSTANCE_VARIABLE)
    return project.project.stack, target or LOCAL_INSTANCE


@report_errors
def import_(
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Folder to write the specs and files to.")
    ] = Path("imported"),
    name_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--filter", metavar="GLOB", help="Only records whose name matches this glob (e.g. 'acme*'). Repeatable."
        ),
    ] = None,
    instance: InstanceOpt = None,
    env: EnvOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist in --out.")] = False,
    output_format: FormatOpt = "text",
    json_alias: JsonAlias = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list every file written (specs, keystores, certificates).")
    ] = False,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = DEFAULT_COMMAND_TIMEOUT,
) -> None:
    """Adopt an existing hand-made set-up: write specs for the instance's mTLS records and own them.

    Writes keystores, trust-store certificates, protocol profiles and bindings of messages that use mutual
    auth, downloads keystore/DER files next to them, uses secret references (environment variables) for
    passwords, and records the records in the stack's inventory, so the written specs plan as no-op.
    When the instance holds none of these records (or none that --filter matches), nothing is written.

    Examples:
      mtls-config import --instance https://acme.service-now.com --out specs/imported
      mtls-config import --env prod --filter 'acme*' --out specs/acme
    """
    from mtls_config.importer import ImportResult, import_to

    fmt = chosen_format(output_format, json_alias)
    project = find_project(None)

    async def main() -> tuple[str, ImportResult]:
        async with connect(
            instance, env_name=env, project=project, insecure=insecure, ca_bundle=ca_bundle, timeout=timeout
        ) as client:
            result = await import_to(
                client, project.project.stack, out, patterns=name_filter or [], force=force, notify=note
            )
            return client.settings.url, result

    from mtls_config.render import interrupted_text

    try:
        with lock_hints(instance, env):
            url, result = run_command(main())
    except Interrupted as exc:
        rerun = (
            "Run the same 'mtls-config import' again to finish (with --force once its files exist): it converges."
            if exc.stage
            else "Nothing was written. Run 'mtls-config import' again when you are ready."
        )
        text = interrupted_text(exc, signal_name=signal_name(exc), stack=project.project.stack, rerun=rerun)
        stderr().print(text)
        raise typer.Exit(exit_code(exc)) from None
    written = sorted(str(out / rel) for rel in result.files) if result.imported else []
    if fmt == "json":
        print_json(
            {
                "instance": url,
                "stack": project.project.stack,
                "out": str(out),
                "imported": result.imported,
                "skipped": result.skipped,
                "files": written,
                "variables": result.variables,
            }
        )
        return
    for line in [*(f"imported {a}" for a in result.imported), *(f"skipped {s}" for s in result.skipped)]:
        stdout().print(line, markup=False)
    if not result.imported:
        matching = f" matching --filter {' '.join(name_filter)}" if name_filter else ""
        stdout().print(
            f"Nothing to import: {url} holds no keystores, trust-store certificates, protocol profiles or "
            f"mutual-auth message bindings{matching} that the stack does not own already. Nothing was written.",
            markup=False,
        )
        return
    if verbose:
        for path in written:
            stdout().print(f"  wrote {path}", markup=False)
    # The next step reaches the same instance as this one: the options that found it, said again.
    flags = target_flags(instance, env)
    secrets = (
        f"Set {', '.join(result.variables)} (the keystore passwords they reference), then run"
        if result.variables
        else "Run"
    )
    stdout().print(
        f"Wrote the specs to {out}/ ({plural(len(written), 'file')}). {secrets} "
        f"'mtls-config plan {shlex.quote(str(out))}{flags}': it should show no changes.",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(plan)
    app.command()(apply)
    app.command()(drift)
    app.command("import")(import_)
