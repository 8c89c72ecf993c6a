"""The documentation stays true: generated references are fresh and complete, the site builds in strict mode,
and the commands in the quickstart and the CI recipes run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from mtls_config.cli.helptext import command_tree
from mtls_config.cli.main import app
from mtls_config.reference import cli_reference, spec_reference
from mtls_config.spec.models import MODELS
from mtls_config.spec.project import Project

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent


def _commands(command: object, prefix: str = "mtls-config") -> list[str]:
    out = [prefix]
    for name, sub in sorted((getattr(command, "commands", {}) or {}).items()):
        if not getattr(sub, "hidden", False):
            out += _commands(sub, f"{prefix} {name}")
    return out


def _fields(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        stack = [info.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel) and t not in seen:
                seen.add(t)
                names |= _fields(t, seen)
            stack.extend(getattr(t, "__args__", ()))
    return names


def test_generated_references_are_fresh() -> None:
    assert (DOCS / "reference" / "specs.md").read_text() == spec_reference(), "run: mtls-config reference"
    assert (DOCS / "reference" / "cli.md").read_text() == cli_reference(command_tree(app))


def test_every_command_and_spec_field_is_documented() -> None:
    cli_doc = (DOCS / "reference" / "cli.md").read_text()
    commands = _commands(command_tree(app))
    assert len(commands) > 15
    missing = [c for c in commands if f"## `{c}`" not in cli_doc]
    assert not missing, missing
    spec_doc = (DOCS / "reference" / "specs.md").read_text()
    fields: set[str] = set()
    for model in [*MODELS.values(), Project]:
        fields |= _fields(model, set())
    assert {"warnDays", "keyStore", "protocolProfile", "fromEnv", "fromFile", "adopt", "environments"} <= fields
    missing = sorted(f for f in fields if f"`{f}`" not in spec_doc)
    assert not missing, missing


def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "quickstart" / "index.html").exists()


def _sh_blocks(markdown: str) -> list[str]:
    blocks = []
    for match in re.finditer(r"(<!-- doc-test: skip -->\s*)?```sh\n(.*?)```", markdown, re.S):
        if not match.group(1):
            blocks.append(match.group(2))
    return blocks


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN_", "MTLS_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def test_quickstart_runs_word_for_word(tmp_path: Path) -> None:
    """Every sh block of docs/quickstart.md, in order, from a checkout's root (the install block is skipped:
    the tests run installed)."""
    shutil.copytree(
        ROOT / "specs" / "examples", tmp_path / "specs" / "examples", ignore=shutil.ignore_patterns(".mtls-config")
    )
    script = "set -euo pipefail\n" + "\n".join(_sh_blocks((DOCS / "quickstart.md").read_text()))
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stderr, result.stderr  # no library warning reaches a user's terminal
    assert "valid: 8 resources" in result.stdout
    assert "8 applied" in result.stdout
    assert "No changes" in result.stdout
    assert (tmp_path / "my-mtls" / "globex-client.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")


def _recipe_commands(markdown: str) -> list[str]:
    """The mtls-config command lines of a CI recipe (GitHub 'run:' steps, GitLab 'script:' items)."""
    commands = []
    for line in markdown.splitlines():
        text = line.strip()
        text = re.sub(r"^(- )?(run: )?", "", text)
        if text.startswith("mtls-config "):
            commands.append(text)
    return commands


@pytest.mark.parametrize("recipe", ["github-actions.md", "gitlab-ci.md"])
def test_ci_recipe_commands_run(recipe: str, tmp_path: Path) -> None:
    """The recipe's commands, in order, against a copy of the example whose 'prod' environment is the local instance."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "specs" / "examples" / "two-partners", repo, ignore=shutil.ignore_patterns(".mtls-config"))
    (repo / "mtls-config.yaml").write_text(
        "stack: payments\nspecs: [resources]\nenvironments:\n  prod: {instance: local}\n"
    )
    commands = _recipe_commands((DOCS / "recipes" / recipe).read_text())
    assert any("plan --env prod" in c for c in commands) and any("drift" in c for c in commands)
    script = "set -euo pipefail\n" + "\n".join(commands)
    result = subprocess.run(["bash", "-c", script], cwd=repo, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, script + "\n" + result.stdout + result.stderr
    assert "### mtls-config plan" in (repo / "plan.md").read_text()
    assert "<testsuites" in (repo / "drift.xml").read_text()


def test_kubernetes_cronjob_command_runs(tmp_path: Path) -> None:
    """The CronJob's container command, against a copy of the example whose 'prod' is the local instance."""
    import json
    import shlex

    import yaml

    text = (DOCS / "recipes" / "kubernetes-cronjob.md").read_text()
    manifest = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))  # type: ignore[union-attr]
    container = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "specs" / "examples" / "two-partners", repo, ignore=shutil.ignore_patterns(".mtls-config"))
    (repo / "mtls-config.yaml").write_text(
        "stack: payments\nspecs: [resources]\nenvironments:\n  prod: {instance: local}\n"
    )
    env = _env()
    subprocess.run(
        ["mtls-config", "apply", "--env", "prod", "--auto-approve"], cwd=repo, env=env, check=True, capture_output=True
    )
    result = subprocess.run(container["command"], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, shlex.join(container["command"]) + "\n" + result.stdout + result.stderr
    assert json.loads(result.stdout)["drift"] is False
