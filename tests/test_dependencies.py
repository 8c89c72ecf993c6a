"""The dependency files agree: every lower bound in pyproject.toml is pinned in .ci/lowest.txt (which
``MTLS_CI_DEPS=lowest .ci/run`` tests), and constraints.txt pins every package the project and its dev extras
install, transitive ones included, so a fresh machine gets exactly what CI tested."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def test_every_lower_bound_is_pinned_in_lowest() -> None:
    lowest = _pins(ROOT / ".ci" / "lowest.txt")
    bounds = {}
    for requirement in _declared():
        found = [s.version for s in requirement.specifier if s.operator == ">="]
        assert all(s.operator in (">=", "!=") for s in requirement.specifier), f"{requirement}: no upper caps"
        if found and requirement.name not in ("ruff", "mypy"):  # the linters are pinned by constraints.txt
            bounds[canonicalize_name(requirement.name)] = found[0]
    assert bounds == lowest


def test_constraints_pin_everything_the_project_installs() -> None:
    pins = _pins(ROOT / "constraints.txt")
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in pins.values()), pins
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    other = sorted(f"{n} {installed[n]}" for n, v in pins.items() if n in installed and installed[n] != v)
    if other:  # the graph below is that of the installed versions, which is constraints.txt's only when locked
        pytest.skip(f"not the locked install (MTLS_CI_DEPS=newest or lowest): {', '.join(other[:3])}...")
    missing: set[str] = set()
    seen: set[str] = set()
    todo = [r for r in _declared() if r.marker is None or r.marker.evaluate({"extra": "dev"})]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        if name not in pins:
            missing.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            sub = Requirement(text)
            wanted = sub.marker is None or any(
                sub.marker.evaluate({"extra": extra}) for extra in (requirement.extras or {""})
            )
            if wanted:
                todo.append(sub)
    assert not missing, f"not in constraints.txt (run .ci/update-constraints): {sorted(missing)}"
