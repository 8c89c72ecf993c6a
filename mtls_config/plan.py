"""The plan: what apply would do, as data. Versioned JSON with a stable order and a checksum.

Its shape is close to Terraform's ``resource_changes``: one entry per resource with an address, an action,
before/after (sensitive values masked), the changed fields, a reason, and the live fingerprints
(sys_id + sys_mod_count per record) that a saved plan pins. ``checksum`` covers everything but
``created_at``, so the same plan of the same state always has the same checksum. Documented in
docs/plan-format.md.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, model_validator

from mtls_config import __version__
from mtls_config.changes import Change, DiffResult, FieldChange, Finding, Fingerprint
from mtls_config.diff import EXACT_TYPES, identical, same_fields
from mtls_config.errors import PlanError, StalePlan, UnsafePlan
from mtls_config.jsontext import loads
from mtls_config.resources.registry import kind_named
from mtls_config.wording import plural

FORMAT_VERSION = "1"
ActionName = Literal["create", "update", "replace", "delete", "no-op"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The keys of a changed field that name its sides (``instance``, ``spec``): derived from before/after, so they are
# not covered by the checksum (a plan saved before they existed still verifies) and are checked on load.
SIDE_KEYS = ("instance", "spec")


class PlannedField(_Model):
    """One changed field. ``before`` is the value on the instance and ``after`` the value the specs give;
    ``instance`` and ``spec`` repeat them under names that say which side is which."""

    field: str
    before: Any = None
    after: Any = None
    sensitive: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def instance(self) -> Any:
        """The value on the instance now (what ``before`` holds); ``None`` where the instance has none."""
        return self.before

    @computed_field  # type: ignore[prop-decorator]
    @property
    def spec(self) -> Any:
        """The value the specs give (what ``after`` holds): what apply writes; ``None`` on a delete."""
        return self.after

    @model_validator(mode="before")
    @classmethod
    def _sides_agree(cls, data: Any) -> Any:
        """A plan file's ``instance``/``spec`` are read as what they repeat; one that says otherwise was edited."""
        if not isinstance(data, dict) or not any(key in data for key in SIDE_KEYS):
            return data
        data = dict(data)
        for key, twin in zip(SIDE_KEYS, ("before", "after"), strict=True):
            if key in data and data.pop(key) != data.get(twin):
                raise ValueError(f"{key} differs from {twin} (edited after the plan was made?)")
        return data


class LiveFingerprint(_Model):
    part: str
    table: str
    sys_id: str
    sys_mod_count: int


class ResourceChange(_Model):
    address: str
    kind: str
    name: str
    table: str
    action: ActionName
    reason: str = ""
    importing: bool = False
    changed_fields: list[PlannedField] = Field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    before_sensitive: dict[str, bool] = Field(default_factory=dict)
    after_sensitive: dict[str, bool] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)
    live: list[LiveFingerprint] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)


class PlanFinding(_Model):
    address: str
    severity: Literal["error", "warning", "info"]
    message: str
    hint: str = ""
    kind: Literal["orphan", "expiry", "conflict", "lint", "mutual-auth", "other"] = "other"


class InventoryFingerprint(_Model):
    sys_id: str | None
    sys_mod_count: int | None
    generation: int


