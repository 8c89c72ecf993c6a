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
    assert (DOCS / "reference" / "specs.md").read_text() == spec_reference(), "run: python tools/write_references.py"
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


def _readme_first_command() -> str:
    """The README's first command (install, apply the example, plan again) without its install steps: the tests
    run installed."""
    block = _sh_blocks((ROOT / "README.md").read_text())[0]
    steps = [s.strip() for s in block.split("&&")]
    runs = [s.replace(".venv/bin/", "") for s in steps if "mtls-config " in s]
    assert [s.split()[1] for s in runs] == ["apply", "plan"], block
    assert all("venv" in s or "pip install" in s for s in steps if "mtls-config " not in s), block
    return " && ".join(runs)


def test_quickstart_runs_word_for_word_after_the_readme(tmp_path: Path) -> None:
    """The README's first command, then every sh block of docs/quickstart.md, in order, from a checkout's root
    (the install block is skipped: the tests run installed), as a new user runs them."""
    shutil.copytree(
        ROOT / "specs" / "examples", tmp_path / "specs" / "examples", ignore=shutil.ignore_patterns(".mtls-config")
    )
    blocks = [_readme_first_command(), *_sh_blocks((DOCS / "quickstart.md").read_text())]
    script = "set -euo pipefail\n" + "\necho '== next block'\n".join(blocks)
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stderr, result.stderr  # no library warning reaches a user's terminal
    readme, *steps = result.stdout.split("== next block\n")
    assert "8 applied" in readme and "No changes" in readme
    assert "valid: 8 resources" in steps[0]
    # step 3 plans the copy against its own, empty instance: eight creates, then applies them
    assert "8 to create" in steps[1] and "8 applied" in steps[1], steps[1]
    assert "No changes" in steps[2]
    assert (tmp_path / "my-mtls" / "globex-client.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    # the copy's editor comments point at schemas that are there
    comments = 0
    for spec in (tmp_path / "my-mtls").rglob("*.yaml"):
        for target in re.findall(r"^# yaml-language-server: \$schema=(\S+)$", spec.read_text(), re.M):
            comments += 1
            schema = (spec.parent / target).resolve()
            assert schema.is_file() and schema.is_relative_to(tmp_path / "my-mtls"), f"{spec}: {target}"
    assert comments == 3


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


_CODE = re.compile(r"```[a-z]*\n(.*?)```|`([^`\n]+)`", re.S)
_USE = re.compile(r"^(?:\$ |- |run: |.*&& |.*\|\| )*mtls-config ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")
# Names in code that read like a command and are not one: the REST message the contract tests create.
_NOT_COMMANDS = {"mtls-config contract"}


def test_every_command_the_docs_show_is_one_help_lists() -> None:
    """A command line in the docs or the README (a code block's line or a code span that starts with
    'mtls-config WORD') names a command that --help lists: not a hidden one, not one that is gone."""

    def listed(command: object) -> dict[str, object]:
        subs = getattr(command, "commands", {}) or {}
        return {n: s for n, s in subs.items() if not getattr(s, "hidden", False)}

    top = listed(command_tree(app))
    seen, unknown = 0, []
    for path in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        for code in _CODE.finditer(path.read_text()):
            for line in (code.group(1) if code.group(1) is not None else code.group(2)).splitlines():
                use = _USE.match(line.strip())
                if use is None or use.group(0) in _NOT_COMMANDS:
                    continue
                seen += 1
                command = top.get(use.group(1))
                subs = listed(command) if command is not None else {}
                if command is None or (use.group(2) is not None and subs and use.group(2) not in subs):
                    unknown.append(f"{path.relative_to(ROOT)}: {use.group(0)}")
    assert seen > 50
    assert not unknown, unknown


def test_every_file_the_docs_cite_is_in_the_repository() -> None:
    """A file the docs name in a code span (`docs/x.md`, `mtls_config/emulator/tables.py`) is one a reader of the
    repository can open; the facts the emulator follows are in docs/sources/, not in a folder outside it."""
    cited = re.compile(r"`((?:\.\./)*[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+\.(?:md|py|txt|json|yaml|toml))`")
    missing = []
    for path in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        if path.parent == DOCS / "sources":
            continue  # the fact sheets cite files of other repositories (the vendor's documentation)
        for name in cited.findall(path.read_text()):
            if name.startswith(".github/") or name.startswith(".vscode/"):
                continue  # files of the user's repository that a recipe shows how to write
            if not any((base / name).exists() for base in (ROOT, path.parent, DOCS, ROOT / "mtls_config")):
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, missing
    for name in ("servicenow-api.md", "servicenow-facts-2.md", "keystores-and-tls.md"):
        assert (DOCS / "sources" / name).is_file()
