"""Load spec files and directories into a validated ``SpecSet``, or report every problem at once.

Stages: find files -> read YAML with marks (``yamlsource``) -> validate each document against its kind's
model -> check the set as a whole (duplicate names, dangling references). Every problem from every stage
is collected and raised together as one ``SpecError``. Nothing secret is read here.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import operator
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mtls_config.errors import Problem, ProjectError, SpecError
from mtls_config.frozen import slot_maker
from mtls_config.names import folded
from mtls_config.spec.models import (
    API_VERSION,
    KINDS,
    MODELS,
    AnyResource,
    KeyStore,
    MessageBinding,
    ProtocolProfile,
    SpecContext,
    TrustStoreCert,
)
from mtls_config.spec.paths import PROJECT_FILE_NAMES, default_spec_root, display_path
from mtls_config.spec.yamlsource import Loc, SourceDocument, read_documents
from mtls_config.wording import did_you_mean

SPEC_SUFFIXES = (".yaml", ".yml")
R = TypeVar("R", bound=AnyResource)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a resource was defined, for messages that point back at the spec. Slotted: one per resource, kept for
    the run."""

    path: str  # as displayed
    line: int
    column: int
    base_dir: Path  # the spec file's folder (secret ``fromFile`` paths start here)
    # (line, column) by field path: the document's own marks (``yamlsource.Mark`` is such a tuple), not a copy.
    marks: Mapping[Loc, tuple[int, int]] = field(default_factory=dict, compare=False, hash=False)

    def at(self, *loc: str | int) -> str:
        """``path:line:col`` of a field (or of the nearest enclosing one)."""
        for end in range(len(loc), 0, -1):
            mark = self.marks.get(tuple(loc[:end]))
            if mark is not None:
                return f"{self.path}:{mark[0]}:{mark[1]}"
        return f"{self.path}:{self.line}:{self.column}"


# ``Origin(path, line, column, base_dir, marks)`` with its slots filled directly (0.66 -> 0.37 us, one per resource)
_origin = slot_maker(Origin)


@dataclass(frozen=True)
class SpecSet:
    """The desired resources, validated and cross-checked, in a stable order."""

    resources: tuple[AnyResource, ...]
    origins: dict[str, Origin]  # by address, in the order of ``resources`` (``placed`` reads them side by side)
    files: tuple[Path, ...]

    def of_kind(self, model: type[R]) -> list[R]:
        return [r for r in self.resources if isinstance(r, model)]

    def placed(self) -> Iterator[tuple[AnyResource, Origin]]:
        """Each resource with its origin, without making its address to look the origin up (about 0.5 us a
        resource, and the desired state and lint each ask for every one)."""
        return zip(self.resources, self.origins.values(), strict=True)

    def get(self, address: str) -> AnyResource | None:
        for r in self.resources:
            if r.address == address:
                return r
        return None

    @property
    def key_stores(self) -> list[KeyStore]:
        return self.of_kind(KeyStore)

    @property
    def trust_store_certs(self) -> list[TrustStoreCert]:
        return self.of_kind(TrustStoreCert)

    @property
    def protocol_profiles(self) -> list[ProtocolProfile]:
        return self.of_kind(ProtocolProfile)

    @property
    def message_bindings(self) -> list[MessageBinding]:
        return self.of_kind(MessageBinding)


