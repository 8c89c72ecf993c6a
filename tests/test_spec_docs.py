"""docs/specs.md stays true: it names every field the schemas know, its YAML examples validate, and the
error example it shows is what the CLI prints."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from .conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "specs.md"
SCHEMAS = REPO_ROOT / "schemas"
CASES = REPO_ROOT / "tests" / "cases" / "spec_errors"


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def fenced(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", doc_text(), flags=re.DOTALL | re.MULTILINE)


def property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                names.update(value)
            names |= property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= property_names(value)
    return names


@pytest.mark.parametrize("schema", sorted(p.name for p in SCHEMAS.glob("*.json")))
def test_every_field_is_documented(schema: str) -> None:
    text = doc_text()
    fields = property_names(json.loads((SCHEMAS / schema).read_text(encoding="utf-8")))
    missing = sorted(f for f in fields if not re.search(rf"`(\w+\.)*{re.escape(f)}`", text))
    assert missing == [], f"docs/specs.md does not mention these fields of {schema}: {missing}"


def test_every_kind_has_a_section() -> None:
    for kind in ("KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding"):
        assert f"\n## {kind}\n" in doc_text()


def test_yaml_examples_validate_against_the_schemas() -> None:
    resource = Draft202012Validator(json.loads((SCHEMAS / "resource.schema.json").read_text(encoding="utf-8")))
    project = Draft202012Validator(json.loads((SCHEMAS / "project.schema.json").read_text(encoding="utf-8")))
    checked = 0
    for block in fenced("yaml"):
        if re.search(r"^\.\.\.$", block, flags=re.MULTILINE) or "${" in block:
            continue  # an elided example, or one before variable substitution
        for document in yaml.safe_load_all(block):
            validator = resource if "apiVersion" in document else project
            assert [e.message for e in validator.iter_errors(document)] == [], block
            checked += 1
    assert checked >= 8


def test_the_error_example_is_what_the_cli_prints() -> None:
    expected = (CASES / "problems-across-two-files" / "expected.txt").read_text(encoding="utf-8")
    assert any(block == expected for block in fenced("text")), "update docs/specs.md from the corpus case"


def test_the_literal_secret_example_is_what_the_cli_prints() -> None:
    line = (CASES / "literal-password" / "expected.txt").read_text(encoding="utf-8").splitlines()[0]
    assert line in doc_text()


def test_vscode_settings_example_is_json_with_existing_schemas() -> None:
    [settings] = fenced("json")
    for schema_path in json.loads(settings)["yaml.schemas"]:
        assert (REPO_ROOT / Path(schema_path)).is_file()
