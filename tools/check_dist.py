"""Check a built sdist and wheel before anyone installs them: their metadata (what PyPI and pip read) and their
contents (the wheel holds the package only; the sdist what a user of it needs). What ``twine check`` would say
about the metadata, with the standard library's ``email`` parser and ``packaging``'s validating reader, and more.

    python tools/check_dist.py DIST_DIR       (exit 1 and one line per problem when something is wrong)

.ci/dist runs it on what ``python -m build`` wrote; tests/test_distribution.py runs ``problems()``.
"""

from __future__ import annotations

import configparser
import email.parser
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

from packaging.metadata import Metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mtls_config"
# Tracked files a user of the sdist needs, beside the package: the README's and the docs' own commands use them.
SDIST_NEEDS = ("README.md", "LICENSE", "constraints.txt", "pyproject.toml", "PKG-INFO", "mtls_config/py.typed")
SDIST_FOLDERS = ("docs/", "schemas/", "specs/examples/")
NEVER = (".mtls-config/", "__pycache__/", ".pyc", ".venv", ".git/", "results")


def _tracked(prefix: str) -> set[str]:
    """Files git tracks under ``prefix`` (what a clone has), relative to the repository."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", prefix], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return {name for name in out.split("\0") if name and (ROOT / name).is_file()}


def _requirement(r: Requirement) -> tuple[str, str, str]:
    return canonicalize_name(r.name), str(r.specifier), str(r.marker or "")


def _metadata_problems(text: str, where: str) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    problems: list[str] = []
    try:
        meta = Metadata.from_email(text, validate=True)
    except Exception as exc:  # packaging raises an ExceptionGroup of every invalid field
        details = getattr(exc, "exceptions", [exc])
        return [f"{where}: invalid metadata: {d}" for d in details]
    raw = email.parser.Parser().parsestr(text)
    version = re.search(r'^__version__ = "([^"]+)"', (ROOT / PACKAGE / "__init__.py").read_text(), re.M)
    assert version is not None, "mtls_config/__init__.py has no __version__"
    expected = {
        "Name": (str(meta.name), project["name"]),
        "Version": (str(meta.version), version.group(1)),
        "Summary": (meta.summary, project["description"]),
        "Requires-Python": (str(meta.requires_python), project["requires-python"]),
        "License-Expression": (meta.license_expression, project["license"]),
        "License-File": (meta.license_files, ["LICENSE"]),
        "Description-Content-Type": (raw.get("Description-Content-Type", "").split(";")[0], "text/markdown"),
        "Description": (raw.get_payload().strip(), (ROOT / "README.md").read_text(encoding="utf-8").strip()),
    }
    for field, (got, wanted) in expected.items():
        if got != wanted:
            shown = "the README" if field == "Description" else repr(wanted)
            problems.append(f"{where}: {field} is {str(got)[:60]!r}, not {shown}")
    declared = {_requirement(Requirement(r)) for r in project["dependencies"]}
    for extra, requirements in project["optional-dependencies"].items():
        declared |= {_requirement(Requirement(f"{r}; extra == '{extra}'")) for r in requirements}
    found = {_requirement(r) for r in meta.requires_dist or []}
    if found != declared:
        problems.append(f"{where}: Requires-Dist differs from pyproject.toml: {sorted(found ^ declared)}")
    extras = {str(e) for e in meta.provides_extra or []}
    if extras != set(project["optional-dependencies"]):
        problems.append(f"{where}: Provides-Extra {sorted(extras)}, not {sorted(project['optional-dependencies'])}")
    return problems


def wheel_problems(wheel: Path) -> list[str]:
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
        if info is None:
            return [f"{wheel.name}: no METADATA"]
        dist_info = info.rsplit("/", 1)[0] + "/"
        problems += _metadata_problems(archive.read(info).decode("utf-8"), wheel.name)
        entry_points = configparser.ConfigParser(delimiters=("=",))
        entry_points.read_string(archive.read(dist_info + "entry_points.txt").decode("utf-8"))
        scripts = dict(entry_points["console_scripts"]) if entry_points.has_section("console_scripts") else {}
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        if scripts != project["scripts"]:
            problems.append(f"{wheel.name}: console scripts {scripts}, not pyproject.toml's {project['scripts']}")
    outside = sorted(n for n in names if not n.startswith((f"{PACKAGE}/", dist_info)))
    if outside:
        problems.append(f"{wheel.name}: holds files outside the package: {outside[:5]}")
    problems += [f"{wheel.name}: holds {n}" for n in sorted(names) if any(bad in n for bad in NEVER)]
    package = {n for n in names if n.startswith(f"{PACKAGE}/")}
    missing = sorted(_tracked(PACKAGE) - package)
    if missing:
        problems.append(f"{wheel.name}: lacks package files: {missing[:5]}")
    if f"{PACKAGE}/py.typed" not in names:
        problems.append(f"{wheel.name}: lacks {PACKAGE}/py.typed (type checkers would ignore our hints)")
    if dist_info + "licenses/LICENSE" not in names:
        problems.append(f"{wheel.name}: lacks the LICENSE")
    return problems


def sdist_problems(sdist: Path) -> list[str]:
    problems: list[str] = []
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
        top = members[0].split("/", 1)[0]
        names = {m.split("/", 1)[1] for m in members if "/" in m and archive.getmember(m).isfile()}
        pkg_info = archive.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        problems += _metadata_problems(pkg_info.read().decode("utf-8"), sdist.name)
    problems += [f"{sdist.name}: lacks {n}" for n in SDIST_NEEDS if n not in names]
    for folder in (PACKAGE + "/", *SDIST_FOLDERS):
        missing = sorted(_tracked(folder) - names)
        if missing:
            problems.append(f"{sdist.name}: lacks tracked files of {folder}: {missing[:5]}")
    problems += [f"{sdist.name}: holds {n}" for n in sorted(names) if any(bad in n for bad in NEVER)]
    return problems


def problems(dist: Path) -> list[str]:
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"{dist}: expected one wheel and one sdist, found {[p.name for p in [*wheels, *sdists]]}"]
    return wheel_problems(wheels[0]) + sdist_problems(sdists[0])


def main() -> int:
    dist = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist"
    found = problems(dist)
    for line in found:
        print(line)
    if not found:
        print(f"{dist}: the wheel and the sdist are complete and their metadata valid")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
