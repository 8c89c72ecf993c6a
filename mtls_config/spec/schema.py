"""JSON Schemas generated from the spec models: one per kind, one for any spec document, one for the
project file. ``schemas/`` in the repository is this module's output; a test keeps it fresh.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from mtls_config.spec.models import MODELS, Resource
from mtls_config.spec.project import Project

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _file_name(kind: str) -> str:
    out = "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-")
    return f"{out}.schema.json"


def build_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema document."""
    schemas: dict[str, dict[str, Any]] = {}
    for kind, model in MODELS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schemas[_file_name(kind)] = {"$schema": DRAFT, **schema}
    document = TypeAdapter(Resource).json_schema(by_alias=True, mode="validation")
    schemas["resource.schema.json"] = {
        "$schema": DRAFT,
        "title": "mtls-config spec document",
        "description": "One resource document of an mtls-config spec file (any kind).",
        **document,
    }
    project = Project.model_json_schema(by_alias=True, mode="validation")
    schemas["project.schema.json"] = {"$schema": DRAFT, **project}
    return schemas


def render_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in sorted(build_schemas().items()):
        path = out_dir / name
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    return written
