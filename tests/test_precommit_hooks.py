"""The pre-commit hook definitions run as pre-commit would run them: the entry, plus the matching changed
files when the hook takes file names."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _hooks() -> dict[str, dict[str, object]]:
    return {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def _run(hook: dict[str, object], repo: Path, changed: list[str]) -> subprocess.CompletedProcess[str]:
    files = [f for f in changed if re.search(str(hook["files"]), f)]
    argv = shlex.split(str(hook["entry"])) + (files if hook.get("pass_filenames", True) else [])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def test_validate_hook_checks_the_whole_tree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "specs" / "examples" / "two-partners", repo, ignore=shutil.ignore_patterns(".mtls-config"))
    hook = _hooks()["mtls-config-validate"]
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    ok = _run(hook, repo, ["resources/acme-payments.yaml"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # a change in one file that breaks a reference held by another is caught: the whole tree is validated
    spec = repo / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("name: acmemtls", "name: acmetls"))
    bad = _run(hook, repo, ["resources/acme-payments.yaml"])
    assert bad.returncode == 1
    assert "protocolProfile 'acmemtls' names no ProtocolProfile" in bad.stderr


def test_keystore_lint_hook_lints_changed_keystores(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "specs" / "examples" / "two-partners", repo, ignore=shutil.ignore_patterns(".mtls-config"))
    hook = _hooks()["mtls-config-keystore-lint"]
    result = _run(hook, repo, ["keystores/globex-client.jks", "resources/globex-orders.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "globex-client.jks" in result.stdout + result.stderr
    (repo / "keystores" / "broken.jks").write_bytes(b"\xfe\xed\xfe\xed\x00\x00\x00\x02 truncated")
    broken = _run(hook, repo, ["keystores/broken.jks"])
    assert broken.returncode == 1 and "K01" in broken.stdout + broken.stderr