def find_spec_files(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """Expand files and directories (recursively, ``*.yaml``/``*.yml``, hidden folders and project files
    skipped) into a sorted, de-duplicated list."""
    found: dict[Path, None] = {}
    problems: list[Problem] = []
    for given in paths:
        if not given.exists():
            problems.append(Problem(display_path(given), 1, 1, "", "", "no such file or directory"))
            continue
        if given.is_dir():
            for candidate in sorted(given.rglob("*")):
                rel = candidate.relative_to(given)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                # Anything named *.yaml but a folder (a FIFO, a socket) is taken, for the reader to refuse by name.
                if candidate.suffix in SPEC_SUFFIXES and not candidate.is_dir():
                    if candidate.name in PROJECT_FILE_NAMES:
                        continue
                    found.setdefault(candidate.resolve(), None)
        else:
            found.setdefault(given.resolve(), None)
    return list(found), problems


def load_specs(
    paths: Sequence[Path], *, root: Path | None = None, variables: Mapping[str, str] | None = None
) -> SpecSet:
    """Load and validate. ``root`` is the spec repository (file references must stay inside it);
    by default the common folder of the given paths. ``${name}`` in a string value is replaced by
    ``variables[name]`` (``$${`` stands for a literal ``${``); an undefined name is a problem."""
    files, problems = find_spec_files(paths)
    if root is None:
        root = default_spec_root(paths)
    resources: list[_Loaded] = []
    invalid: set[str] = set()  # addresses of resources with problems of their own
    outcomes: dict[Any, Any] = {}  # the spec paths' checks, shared by every file's context (SpecContext.outcomes)
    given = variables or {}
    folders: dict[Path, Path] = {}
    for path in files:
        display = display_path(path)
        docs, file_problems = read_documents(path, display, _address_of)
        problems.extend(file_problems)
        # One base_dir per folder, not a Path per resource or per file: the caches keyed by it (the spec paths'
        # outcomes, a run's secrets) then find it by identity, not through Path.__eq__ (Python, about 0.5 us).
        folder = folders.setdefault(path.parent, path.parent)
        context = {"spec": SpecContext(base_dir=folder, root=root, outcomes=outcomes)}
        for doc in docs:
            if not _substitute(doc, given, problems):
                if isinstance(doc.data, dict):
                    invalid.add(_address_of(doc.data))
                continue
            resource = _validate_document(doc, context, problems)
            if resource is not None:
                # its kind, name and address read once here: the set's checks and the order ask for each
                kind, name = resource.kind, resource.metadata.name
                resources.append((resource, doc, kind, name, f"{kind}/{name}", folder))  # its ``address``
            elif isinstance(doc.data, dict):
                invalid.add(_address_of(doc.data))
    if not files and not problems:
        # Not a problem at a place in a file (there is none): the folder holds no specs yet.
        shown = ", ".join(display_path(p) for p in paths)
        raise ProjectError(
            f"no spec files (*.yaml, *.yml) in {shown if shown not in ('', '.') else 'the current folder'}",
            hint="start from the example stack (docs/quickstart.md: cp -r specs/examples/two-partners my-mtls), "
            "or write specs for an existing set-up with 'mtls-config import --instance URL --out specs'",
        )
    by_kind: dict[str, list[_Loaded]] = {kind: [] for kind in KINDS}
    for loaded in resources:
        by_kind[loaded[2]].append(loaded)
    _check_set(resources, by_kind, problems, invalid)
    if problems:
        raise SpecError(problems)
    # In the order of KINDS, then by name (no two share a name now: a duplicate is a problem above).
    ordered: list[_Loaded] = []
    for group in by_kind.values():
        group.sort(key=_NAME_OF)
        ordered += group
    origins = {
        address: _origin(doc.display, doc.start.line, doc.start.column, folder, doc.marks)
        for _, doc, _, _, address, folder in ordered
    }
    return SpecSet(tuple([loaded[0] for loaded in ordered]), origins, tuple(files))


# A resource as loaded: itself, its document, its kind, its name and its address (kind/name), read once, and its
# spec file's folder.
_Loaded = tuple[AnyResource, SourceDocument, str, str, str, Path]
_NAME_OF = operator.itemgetter(3)


VARIABLE = re.compile(r"\$(\$?)\{([^}]*)\}")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _substitute(doc: SourceDocument, variables: Mapping[str, str], problems: list[Problem]) -> bool:
    """Replace ``${name}`` in the document's string values in place; False when a name is undefined."""
    if not doc.may_hold_variables:
        return True  # nothing to replace: the walk below would only copy the document (about 5 us a resource)
    ok = True
    address = _address_of(doc.data) if isinstance(doc.data, dict) else ""

    def walk(value: Any, loc: Loc) -> Any:
        nonlocal ok
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value

        def replace(match: re.Match[str]) -> str:
            nonlocal ok
            escaped, name = match.group(1), match.group(2)
            if escaped:
                return "${" + name + "}"
            if not VARIABLE_NAME.match(name):
                problems.append(doc.problem(loc, f"'${{{name}}}' is not a valid variable reference", address=address))
                ok = False
                return match.group(0)
            if name not in variables:
                known = f"defined: {', '.join(sorted(variables))}" if variables else "no variables are defined"
                problems.append(
                    doc.problem(
                        loc,
                        f"undefined variable '{name}' ({known}){did_you_mean(name, variables)}; define it under "
                        "'variables:' in the project file or its environment",
                        address=address,
                    )
                )
                ok = False
                return match.group(0)
            return variables[name]

        return VARIABLE.sub(replace, value)

    doc.data = walk(doc.data, ())
    return ok


def _address_of(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    kind = data.get("kind")
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(kind, str) and kind in MODELS:
        return MODELS[kind].address_of(name if isinstance(name, str) and name else "?")
    return ""


def _validate_document(doc: SourceDocument, context: dict[str, Any], problems: list[Problem]) -> AnyResource | None:
    """The document's resource, validated with ``context`` (its file's ``SpecContext`` as "spec"), or None after
    adding its problems."""
    data = doc.data
    if not isinstance(data, dict):
        problems.append(
            doc.problem(
                (),
                "a resource document must be a mapping with apiVersion, kind, metadata and spec, "
                f"not {yaml_type(data)}",
            )
        )
        return None
    kind = data.get("kind")
    if "apiVersion" not in data:
        problems.append(doc.problem((), f"missing apiVersion (expected '{API_VERSION}')", address=_address_of(data)))
        return None
    if data["apiVersion"] != API_VERSION:
        problems.append(
            doc.problem(
                ("apiVersion",),
                f"unsupported apiVersion '{data['apiVersion']}'; expected '{API_VERSION}'",
                address=_address_of(data),
            )
        )
        return None
    if kind is None:
        problems.append(doc.problem((), "missing kind; expected one of " + ", ".join(KINDS)))
        return None
    if not isinstance(kind, str) or kind not in MODELS:
        hint = did_you_mean(str(kind), KINDS)
        problems.append(doc.problem(("kind",), f"unknown kind '{kind}'; expected one of " + ", ".join(KINDS) + hint))
        return None
    model = MODELS[kind]
    try:
        # the model's validator itself: model_validate is a Python wrapper around this very call
        resource: AnyResource = model.__pydantic_validator__.validate_python(data, context=context)
    except ValidationError as exc:
        # The input is included only to name its YAML type in messages: a value is never shown, since it
        # may be a secret written in the wrong place.
        address = _address_of(data)
        for err in exc.errors(include_url=False, include_input=True):
            problems.append(doc.problem(tuple(err["loc"]), pydantic_message(err, model), address=address))
        return None
    return resource


ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Patterns of the models (and the project file) in words; a pattern missing here is shown as a regex.
PATTERN_WORDS = {
    ENV_NAME_PATTERN: "must be an environment variable name: letters, digits and '_', not starting with a digit",
    r"^[a-z0-9][a-z0-9-]{0,62}$": "must be lower-case letters, digits and '-' (at most 63), e.g. payments-prod",
    r"^[a-z0-9][a-z0-9._-]*$": "must be lower-case letters, digits, '.', '_' and '-', e.g. partner-client",
    r"^[a-z_]+$": "must be one of the instance's choice values: lower-case letters and '_', e.g. daily",
}


def yaml_type(value: Any) -> str:
    """The YAML type of a value, for messages ("a list"); never the value itself."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def pydantic_message(err: Any, model: type[BaseModel] | None = None) -> str:
    """A pydantic error as a sentence for a spec author. Never includes the input value."""
    kind = err["type"]
    msg = str(err["msg"])
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    got = f", not {yaml_type(err['input'])}" if "input" in err else ""
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field_message(model, loc)
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"must be at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        if loc and loc[-1] == "name":
            return "name must not start or end with whitespace"
        pattern = str(ctx.get("pattern"))
        return PATTERN_WORDS.get(pattern, f"must match the pattern {pattern}")
    if kind == "string_type":
        return "must be text" + got
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number" + got
    if kind == "int_parsing_size":  # thousands of digits: far beyond any bound a spec field has
        return "must be a whole number of a sensible size (this one has too many digits)"
    if kind == "finite_number":
        return "must be a whole number, not infinity or NaN"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false" + got
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping (key: value lines)" + got
    if kind == "list_type":
        return "must be a list" + got
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if msg.startswith("Input should be "):
        msg = "must be " + msg[len("Input should be ") :]
    return msg


def _unknown_field_message(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    allowed = _fields_at(model, loc[:-1]) if model is not None else []
    if not allowed:
        return "unknown field"
    hint = did_you_mean(str(loc[-1]), allowed)
    return f"unknown field{hint}; allowed here: " + ", ".join(allowed)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names (as written in YAML) of the mapping at ``loc`` inside ``model``."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    target = _unwrap(annotation)
    if isinstance(target, type) and issubclass(target, BaseModel):
        # Sorted: the order of fields in the models follows code structure (shared bases), not the reader.
        return sorted(info.alias or name for name, info in target.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return None
            annotation = members[0]
        else:
            return annotation


def _step(annotation: Any, part: Any) -> Any:
    annotation = _unwrap(annotation)
    origin = get_origin(annotation)
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict:
        return get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
    return None


def _check_set(
    loaded: list[_Loaded], by_kind: dict[str, list[_Loaded]], problems: list[Problem], invalid: set[str]
) -> None:
    """Checks across resources (``by_kind``: the same resources by kind). A reference to a resource that exists
    but has problems of its own is not reported again: its own problems say what to fix."""
    names = {kind: set(map(_NAME_OF, group)) for kind, group in by_kind.items()}
    if _may_clash(by_kind):
        _check_names(loaded, problems)

    for resource, doc, _, _, address, _ in loaded:
        for ref in resource.references():
            kind = ref.model.kind_name()
            if ref.name in names[kind] or ref.model.address_of(ref.name) in invalid:
                continue
            field = ref.loc[-1]
            mistaken = [m.kind_name() for m in ref.mistaken if ref.name in names[m.kind_name()]]
            if mistaken:
                why = f"{field} '{ref.name}' is a {mistaken[0]}; {ref.needed_by} needs a {kind}"
            else:
                why = f"{field} '{ref.name}' names no {kind} in the specs" + did_you_mean(ref.name, names[kind])
            problems.append(doc.problem(ref.loc, why, address=address))


_CERTIFICATE_KINDS = (KeyStore.kind_name(), TrustStoreCert.kind_name())


def _may_clash(by_kind: dict[str, list[_Loaded]]) -> bool:
    """False when ``_check_names`` would find nothing: no two names of a kind the same ignoring case (so no two
    addresses the same either), no KeyStore and TrustStoreCert of one name, no message bound twice. Sets made in C,
    where ``_check_names`` takes a Python step per resource to say which clash and where."""
    folded_names: dict[str, set[str]] = {}
    for kind, group in by_kind.items():
        folded_names[kind] = set(map(folded, map(_NAME_OF, group)))
        if len(folded_names[kind]) != len(group):
            return True
    if not folded_names[_CERTIFICATE_KINDS[0]].isdisjoint(folded_names[_CERTIFICATE_KINDS[1]]):
        return True
    bindings = [loaded[0] for loaded in by_kind[MessageBinding.kind_name()]]
    targets = {(b.spec.message.type, folded(b.spec.message.name)) for b in bindings if isinstance(b, MessageBinding)}
    return len(targets) != len(bindings)


def _check_names(loaded: list[_Loaded], problems: list[Problem]) -> None:
    """The names that clash: the same address twice, names the instance would take for one (case), a KeyStore
    and a TrustStoreCert of one name, a message bound twice."""
    name_loc: Loc = ("metadata", "name")
    seen: dict[str, SourceDocument] = {}
    # The instance compares names ignoring case (facts-2 §7): 'Acme' and 'acme' would name one record.
    seen_folded: dict[tuple[str, str], tuple[str, SourceDocument]] = {}
    certificate_names: dict[str, tuple[str, SourceDocument]] = {}
    bound_messages: dict[tuple[str, str], tuple[str, str]] = {}  # (type, folded name) -> (address, name)
    binding_kind = MessageBinding.kind_name()
    for resource, doc, kind, name, address, _ in loaded:
        if address in seen:
            first = seen[address]
            problems.append(
                doc.problem(
                    name_loc,
                    f"duplicate {kind} name (first defined at {first.display}:{first.start.line})",
                    address=address,
                )
            )
            continue
        seen[address] = doc
        folded_name = folded(name)
        twin = seen_folded.setdefault((kind, folded_name), (address, doc))
        if twin[0] != address:
            problems.append(
                doc.problem(
                    name_loc,
                    f"differs from {twin[0]} at {twin[1].display}:{twin[1].start.line} only in case; the instance "
                    "compares names ignoring case, so both would name one record",
                    address=address,
                )
            )
            continue
        if kind in _CERTIFICATE_KINDS:
            other = certificate_names.get(folded_name)
            if other is not None:
                problems.append(
                    doc.problem(
                        name_loc,
                        f"name already used by {other[0]} at {other[1].display}:{other[1].start.line}; "
                        "KeyStore and TrustStoreCert records share the sys_certificate table",
                        address=address,
                    )
                )
            else:
                certificate_names[folded_name] = (address, doc)
        elif kind == binding_kind:
            assert isinstance(resource, MessageBinding)
            target = (resource.spec.message.type, resource.spec.message.name)
            bound = bound_messages.get((target[0], folded(target[1])))
            if bound is not None:
                problems.append(
                    doc.problem(
                        ("spec", "message"),
                        f"{target[0]} message '{target[1]}' is already bound by {bound[0]}"
                        + (f" (as '{bound[1]}': names are compared ignoring case)" if bound[1] != target[1] else ""),
                        address=address,
                    )
                )
            else:
                bound_messages[(target[0], folded(target[1]))] = (address, target[1])
