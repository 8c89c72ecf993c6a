"""Reference documentation generated from the code, so it cannot drift from it.

``spec_reference()`` walks the pydantic spec models (every kind, every field, its type, default and
description); ``cli_reference(command)`` walks the CLI's click command tree (every command, argument and
option with its help). ``docs/reference/`` holds their output; a test keeps it fresh.

Never imports the client, the emulator or the CLI (the command tree is passed in).
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mtls_config.resources.registry import kind_named
from mtls_config.secrets import SecretRef
from mtls_config.spec.models import MODELS
from mtls_config.spec.project import Project


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        optional = any(a is type(None) for a in args)
        return " or ".join(names) + (" (optional)" if optional else "")
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (list, typing.List):  # noqa: UP006
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin in (dict, typing.Dict):  # noqa: UP006
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}" if args else "map"
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return {str: "string", int: "integer", bool: "boolean", float: "number"}.get(annotation, str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default is not PydanticUndefined:
        value = info.default
        if value is None:
            return "—"
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if value == "":
            return '`""`'
        return f"`{value}`"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return f"`{value}`" if value not in ({}, []) else f"`{'{}' if value == {} else '[]'}`"
    return "**required**"


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        found.append(annotation)
    for arg in typing.get_args(annotation):
        found.extend(_nested_models(arg))
    return found


def _model_table(model: type[BaseModel]) -> list[str]:
    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        alias = info.alias or name
        desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{alias}` | {_type_name(info.annotation)} | {_default(info)} | {desc} |")
    return lines


def _models_below(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    for info in model.model_fields.values():
        for nested in _nested_models(info.annotation):
            if nested not in seen:
                seen.add(nested)
                out.append(nested)
                out.extend(_models_below(nested, seen))
    return out


def spec_reference() -> str:
    lines = [
        "# Spec reference",
        "",
        "Generated from the spec models by `python tools/write_references.py`; do not edit by hand.",
        "",
        "Every spec document has the same envelope:",
        "",
        "```yaml",
        "apiVersion: mtls-config/v1",
        "kind: KeyStore | TrustStoreCert | ProtocolProfile | MessageBinding",
        "metadata: {name: ..., adopt: false}",
        "spec: {...}",
        "```",
        "",
        "| field | type | description |",
        "|---|---|---|",
        "| `apiVersion` | string | Always `mtls-config/v1`. |",
        "| `kind` | " + " or ".join(f"`{k}`" for k in MODELS) + " | The resource kind (sections below). |",
        "| `metadata` | object | Identity: `name` (the natural key) and `adopt`. |",
        "| `spec` | object | The kind's fields. |",
        "",
    ]
    seen: set[type[BaseModel]] = {SecretRef}
    for kind, model in MODELS.items():
        lines += [f"## {kind}", "", kind_named(kind).intro, ""]
        metadata = model.model_fields["metadata"].annotation
        spec = model.model_fields["spec"].annotation
        assert inspect.isclass(metadata) and issubclass(metadata, BaseModel)
        assert inspect.isclass(spec) and issubclass(spec, BaseModel)
        lines += ["### metadata", "", *_model_table(metadata), "", "### spec", "", *_model_table(spec), ""]
        for nested in _models_below(spec, seen):
            lines += [f"### {nested.__name__}", "", (nested.__doc__ or "").strip(), "", *_model_table(nested), ""]
    lines += ["## SecretRef", "", (SecretRef.__doc__ or "").strip(), "", *_model_table(SecretRef), ""]
    lines += [
        "## Project file (`mtls-config.yaml`)",
        "",
        (Project.__doc__ or "").strip(),
        "",
        *_model_table(Project),
        "",
    ]
    for nested in _models_below(Project, set()):
        lines += [f"### {nested.__name__}", "", (nested.__doc__ or "").strip(), "", *_model_table(nested), ""]
    return "\n".join(lines).rstrip() + "\n"


def _walk(command: Any, prefix: str) -> list[tuple[str, Any]]:
    out = [(prefix, command)]
    for name in sorted(getattr(command, "commands", {}) or {}):
        sub = command.commands[name]
        if getattr(sub, "hidden", False):
            continue
        out.extend(_walk(sub, f"{prefix} {name}"))
    return out


def cli_reference(root: Any, prog: str = "mtls-config") -> str:
    """Markdown for every command of a click command tree (typer's ``get_command(app)``)."""
    lines = [
        "# CLI reference",
        "",
        "Generated from the command line by `python tools/write_references.py`; do not edit by hand.",
        "Every command takes `-h`/`--help`. Exit codes: 0 ok / no changes, 1 error, 2 changes (plan) or drift (drift).",
        "",
    ]
    for path, command in _walk(root, prog):
        lines += [f"## `{path}`", ""]
        help_text = inspect.cleandoc(command.help or "")
        if help_text:
            lines += ["```text", help_text, "```", ""]
        params = [p for p in command.params if p.name not in ("help",)]
        if params:
            lines += ["| argument / option | help |", "|---|---|"]
            for p in params:
                if getattr(p, "hidden", False):
                    continue
                names = ", ".join(f"`{o}`" for o in [*p.opts, *getattr(p, "secondary_opts", [])])
                text = (getattr(p, "help", None) or "").replace("|", "\\|").replace("\n", " ")
                metavar = (p.metavar or "").replace("|", "\\|")
                if type(p).__name__.endswith("Argument"):
                    names = f"`{metavar}`" if metavar else f"`{p.name.upper()}`" + (" ..." if p.nargs == -1 else "")
                elif metavar:
                    names += f" `{metavar}`"
                lines.append(f"| {names} | {text} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
