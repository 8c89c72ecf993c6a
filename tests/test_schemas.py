"""The JSON Schemas in ``schemas/``: fresh (byte for byte what ``mtls-config schema`` writes), valid Draft 2020-12
schemas, accepting every example spec and rejecting typical mistakes, as an editor would with them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from mtls_config.cli.main import main

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO / "schemas"
SPECS = REPO / "specs"
PROJECT_FILE_NAMES = {"mtls-config.yaml", "mtls-config.yml"}
KIND_SCHEMAS = {
    "KeyStore": "key-store.schema.json",
    "TrustStoreCert": "trust-store-cert.schema.json",
    "ProtocolProfile": "protocol-profile.schema.json",
    "MessageBinding": "message-binding.schema.json",
}
SCHEMA_COMMENT = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)


# Editors' YAML language server implements Draft 7: the schemas must mean the same under both drafts.
DRAFTS = {"2020-12": Draft202012Validator, "7": Draft7Validator}


def validator(name: str, draft: str = "2020-12") -> Draft202012Validator | Draft7Validator:
    return DRAFTS[draft](json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


def spec_files() -> list[Path]:
    return sorted(p for p in SPECS.rglob("*.y*ml") if p.name not in PROJECT_FILE_NAMES)


def project_files() -> list[Path]:
    return sorted(p for p in SPECS.rglob("*.y*ml") if p.name in PROJECT_FILE_NAMES)


def errors(name: str, document: Any, draft: str = "2020-12") -> list[str]:
    return [e.message for e in validator(name, draft).iter_errors(document)]


def test_committed_schemas_are_what_the_command_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    written = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in SCHEMAS.iterdir())
    assert written == committed, "schemas/ is stale: run .venv/bin/mtls-config schema --out schemas"
    for name in written:
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (SCHEMAS / name).read_bytes(), f"schemas/{name} is stale: run mtls-config schema --out schemas"
    # Each example is a spec repository of its own, with the schemas its editor comments point at (docs/specs.md).
    for example in sorted(p.parent for p in project_files()):
        copied = sorted(p.name for p in (example / "schemas").iterdir())
        assert copied == written, f"{example}/schemas is stale: run mtls-config schema --out {example}/schemas"
        for name in written:
            assert (example / "schemas" / name).read_bytes() == (tmp_path / name).read_bytes(), f"{example}: {name}"


def test_one_schema_per_kind_plus_document_and_project() -> None:
    assert {p.name for p in SCHEMAS.iterdir()} == {
        *KIND_SCHEMAS.values(),
        "resource.schema.json",
        "project.schema.json",
    }


@pytest.mark.parametrize("name", sorted(p.name for p in SCHEMAS.glob("*.json")))
def test_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_there_are_example_specs_to_check() -> None:
    assert len(spec_files()) >= 2
    assert project_files()


@pytest.mark.parametrize("draft", DRAFTS)
@pytest.mark.parametrize("path", spec_files(), ids=lambda p: str(p.relative_to(SPECS)))
def test_every_example_document_validates(path: Path, draft: str) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert documents
    for document in documents:
        assert errors("resource.schema.json", document, draft) == []
        assert errors(KIND_SCHEMAS[document["kind"]], document, draft) == []


@pytest.mark.parametrize("draft", DRAFTS)
@pytest.mark.parametrize("path", project_files(), ids=lambda p: str(p.relative_to(SPECS)))
def test_every_example_project_file_validates(path: Path, draft: str) -> None:
    assert errors("project.schema.json", yaml.safe_load(path.read_text(encoding="utf-8")), draft) == []


@pytest.mark.parametrize("path", spec_files() + project_files(), ids=lambda p: str(p.relative_to(SPECS)))
def test_editor_schema_comment_points_at_a_schema(path: Path) -> None:
    found = SCHEMA_COMMENT.findall(path.read_text(encoding="utf-8"))
    assert found, f"{path} has no '# yaml-language-server: $schema=...' line"
    example = next(p for p in path.parents if (p / "mtls-config.yaml").is_file())
    for target in found:
        schema = (path.parent / target).resolve()
        assert schema.is_file(), f"{path}: {target} does not exist"
        # inside the example: the comment still holds in a copy of it (the quickstart starts from one)
        assert schema.is_relative_to(example.resolve()), f"{path}: {target} points out of {example}"


def keystore(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mtls-config/v1",
        "kind": "KeyStore",
        "metadata": {"name": "partner-client"},
        "spec": {"file": "client.jks", "password": {"fromEnv": "KEYSTORE_PASSWORD"}, **spec},
    }


@pytest.mark.parametrize("draft", DRAFTS)
def test_a_good_document_is_accepted(draft: str) -> None:
    assert errors("resource.schema.json", keystore(), draft) == []


BAD_DOCUMENTS: dict[str, dict[str, Any]] = {
    "literal password": keystore(password="hunter2"),
    "secret with both sources": keystore(password={"fromEnv": "A", "fromFile": "a.txt"}),
    "secret with no source": keystore(password={}),
    "unknown field in spec": keystore(passphrase={"fromEnv": "A"}),
    "keystore with file and build": keystore(build={"key": {"fromEnv": "K"}, "cert": "c.pem"}),
    "unknown format": keystore(format="p12"),
    "negative warnDays": keystore(warnDays=-1),
    "unknown kind": {**keystore(), "kind": "Keystore"},
    "wrong apiVersion": {**keystore(), "apiVersion": "mtls-config/v2"},
    "unknown top-level field": {**keystore(), "labels": {}},
    "missing name": {**keystore(), "metadata": {}},
    "profile named https": {
        "apiVersion": "mtls-config/v1",
        "kind": "ProtocolProfile",
        "metadata": {"name": "https"},
        "spec": {"keyStore": "partner-client"},
    },
    "profile name with digits": {
        "apiVersion": "mtls-config/v1",
        "kind": "ProtocolProfile",
        "metadata": {"name": "mauth2"},
        "spec": {"keyStore": "partner-client"},
    },
    "port out of range": {
        "apiVersion": "mtls-config/v1",
        "kind": "ProtocolProfile",
        "metadata": {"name": "mauth"},
        "spec": {"keyStore": "partner-client", "port": 70000},
    },
    "inline pem with format der": {
        "apiVersion": "mtls-config/v1",
        "kind": "TrustStoreCert",
        "metadata": {"name": "partner-ca"},
        "spec": {"format": "der", "pem": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"},
    },
    "trust store cert with neither file nor pem": {
        "apiVersion": "mtls-config/v1",
        "kind": "TrustStoreCert",
        "metadata": {"name": "partner-ca"},
        "spec": {"format": "pem"},
    },
    "binding with graphql message": {
        "apiVersion": "mtls-config/v1",
        "kind": "MessageBinding",
        "metadata": {"name": "orders"},
        "spec": {"message": {"type": "graphql", "name": "Orders"}, "protocolProfile": "mauth"},
    },
    "a list instead of a document": [keystore()],  # type: ignore[dict-item]
}


@pytest.mark.parametrize("draft", DRAFTS)
@pytest.mark.parametrize("label", list(BAD_DOCUMENTS))
def test_schema_rejects_bad_documents(label: str, draft: str) -> None:
    assert errors("resource.schema.json", BAD_DOCUMENTS[label], draft) != []


@pytest.mark.parametrize(
    "project",
    [
        {"stack": "Payments Prod"},
        {"environments": {"prod": {"auth": {"password": "hunter2"}, "instance": "https://x.service-now.com"}}},
        {"environments": {"prod": {}}},
        {"stack": "payments", "unknown": 1},
    ],
    ids=["stack-name-pattern", "auth-password-literal", "environment-without-instance", "unknown-field"],
)
@pytest.mark.parametrize("draft", DRAFTS)
def test_project_schema_rejects_bad_project_files(project: dict[str, Any], draft: str) -> None:
    assert errors("project.schema.json", project, draft) != []
