"""Counts in output are said in words that agree with them: "1 resource", never "1 resources" or "error(s)"."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mtls_config.cli.main import main
from mtls_config.wording import plural

PACKAGE = Path(__file__).resolve().parents[2] / "mtls_config"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_plural() -> None:
    assert [plural(n, "resource") for n in (0, 1, 2)] == ["0 resources", "1 resource", "2 resources"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"


def test_one_resource_is_said_in_the_singular(stack_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for spec in (stack_dir / "resources").glob("*.yaml"):
        spec.unlink()
    (stack_dir / "resources" / "only.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: Root CA}\n"
        "spec: {file: ../certs/demo-root-ca.pem}\n"
    )
    code, out, _ = run(["validate"], capsys)
    assert code == 0 and "valid: 1 resource in 1 file (1 TrustStoreCert)" in out
    assert run(["apply", "--auto-approve"], capsys)[0] == 0
    code, out, _ = run(["plan"], capsys)
    assert code == 0 and "The instance matches the specs (1 resource)." in out
    code, out, _ = run(["drift"], capsys)
    assert code == 0 and "No drift (1 resource in sync)." in out
    code, out, _ = run(["drift", "--format", "markdown"], capsys)
    assert code == 0 and "**No drift**: 1 of 1 resource in sync." in out


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal's text but docstrings, an f-string's literal parts joined (its placeholders as {})."""
    out: list[tuple[int, str]] = []
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if id(node) in docstrings:
            continue
        if isinstance(node, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in node.values]
            out.append((node.lineno, "".join(str(p) for p in parts)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
    return out


def test_no_message_says_a_count_with_a_parenthesised_plural() -> None:
    """'error(s)', 'file(s)': the package says the count's own word (wording.plural). The emulator is left out:
    its texts are the instance's, word for word ("Missing required parameter(s)")."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "emulator" in path.relative_to(PACKAGE).parts:
            continue
        for line, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            if "(s)" in text and "http(s)" not in text:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}")
    assert not found, "\n".join(found)


_COUNTISH = re.compile(r"^(n|sent|ours)$|count|total|number")
_NOUN_AFTER = re.compile(r"^ (?:[a-z-]+ )?[a-z]+s\b")


def _counted(value: ast.expr) -> bool:
    """Whether an f-string placeholder is a count: ``len(...)`` or a name that says it is one."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "len":
        return True
    name = value.attr if isinstance(value, ast.Attribute) else value.id if isinstance(value, ast.Name) else ""
    return bool(_COUNTISH.search(name))


def test_no_message_puts_a_count_before_a_fixed_plural() -> None:
    """'{len(x)} resources' reads '1 resources' when there is one: a count before a noun goes through
    wording.plural, even where the code around it means more than one today."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "emulator" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            for value, after in zip(node.values, node.values[1:], strict=False):
                if (
                    isinstance(value, ast.FormattedValue)
                    and _counted(value.value)
                    and isinstance(after, ast.Constant)
                    and _NOUN_AFTER.match(str(after.value))
                ):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "\n".join(found)
