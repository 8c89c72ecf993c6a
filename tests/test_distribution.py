"""How users get mtls-config, exercised as far as this machine allows: the sdist and the wheel (built with the
locked backend and checked by tools/check_dist.py), the container image's definition (Dockerfile: what it copies
exists, what it runs is run here), and the GitHub Action (action.yml: its steps run against the embedded instance).

What is not run here: the image is not built (no container engine on this machine), and installing into a clean
virtual environment needs the package index, so tools/install.sh runs in .ci/dist (.ci/run), on the wheel."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from mtls_config import __version__

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "tools"))
import check_dist  # noqa: E402  (a script of tools/, not a package)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN_", "MTLS_", "GITHUB_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as .ci/dist builds them, from a copy of the tracked files in which the
    example holds a local instance's state and bytecode (as after the README's first command): neither may ship."""
    tmp = tmp_path_factory.mktemp("dist")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    source = tmp / "src"
    for name in filter(None, tracked.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    state = source / "specs" / "examples" / "two-partners" / ".mtls-config"
    state.mkdir()
    (state / "instance.db").write_bytes(b"SQLite format 3\0")
    (source / "mtls_config" / "__pycache__").mkdir()
    (source / "mtls_config" / "__pycache__" / "errors.cpython-311.pyc").write_bytes(b"\0")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp / "out"), str(source)],
        check=True,
        capture_output=True,
        env=_env(),
    )
    return tmp / "out"


