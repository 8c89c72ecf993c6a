"""Runs over several environments at once (``--env 'prod-*'``): which environments a pattern names, each one
planned concurrently against its own instance (one's error does not stop the others), and the JSON document that
holds their results.

How an environment's instance is reached is the caller's (the CLI's ``connect``): this module gets a ``Connect``
that opens one. Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtls_config.access import load_while_reading
from mtls_config.errors import MtlsConfigError, ProjectError
from mtls_config.instance import Instance
from mtls_config.spec.project import ProjectFile
from mtls_config.spec.stack import Stack, find_project, load_stack

if TYPE_CHECKING:
    from mtls_config.engine import Planned

FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Connection:
    """An open connection to an environment's instance, and the instance's name as plans give it."""

    instance: Instance
    name: str


# Opens the instance of an environment (None: the project's default target) of a project.
Connect = Callable[[ProjectFile, str | None], AbstractAsyncContextManager[Connection]]
Result = tuple[str | None, "Planned | MtlsConfigError"]


def load_with_engine(paths: Sequence[Path] | None, env: str | None, project: ProjectFile) -> Stack:
    """The stack's specs, and the engine's modules, loaded in ``access.load_while_reading``'s thread: a run's
    first request goes out before they load (they are a tenth of a second or two of a run's start), not after."""
    import mtls_config.engine  # noqa: F401

    return load_stack(paths, env, project=project)


def is_pattern(env: str | None) -> bool:
    return env is not None and any(c in env for c in "*?[")


def environments(project: ProjectFile, env: str | None, instance: str | None) -> list[str | None]:
    """The environments a run covers: one, or every one matching a glob (a fleet run)."""
    if env is None or not is_pattern(env):
        return [env]
    names = sorted(n for n in project.project.environments if fnmatch.fnmatchcase(n, env))
    if not names:
        known = ", ".join(sorted(project.project.environments)) or "none defined"
        raise ProjectError(f"no environment matches {env!r} (known: {known})")
    if instance is not None:
        raise ProjectError("--instance cannot be combined with an --env pattern (each environment names its instance)")
    return list(names)


async def plan_environments(
    paths: Sequence[Path] | None,
    envs: Sequence[str | None],
    connect: Connect,
    *,
    prune: bool = False,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    catch: bool = False,
    seal: bool = True,
) -> list[Result]:
    """Plan every environment concurrently. With one environment its error is raised (returned as its result with
    ``catch``); with several, each environment's ``MtlsConfigError`` is its result and the others go on.
    ``seal=False``: plans without their checksum (read only as text)."""
    project = find_project(paths)

    async def one(env: str | None) -> Planned:
        async with connect(project, env) as connection:
            # the specs are read while the plan's first request (alone: it proves the credentials) is out
            stack, grants = await load_while_reading(
                connection.instance, functools.partial(load_with_engine, paths, env, project)
            )
            from mtls_config.engine import make_planned  # loaded by load_with_engine

            return await make_planned(
                connection.instance,
                stack.specs,
                instance_name=connection.name,
                stack=stack.name,
                prune=prune,
                targets=targets,
                excludes=excludes,
                seal=seal,
                grants=grants,
            )

    if len(envs) == 1:
        try:
            return [(envs[0], await one(envs[0]))]
        except MtlsConfigError as exc:
            if not catch:
                raise
            return [(envs[0], exc)]
    results = await asyncio.gather(*(one(e) for e in envs), return_exceptions=True)
    out: list[Result] = []
    for env, result in zip(envs, results, strict=True):
        if isinstance(result, MtlsConfigError):
            out.append((env, result))
        elif isinstance(result, BaseException):
            raise result
        else:
            out.append((env, result))
    return out


def label(env: str | None) -> str:
    return env or "default"


def fleet_document(environments: Any) -> dict[str, Any]:
    """The JSON document of a fleet run: its environments' results, versioned."""
    return {"format_version": FORMAT_VERSION, "environments": environments}
