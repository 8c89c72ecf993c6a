"""``mtls-config lock status|release``: look at, and clear, the stack lock an apply holds on the instance."""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from mtls_config.cli.console import EXIT_OK, print_json, report_errors, stderr, stdout
from mtls_config.cli.interrupt import run_command
from mtls_config.cli.options import FormatOpt, JsonAlias, chosen_format
from mtls_config.cli.target import TimeoutOpt, connect
from mtls_config.client import InstanceClient
from mtls_config.errors import LockError
from mtls_config.settings import DEFAULT_COMMAND_TIMEOUT
from mtls_config.spec.project import load_project

if TYPE_CHECKING:
    # The lock's records (and the inventory code under them) load when a lock is read, not with every command
    # that shows a lock's hints: plan's and apply's first request goes out before them (issue 18).
    from mtls_config.lock import LockInfo

T = TypeVar("T")

lock_app = typer.Typer(
    name="lock",
    help="The stack lock that apply takes on the instance: show it, or remove one left by a dead run.",
    no_args_is_help=True,
)

InstanceOpt = Annotated[
    str | None,
    typer.Option(
        "--instance",
        "-i",
        metavar="URL",
        help="Instance URL or 'local'. Default: the --env's instance, else $SN_INSTANCE, else local.",
    ),
]
EnvOpt = Annotated[
    str | None, typer.Option("--env", "-e", metavar="NAME", help="A named environment of the project file.")
]
StackOpt = Annotated[
    str | None, typer.Option("--stack", metavar="NAME", help="Stack name. Default: the project file's.")
]
InsecureOpt = Annotated[bool, typer.Option("--insecure", help="Allow plain http:// to a non-loopback instance.")]
CaBundleOpt = Annotated[
    str | None, typer.Option("--ca-bundle", metavar="FILE", help="PEM bundle to verify the instance's TLS.")
]


def _with_client(
    instance: str | None,
    env: str | None,
    stack: str | None,
    insecure: bool,
    ca_bundle: str | None,
    body: Callable[[InstanceClient, str], Awaitable[T]],
    timeout: float = DEFAULT_COMMAND_TIMEOUT,
) -> T:
    project = load_project(Path.cwd())
    name = stack or project.project.stack

    async def main() -> T:
        async with connect(
            instance, env_name=env, project=project, insecure=insecure, ca_bundle=ca_bundle, timeout=timeout
        ) as client:
            return await body(client, name)

    return run_command(main())


def target_flags(instance: str | None, env: str | None, stack: str | None = None) -> str:
    """The options that make a lock command reach the same instance and stack as the command that met the lock."""
    flags = ""
    if env is not None:
        flags += f" --env {shlex.quote(env)}"
    if instance is not None:
        flags += f" --instance {shlex.quote(instance)}"
    if stack is not None:
        flags += f" --stack {shlex.quote(stack)}"
    return flags


@contextmanager
def lock_hints(instance: str | None, env: str | None) -> Iterator[None]:
    """A lock held by another run stops the command with the exact 'lock status'/'lock release' commands for its
    target (the library cannot know which options found the instance)."""
    try:
        yield
    except LockError as exc:
        from mtls_config.lock import LockInfo, release_hint

        if not isinstance(exc.held, LockInfo):
            raise
        raise LockError(exc.message, hint=release_hint(exc.held, target_flags(instance, env))) from None


def note(text: str) -> None:
    """Something a person should know about the lock (a dead run's lock taken over), on stderr."""
    stderr().print(f"note: {text}", markup=False)


def _as_dict(info: LockInfo, now: dt.datetime) -> dict[str, object]:
    from mtls_config.lock import lock_name

    return {
        "stack": info.stack,
        "record": lock_name(info.stack),
        "holder": info.holder,
        "acquired": info.acquired.isoformat() if info.acquired else None,
        "expires": info.expires.isoformat() if info.expires else None,
        "expired": info.expired(now),
        "holder_gone": info.holder_gone(),
    }


@lock_app.command("status")
@report_errors
def status(
    instance: InstanceOpt = None,
    env: EnvOpt = None,
    stack: StackOpt = None,
    output_format: FormatOpt = "text",
    json_alias: JsonAlias = False,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = DEFAULT_COMMAND_TIMEOUT,
) -> None:
    """Show who holds the stack's lock and until when. Exit 0 when free or expired, 2 when held.

    Example: mtls-config lock status --env prod
    """

    from mtls_config.lock import read_lock

    async def body(client: InstanceClient, name: str) -> tuple[str, LockInfo | None]:
        return name, await read_lock(client, name)

    name, info = _with_client(instance, env, stack, insecure, ca_bundle, body, timeout)
    now = dt.datetime.now(dt.UTC)
    if chosen_format(output_format, json_alias) == "json":
        print_json({"stack": name, "lock": _as_dict(info, now) if info else None})
    elif info is None:
        stdout().print(f"stack '{name}' is not locked", markup=False)
    else:
        gone = (
            "; its process ran on this machine and is gone: the next apply here takes the lock over"
            if info.holder_gone()
            else ""
        )
        stdout().print(f"stack '{name}' lock: {info.describe(now)}{gone}", markup=False)
    raise typer.Exit(2 if info is not None and not info.expired(now) else EXIT_OK)


@lock_app.command("release")
@report_errors
def release(
    instance: InstanceOpt = None,
    env: EnvOpt = None,
    stack: StackOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Remove the lock even though it has not expired (its run must be dead).")
    ] = False,
    insecure: InsecureOpt = False,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = DEFAULT_COMMAND_TIMEOUT,
) -> None:
    """Remove the stack's lock left behind by a run that died. A lock that has not expired needs --force
    (make sure its holder, user@host:pid, is really gone first), unless its holder ran on this machine and is
    known to be gone. Rarely needed: a dead run's lock frees itself within two minutes, and an apply on the
    dead run's machine takes it over at once.

    Example: mtls-config lock release --env prod --force
    """

    from mtls_config.lock import force_release, read_lock

    async def body(client: InstanceClient, name: str) -> tuple[str, LockInfo | None]:
        now = dt.datetime.now(dt.UTC)
        info = await read_lock(client, name)
        if info is not None and not info.expired(now) and not info.holder_gone() and not force:
            raise LockError(
                f"stack '{name}' lock is {info.describe(now)}",
                hint="if that run is really dead, run "
                f"'mtls-config lock release --force{target_flags(instance, env, stack)}'",
            )
        return name, await force_release(client, name) if info is not None else None

    name, removed = _with_client(instance, env, stack, insecure, ca_bundle, body, timeout)
    if removed is None:
        stdout().print(f"stack '{name}' is not locked; nothing to release", markup=False)
        raise typer.Exit(EXIT_OK)
    stdout().print(f"released the lock of stack '{name}' ({removed.describe(dt.datetime.now(dt.UTC))})", markup=False)
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    app.add_typer(lock_app)