def test_the_sdist_and_the_wheel_are_complete_and_their_metadata_valid(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [
        f"mtls_config-{__version__}-py3-none-any.whl",
        f"mtls_config-{__version__}.tar.gz",
    ]
    assert check_dist.problems(dist) == []
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as wheel:
        names = wheel.namelist()
    assert not [n for n in names if n.startswith(("tests/", "bench/", "tools/", "specs/", "docs/"))]
    assert "mtls_config/py.typed" in names and "mtls_config/emulator/app.py" in names
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        members = [m.split("/", 1)[1] for m in sdist.getnames() if "/" in m]
    assert "specs/examples/two-partners/mtls-config.yaml" in members and "docs/quickstart.md" in members
    assert not [m for m in members if ".mtls-config" in m.split("/") or "__pycache__" in m]


def _rewrite_wheel(wheel: Path, target: Path, edit: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w") as out:
        for item in src.infolist():
            if item.filename in edit:
                continue
            out.writestr(item, src.read(item.filename))
        for name, data in edit.items():
            if data is not None:
                out.writestr(name, data)


def test_the_check_finds_what_would_be_wrong(dist: Path, tmp_path: Path) -> None:
    """The checker does check: a wheel with tests in it, without py.typed, with another version or another
    console script, and an sdist without the lock, are each reported."""
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as src:
        metadata_name = next(n for n in src.namelist() if n.endswith("/METADATA"))
        metadata = src.read(metadata_name)
        entry_points_name = metadata_name.replace("METADATA", "entry_points.txt")
    cases: dict[str, tuple[dict[str, bytes | None], str]] = {
        "tests": ({"tests/test_x.py": b""}, "outside the package"),
        "typed": ({"mtls_config/py.typed": None}, "py.typed"),
        "version": (
            {metadata_name: metadata.replace(f"Version: {__version__}".encode(), b"Version: 9.9.9")},
            "Version is '9.9.9'",
        ),
        "script": ({entry_points_name: b"[console_scripts]\nmtls=mtls_config.cli.main:run\n"}, "console scripts"),
        "deps": ({metadata_name: metadata.replace(b"Requires-Dist: httpx>=0.27.0\n", b"")}, "Requires-Dist"),
    }
    for name, (edit, expected) in cases.items():
        case = tmp_path / name
        case.mkdir()
        _rewrite_wheel(wheel, case / wheel.name, edit)
        found = check_dist.wheel_problems(case / wheel.name)
        assert any(expected in p for p in found), (name, found)
    sdist = next(dist.glob("*.tar.gz"))
    lean = tmp_path / "lean" / sdist.name
    lean.parent.mkdir()
    with tarfile.open(sdist) as src, tarfile.open(lean, "w:gz") as out:
        for member in src.getmembers():
            if not member.name.endswith("/constraints.txt"):
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
    assert any("lacks constraints.txt" in p for p in check_dist.sdist_problems(lean))


# -- the container image --------------------------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """A Dockerfile's instructions (keyword, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_the_dockerfile_copies_what_exists_and_runs_what_ci_runs() -> None:
    instructions = _instructions((ROOT / "Dockerfile").read_text())
    stages = [i for i, (k, _) in enumerate(instructions) if k == "FROM"]
    assert len(stages) == 2
    final = instructions[stages[-1] :]
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    # the Python that constraints.txt was resolved and tested with
    python = re.search(r"# Python (3\.\d+)", (ROOT / "constraints.txt").read_text())
    assert python is not None and args["PYTHON_IMAGE"] == f"python:{python.group(1)}-slim"
    copied_scripts = set()
    for keyword, arguments in instructions:
        if keyword != "COPY" or "--from=" in arguments:
            continue
        parts = [p for p in shlex.split(arguments) if not p.startswith("--")]
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            tracked = subprocess.run(["git", "ls-files", source], cwd=ROOT, capture_output=True, text=True).stdout
            assert tracked.strip(), f"COPY {source}: not tracked by git (a fresh clone would not have it)"
            copied_scripts.add(Path(source).name)
    runs = " ".join(a for k, a in instructions if k == "RUN")
    # the image installs and checks itself with the scripts CI runs on the wheel (.ci/dist)
    dist_script = (ROOT / ".ci" / "dist").read_text()
    for script in ("install.sh", "check-quickstart.sh"):
        assert script in copied_scripts and f"/opt/mtls-config-setup/{script}" in runs
        assert f"tools/{script}" in dist_script
    assert "python -m build --no-isolation" in runs and "-c constraints.txt" in runs
    # the dependencies' wheels are built where a compiler is, and installed from them alone, as .ci/dist does
    assert (
        "pip wheel" in runs
        and "--wheel-dir /wheels" in runs
        and "/opt/mtls-config-setup/constraints.txt /tmp/wheels" in runs
    )
    assert "pip wheel" in dist_script and '"$work/wheels"' in dist_script
    users = [a for k, a in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert [a for k, a in final if k == "ENTRYPOINT"] == ['["mtls-config"]']
    # keytool is not needed for plan/apply/drift: no Java is installed
    assert not re.search(r"\b(openjdk|default-jre|java)\b", runs)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "**/.mtls-config" in ignored and ".venv" in ignored


def test_the_image_quickstart_script_runs_on_an_installed_mtls_config(tmp_path: Path) -> None:
    """The script the image RUNs as its user (and .ci/dist on the clean install), on this install."""
    example = tmp_path / "example"
    shutil.copytree(ROOT / "specs" / "examples" / "two-partners", example)
    (example / ".mtls-config").mkdir(exist_ok=True)  # a state left behind must not make the plan empty
    result = subprocess.run(
        ["sh", str(ROOT / "tools" / "check-quickstart.sh"), str(example)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 applied, 0 failed" in result.stdout and "No changes" in result.stdout
    assert "No drift (8 resources in sync)" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example"]  # it works in a copy of its own


def test_the_install_script_fails_on_bad_use() -> None:
    result = subprocess.run(["sh", str(ROOT / "tools" / "install.sh")], capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr


# -- the GitHub Action ------------------------------------------------------------------------------------------------


def _action() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    return data


def _expand(text: str, context: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        assert key in context, f"the test does not know ${{{{ {key} }}}}"
        return context[key]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _condition(text: str, context: dict[str, str]) -> bool:
    """The `if:` of a step, as GitHub evaluates the simple form this action uses: `a == 'b' && ...`."""
    result = True
    for term in text.split("&&"):
        match = re.fullmatch(r"\s*([\w.-]+)\s*==\s*'([^']*)'\s*", term)
        assert match is not None, f"an `if:` this test cannot evaluate: {text}"
        result = result and context[match.group(1)] == match.group(2)
    return result


def run_action(inputs: dict[str, str], workspace: Path, tmp: Path) -> tuple[int, dict[str, str], str]:
    """Run action.yml's steps as a runner would, with these inputs: `run:` steps in bash -eo pipefail with their
    env, working-directory and `if:` evaluated, outputs read from GITHUB_OUTPUT. `uses:` steps (setup-python) and
    the install step are this test's environment instead: it runs on this install (.ci/dist runs install.sh)."""
    action = _action()
    given = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    given.update(inputs)
    files = {name: tmp / name.lower() for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_PATH")}
    for path in files.values():
        path.write_text("")
    context = {f"inputs.{k}": v for k, v in given.items()}
    context |= {"github.action_path": str(ROOT), "runner.temp": str(tmp), "github.token": "not-used"}
    context |= {"github.event_name": "schedule" if inputs.get("command") == "drift" else "pull_request"}
    context |= {"github.event.pull_request.number": "7"}
    outputs: dict[str, str] = {}
    for step in action["runs"]["steps"]:
        if "run" not in step or step.get("id") == "install":
            continue
        if "if" in step and not _condition(step["if"], context):
            continue
        env = _env(**{k: _expand(str(v), context) for k, v in step.get("env", {}).items()})
        env |= {name: str(path) for name, path in files.items()} | {"GITHUB_ACTION_PATH": str(ROOT)}
        cwd = workspace / _expand(step.get("working-directory", "."), context)
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        step_outputs = dict(line.split("=", 1) for line in files["GITHUB_OUTPUT"].read_text().splitlines() if line)
        files["GITHUB_OUTPUT"].write_text("")
        outputs |= step_outputs
        context |= {f"steps.{step.get('id')}.outputs.{k}": v for k, v in step_outputs.items()}
        if result.returncode != 0:
            return result.returncode, outputs, files["GITHUB_STEP_SUMMARY"].read_text() + result.stdout + result.stderr
    return 0, outputs, files["GITHUB_STEP_SUMMARY"].read_text()


@pytest.fixture
def spec_repo(tmp_path: Path) -> Path:
    """A copy of the example, as a user's repository whose 'prod' environment is the embedded instance."""
    repo = tmp_path / "workspace" / "specs-repo"
    shutil.copytree(ROOT / "specs" / "examples" / "two-partners", repo, ignore=shutil.ignore_patterns(".mtls-config"))
    (repo / "mtls-config.yaml").write_text(
        "stack: payments\nspecs: [resources]\nenvironments:\n  prod: {instance: local}\n"
    )
    return repo


def test_the_action_installs_from_its_own_checkout_with_the_lock() -> None:
    steps = {step.get("id"): step for step in _action()["runs"]["steps"]}
    install = steps["install"]["run"]
    assert 'tools/install.sh" "$MTLS_ACTION_PATH" ' in install and '"$MTLS_ACTION_PATH/constraints.txt"' in install
    assert steps["install"]["env"]["MTLS_ACTION_PATH"] == "${{ github.action_path }}"
    # no input is spliced into a script's text: they arrive as environment variables
    for step in steps.values():
        assert "inputs." not in step.get("run", ""), step.get("name")


def test_the_action_plans_on_a_pull_request(spec_repo: Path, tmp_path: Path) -> None:
    workspace = spec_repo.parent
    inputs = {"command": "plan", "env": "prod", "working-directory": "specs-repo"}
    code, outputs, summary = run_action(inputs, workspace, tmp_path)
    assert code == 0, summary  # changes (exit 2) do not fail a plan
    assert outputs == {"exit-code": "2", "report": "plan.md"}
    assert "### mtls-config plan: `payments` on `local`" in summary
    assert (spec_repo / "plan.md").read_text() in summary
    assert (spec_repo / "plan.json").is_file()
    # the comment step runs only when asked, with gh: here the step is reached and its command line is what runs
    step = next(s for s in _action()["runs"]["steps"] if "Comment" in s.get("name", ""))
    assert _condition(
        step["if"], {"inputs.command": "plan", "inputs.comment": "true", "github.event_name": "pull_request"}
    )
    assert not _condition(
        step["if"], {"inputs.command": "plan", "inputs.comment": "false", "github.event_name": "pull_request"}
    )


def test_the_action_checks_drift_on_a_schedule(spec_repo: Path, tmp_path: Path) -> None:
    workspace = spec_repo.parent
    subprocess.run(
        ["mtls-config", "apply", "--env", "prod", "--auto-approve"],
        cwd=spec_repo,
        env=_env(),
        check=True,
        capture_output=True,
    )
    base = {"command": "drift", "env": "prod", "working-directory": "specs-repo"}
    code, outputs, summary = run_action(base, workspace, tmp_path)
    assert code == 0, summary
    assert outputs == {"exit-code": "0", "report": "drift.xml"}
    assert "<testsuites" in (spec_repo / "drift.xml").read_text() and "no drift" in summary
    code, outputs, summary = run_action(base | {"format": "openmetrics"}, workspace, tmp_path)
    assert code == 0 and outputs["report"] == "drift.prom", summary
    families = {f.name for f in text_string_to_metric_families((spec_repo / "drift.prom").read_text())}
    assert "mtls_config_certificate_expiration_timestamp_seconds" in families
    spec = spec_repo / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("port: 443", "port: 8443"))
    code, outputs, summary = run_action(base, workspace, tmp_path)
    assert code == 2 and outputs["exit-code"] == "2" and "drift detected" in summary  # the step fails on drift
    code, outputs, summary = run_action(base | {"fail-on-drift": "false", "format": "markdown"}, workspace, tmp_path)
    assert code == 0 and outputs["exit-code"] == "2", summary
    assert "**Drift detected**" in summary  # a Markdown report goes into the job summary too
    code, outputs, summary = run_action(base | {"format": "yaml"}, workspace, tmp_path)
    assert code == 1 and "format must be junit, openmetrics, json or markdown" in summary
