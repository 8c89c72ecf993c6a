"""Where a project's files are, and how a path is shown: what reading the project file needs, apart from the spec
loader (its models are the spec thread's to load, after the run's first request: issue 18).

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

PROJECT_FILE_NAMES = ("mtls-config.yaml", "mtls-config.yml")


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def default_spec_root(paths: Sequence[Path]) -> Path:
    """The spec repository when no project file says: the git repository holding the paths; else the working
    folder when it holds them all; else their common folder. Spec files in ``resources/`` commonly refer to
    ``../certs/``, so the folder of the paths alone would be too narrow."""
    folders = [(p if p.is_dir() else p.parent).resolve() for p in paths] or [Path.cwd().resolve()]
    common = Path(*_common_parts(folders))
    for folder in (common, *common.parents):
        if (folder / ".git").exists():
            return folder
    cwd = Path.cwd().resolve()
    return cwd if common.is_relative_to(cwd) else common


def _common_parts(dirs: Iterable[Path]) -> list[str]:
    parts_list = [d.parts for d in dirs]
    common: list[str] = []
    for group in zip(*parts_list, strict=False):
        if all(g == group[0] for g in group):
            common.append(group[0])
        else:
            break
    return common
