"""A stack as a command sees it: the project file, the specs of one environment, and the stack's name.

Every command that reads specs from a project goes through ``load_stack``: the paths given on the command line,
else the environment's (or the project's) spec paths; the spec repository's root; the environment's variables.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mtls_config.spec.project import ProjectFile, load_project

if TYPE_CHECKING:
    # The loader and its models load with the specs (in the spec thread of a run: after its first request went out,
    # issue 18), not with the project file.
    from mtls_config.spec.loader import SpecSet


@dataclass(frozen=True)
class Stack:
    project: ProjectFile
    specs: SpecSet
    env: str | None = None

    @property
    def name(self) -> str:
        return self.project.project.stack


def find_project(paths: Sequence[Path] | None) -> ProjectFile:
    """The project file of the first path given, else of the working folder (a default one when there is none)."""
    return load_project(paths[0] if paths else Path.cwd())


def load_stack(paths: Sequence[Path] | None, env: str | None = None, *, project: ProjectFile | None = None) -> Stack:
    """The stack of ``paths`` (default: the spec paths of ``env``, else of the project) with ``env``'s variables.
    ``project``: the project file when the caller has read it already."""
    from mtls_config.spec.loader import load_specs

    project = project or find_project(paths)
    spec_paths = list(paths) if paths else project.spec_paths(env)
    specs = load_specs(spec_paths, root=project.spec_root(spec_paths), variables=project.variables(env))
    return Stack(project, specs, env)