class Summary(_Model):
    create: int = 0
    update: int = 0
    replace: int = 0
    delete: int = 0
    no_op: int = Field(default=0, alias="no-op")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Plan(_Model):
    format_version: str = FORMAT_VERSION
    tool_version: str = __version__
    instance: str
    stack: str
    spec_digest: str
    prune: bool = False
    targets: list[str] = Field(default_factory=list)  # --target of the run that made the plan
    excludes: list[str] = Field(default_factory=list)  # --exclude of that run
    resource_changes: list[ResourceChange]
    findings: list[PlanFinding] = Field(default_factory=list)
    inventory: InventoryFingerprint
    summary: Summary
    created_at: str = ""
    checksum: str = ""

    @property
    def has_changes(self) -> bool:
        return any(c.action != "no-op" for c in self.resource_changes)

    @property
    def errors(self) -> list[PlanFinding]:
        return [f for f in self.findings if f.severity == "error"]

    def body_checksum(self) -> str:
        """sha256 of the plan's compact JSON (sorted keys) without created_at, checksum and findings (advice,
        such as "expires in 12 days", changes daily; apply does not). Hashed a resource change at a time: the
        same text as dumping the whole plan at once, without holding all of it (20 MB at 5000 resources)."""
        digest = hashlib.sha256()
        head = self.model_dump(
            mode="json", by_alias=True, exclude={"created_at", "checksum", "findings", "resource_changes"}
        )
        head["resource_changes"] = []
        for position, key in enumerate(sorted(head)):
            digest.update((b"," if position else b"{") + _compact(key).encode() + b":")
            if key != "resource_changes":
                digest.update(_compact(head[key]).encode())
                continue
            digest.update(b"[")
            for index, change in enumerate(self.resource_changes):
                if index:
                    digest.update(b",")
                digest.update(_compact(change.model_dump(mode="json", by_alias=True, exclude=_SIDES)).encode())
            digest.update(b"]")
        digest.update(b"}")
        return "sha256:" + digest.hexdigest()

    def sealed(self) -> Plan:
        """The plan with its checksum (itself when it has one): a plan made only to be read as text is not
        checksummed (``make_plan(seal=False)``: a twentieth of a no-change plan's CPU); whatever saves or shows it
        seals it first. A plan made without its spec digest (``make_plan(seal=False)`` from the engine, which makes
        none for a plan printed as text) cannot be sealed: its checksum would hold no digest."""
        if not self.spec_digest:
            raise ValueError("a plan made to be read as text only has no spec digest: it cannot be saved or shown")
        return self if self.checksum else self.model_copy(update={"checksum": self.body_checksum()})

    def to_json(self) -> str:
        return json.dumps(self.sealed().model_dump(mode="json", by_alias=True), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        try:
            data = loads(text)
        except ValueError as exc:
            raise PlanError(f"the plan file is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
            raise PlanError(f"unsupported plan format (expected format_version {FORMAT_VERSION!r})")
        try:
            plan = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            said = first["msg"].removeprefix("Value error, ")
            raise PlanError(f"the plan file is malformed: {where}: {said}") from None
        if plan.checksum != plan.body_checksum():
            raise PlanError("the plan file's checksum does not match its content (edited after it was made?)")
        return plan

    def address_changes(self) -> dict[str, ResourceChange]:
        return {c.address: c for c in self.resource_changes}


# What the checksum leaves out of each resource change: the sides' names, which repeat before/after.
_SIDES: Any = {"changed_fields": {"__all__": set(SIDE_KEYS)}}


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, other objects their str), in new containers."""
    if value is None:
        return None
    copied = _plain_copy(value)
    if copied is _NOT_PLAIN:
        return json.loads(json.dumps(value, default=str))
    return copied


_NOT_PLAIN = object()
_SCALARS = (str, int, float, bool)
_FLAT_KEYS = frozenset({str})
_FLAT_VALUES = frozenset({*_SCALARS, type(None)})


def _plain_copy(value: Any) -> Any:
    """A copy of JSON-native data (what fields are, nearly always) without the round trip through text, which
    was half the time of a plan; ``_NOT_PLAIN`` when the value holds anything JSON would convert."""
    kind = type(value)
    if kind in _SCALARS or value is None:
        return value
    if kind is dict and _FLAT_KEYS.issuperset(map(type, value)) and _FLAT_VALUES.issuperset(map(type, value.values())):
        return dict(value)  # text keys and plain values (an unchanged resource's fields): copied at C speed
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            copied = _plain_copy(item)
            if copied is _NOT_PLAIN:
                return _NOT_PLAIN
            out[key] = copied
        return out
    if kind is list or kind is tuple:
        items = []
        for item in value:
            copied = _plain_copy(item)
            if copied is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(copied)
        return items
    return _NOT_PLAIN


# The fields set of every change and fingerprint a plan makes (all of them): one set shared by all, not one each
# (a pydantic model keeps a set of the fields given; a frozen model never adds to it, and a copy copies it).
_CHANGE_FIELDS = set(ResourceChange.model_fields)
_FINGERPRINT_FIELDS = set(LiveFingerprint.model_fields)

_M = TypeVar("_M", bound=BaseModel)


def _built(cls: type[_M], fields_set: set[str], values: dict[str, Any]) -> _M:
    """``cls.model_construct(fields_set, **values)`` for ``values`` that give every field of ``cls`` in its order
    (a model without extras, private attributes or post-init, as the plan's are): the object it makes, without its
    loop over the fields' aliases and defaults, which was a quarter of make_plan at 20 000 resources (issue 18;
    a test holds the two equal)."""
    model = _new(cls)
    _set_dict(model, values)
    _set_fields_set(model, fields_set)
    _set_extra(model, None)
    _set_private(model, None)
    return model


# A pydantic model's slots (``BaseModel.__slots__``), set through their descriptors: ``object.__setattr__`` looked
# each one up by name, twice a resource a plan (0.55 -> 0.35 us a model).
_new = object.__new__
_set_dict, _set_fields_set, _set_extra, _set_private = (
    vars(BaseModel)[name].__set__
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


def _resource_change(c: Change) -> ResourceChange:
    """The plan's entry for ``c``, made of new plain JSON data (``_jsonable``) and not validated again: validating
    copied every before/after of a plan once more (issue 18: 12 MB and a sixth of make_plan at 5000 resources).
    An unchanged resource's sides are one mapping when they are the same in JSON (one copy made of them when they
    are the same already); the sensitive masks of both sides one mapping (they are the same)."""
    # Terraform's convention: the masks say which attributes are sensitive, changed or not. (An unchanged resource
    # has no changed field: no comprehension is run for none, here and below, 20 000 times a plan.)
    fields = c.fields
    sensitive = {f.field: True for f in fields if f.sensitive} if fields else {}
    for name in _sensitive(c.kind):
        sensitive[name] = True
    same: Any = _NOT_PLAIN
    before, after = c.before, c.after
    # Identical sides of JSON-native data are identical in JSON: one copy (what an unchanged resource has; the diff
    # gives it one mapping for both, of text keys and plain values: copied without asking more of it).
    if (
        before is after
        and type(before) is dict
        and _FLAT_KEYS.issuperset(map(type, before))
        and EXACT_TYPES.issuperset(map(type, before.values()))
    ):
        same = dict(before)
    elif (
        before is not None
        and after is not None
        and (before is after or list(before) == list(after))
        and same_fields(before, after)
    ):
        same = _plain_copy(before if type(before) is dict else dict(before))
    if same is not _NOT_PLAIN:
        before = after = same
    else:
        before = _jsonable(dict(before)) if before is not None else None
        after = _jsonable(dict(after)) if after is not None else None
        if before is not None and after is not None and list(before) == list(after) and identical(before, after):
            after = before
    info = dict(sorted(c.info.items()))
    info.pop("pem_text", None)
    return _built(
        ResourceChange,
        _CHANGE_FIELDS,
        {
            "address": c.address,
            "kind": c.kind,
            "name": c.name,
            "table": c.table,
            "action": c.action,
            "reason": c.reason,
            "importing": c.importing,
            "changed_fields": [_field(f) for f in fields] if fields else [],
            "before": before,
            "after": after,
            "before_sensitive": sensitive if c.before is not None else {},
            "after_sensitive": sensitive if c.after is not None else {},
            "info": info,
            "live": [_fingerprint(f) for f in c.live] if len(c.live) != 1 else [_fingerprint(c.live[0])],
            "depends_on": list(c.depends_on),
        },
    )


# The fields a kind's plan entries always mask, by kind name: looked up once per kind, not once per entry.
@functools.cache
def _sensitive(kind: str) -> tuple[str, ...]:
    return kind_named(kind).sensitive


def _fingerprint(f: Fingerprint) -> LiveFingerprint:
    values = {"part": f.part, "table": f.table, "sys_id": f.sys_id, "sys_mod_count": f.mod_count}
    return _built(LiveFingerprint, _FINGERPRINT_FIELDS, values)


# The fields set of a changed field as ``PlannedField(field=, before=, after=[, sensitive=])`` makes it, one set
# shared by all (a plan that creates 20 000 resources has 330 000 changed fields: issue 18, apply's memory).
_FIELD_GIVEN = {"field", "before", "after"}
_SENSITIVE_FIELD_GIVEN = {"field", "before", "after", "sensitive"}


def _field(f: FieldChange) -> PlannedField:
    """What ``PlannedField(...)`` makes of ``f`` (its name is text; before and after are any JSON values, which it
    would only have kept as they are), built without validating it again."""
    if f.sensitive:
        values = {"field": f.field, "before": "(sensitive)", "after": "(sensitive)", "sensitive": True}
        return _built(PlannedField, _SENSITIVE_FIELD_GIVEN, values)
    values = {"field": f.field, "before": _jsonable(f.before), "after": _jsonable(f.after), "sensitive": False}
    return _built(PlannedField, _FIELD_GIVEN, values)


# One encoder for every checksum's pieces: ``json.dumps`` with options builds a new one per call (5000 a plan).
_COMPACT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _compact(value: Any) -> str:
    return _COMPACT.encode(value)


def _finding(f: Finding) -> PlanFinding:
    return PlanFinding(address=f.address, severity=f.severity, message=f.message, hint=f.hint, kind=f.kind)


def make_plan(
    result: DiffResult,
    *,
    instance: str,
    stack: str,
    spec_digest: str,
    inventory_sys_id: str | None,
    inventory_mod_count: int | None,
    inventory_generation: int,
    prune: bool,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    now: dt.datetime | None = None,
    seal: bool = True,
) -> Plan:
    """The plan of ``result``; with ``seal=False`` without its checksum, for a plan read only as text (``sealed``
    adds it; the engine then gives no ``spec_digest`` either, "")."""
    counts: dict[str, int] = {}
    for c in result.changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    plan = Plan(
        instance=instance,
        stack=stack,
        spec_digest=spec_digest,
        prune=prune,
        targets=sorted(targets),
        excludes=sorted(excludes),
        resource_changes=[_resource_change(c) for c in result.changes],
        findings=[_finding(f) for f in result.findings],
        inventory=InventoryFingerprint(
            sys_id=inventory_sys_id, sys_mod_count=inventory_mod_count, generation=inventory_generation
        ),
        summary=Summary.model_validate(counts),
        created_at=(now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return plan.sealed() if seal else plan


def raise_if_unsafe(plan: Plan, owned_count: int, *, allow_delete_all: bool, max_delete_fraction: float) -> None:
    """Refuse plans that delete everything, or more than a fraction of the owned records, unless allowed."""
    deletes = [c.address for c in plan.resource_changes if c.action == "delete"]
    if not deletes or allow_delete_all:
        return
    if len(deletes) >= owned_count:
        raise UnsafePlan(
            f"the plan deletes all {plural(owned_count, 'record')} this stack owns",
            hint="if that is intended, run again with --allow-delete-all",
        )
    if owned_count and len(deletes) / owned_count > max_delete_fraction:
        raise UnsafePlan(
            f"the plan deletes {len(deletes)} of {plural(owned_count, 'owned record')} (more than {max_delete_fraction:.0%})",
            hint="if that is intended, run again with --allow-delete-all",
        )


def check_still_true(saved: Plan, fresh: Plan) -> None:
    """A saved plan may be applied only if re-planning now gives the same changes on the same records."""
    problems: list[str] = []
    if saved.instance != fresh.instance:
        problems.append(f"instance differs: planned for {saved.instance}, now {fresh.instance}")
    if saved.stack != fresh.stack:
        problems.append(f"stack differs: planned for {saved.stack}, now {fresh.stack}")
    if problems:
        raise StalePlan("the saved plan is for another target: " + "; ".join(problems))
    if saved.spec_digest != fresh.spec_digest:
        raise StalePlan(
            "the specs changed since the plan was made", hint="run 'mtls-config plan' again and review the new plan"
        )
    changed: list[str] = []
    if saved.inventory.sys_mod_count != fresh.inventory.sys_mod_count:
        changed.append(f"inventory (sys_mod_count {saved.inventory.sys_mod_count} -> {fresh.inventory.sys_mod_count})")
    fresh_changes = fresh.address_changes()
    for c in saved.resource_changes:
        now = fresh_changes.get(c.address)
        before = {(f.table, f.sys_id): f.sys_mod_count for f in c.live}
        after = {(f.table, f.sys_id): f.sys_mod_count for f in now.live} if now is not None else {}
        if before != after:
            moved = [
                f"{table}/{sys_id} ({count} -> {after.get((table, sys_id), 'gone')})"
                for (table, sys_id), count in sorted(before.items())
                if after.get((table, sys_id)) != count
            ]
            appeared = [f"{t}/{s} (new)" for (t, s) in sorted(set(after) - set(before))]
            changed.append(f"{c.address}: " + ", ".join(moved + appeared))
        elif now is None or now.action != c.action or now.changed_fields != c.changed_fields:
            changed.append(f"{c.address}: planned {c.action}, now {now.action if now else 'absent'}")
    extra = sorted(set(fresh_changes) - {c.address for c in saved.resource_changes})
    changed.extend(f"{a}: not in the saved plan" for a in extra if fresh_changes[a].action != "no-op")
    if changed:
        raise StalePlan(
            "the saved plan is stale; records changed since it was made:\n  " + "\n  ".join(changed),
            hint="run 'mtls-config plan' again and review the new plan",
        )


def summary_line(plan: Plan) -> str:
    s = plan.summary
    return (
        f"{s.create} to create, {s.update} to update, {s.replace} to replace, {s.delete} to delete, {s.no_op} unchanged"
    )


__all__: Sequence[str] = [
    "Plan",
    "ResourceChange",
    "check_still_true",
    "make_plan",
    "raise_if_unsafe",
    "summary_line",
]
