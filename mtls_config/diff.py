"""Desired x Live -> changes. Pure: no I/O, no clock (``now`` is passed in).

Per resource the action is create, update, replace (the record must be re-made), delete (owned records
the specs no longer name, only with prune) or no-op. Fields are compared in canonical form with deepdiff;
derived fields (expiry, subject, sys_*) are never compared, only carried as information. The keystore
password is compared through the inventory's salted digest and shown only as "(sensitive value changed)".

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mtls_config.changes import SENSITIVE, Action, Change, DiffResult, FieldChange, Finding, Fingerprint
from mtls_config.desired import Desired
from mtls_config.frozen import slot_maker
from mtls_config.inventory import IMPORTED_PASSWORD, OwnedRecord, OwnedResource
from mtls_config.live import Live
from mtls_config.resources.common import DesiredResource, LiveResource
from mtls_config.resources.kind import Kind
from mtls_config.resources.registry import kind_named, position


def _change_order(c: Change) -> tuple[int, int, str]:
    """Where a change goes in a plan: creates and updates in the kinds' apply order, then deletes in reverse; by
    address within a kind (one call a change: a plan sorts 20 000)."""
    address = c.address
    order = _position(address.partition("/")[0])
    return (1, -order, address) if c.action == "delete" else (0, order, address)


# A kind's place in the apply order, looked up once per kind (the kinds are fixed at import): a plan sorts 20 000
# changes by it. An unknown kind raises, and is not remembered.
_position = functools.cache(position)


def diff(desired: Desired, live: Live, *, prune: bool = False, now: dt.datetime | None = None) -> DiffResult:
    return diff_found(desired, live, prune=prune, now=now)[0]


def diff_found(
    desired: Desired, live: Live, *, prune: bool = False, now: dt.datetime | None = None
) -> tuple[DiffResult, set[str]]:
    """``diff``, and the addresses whose record is on the instance, not the stack's, and not to be adopted: the
    diff's "exists on the instance but stack S does not own it" conflicts, by address, found
    on the same pass (a second pass over 20 000 resources was a twentieth of a no-change plan's diff)."""
    now = now or dt.datetime.now(dt.UTC)
    changes: list[Change] = []
    findings: list[Finding] = []
    found: set[str] = set()
    findings.extend(_dictionary_unread(desired, live))
    resources = live.resources
    listed = live.inventory.resources
    expiries = _Expiries(now)
    dictionary = live.dictionary
    # The kinds some of whose resources may write a column the instance lacks: only their resources are asked.
    may_lack: dict[str, bool] = {}
    kinds: dict[str, Kind] = {}  # looked up once per kind, not twice per resource
    duplicates, unresolved = live.duplicates, live.unresolved
    for d in desired.resources:
        kind = kinds.get(d.kind) or kinds.setdefault(d.kind, kind_named(d.kind))
        current = resources.get(d.address)
        owned = listed.get(d.address)
        is_owned = current is not None and _owned_by(current, owned)
        if current is not None and not is_owned and not d.adopt and not kind.takes_over:
            found.add(d.address)
        asked = may_lack.get(d.kind)
        if asked is None and dictionary is not None:
            asked = may_lack[d.kind] = kind.may_lack(dictionary)
        lacking = _lacking_columns(d, live) if asked else None
        if lacking:
            findings.append(lacking)
            continue
        if current is not None and owned is None and not d.adopt:
            elsewhere, hint = kind.conflict(d, current)
            if elsewhere:
                findings.append(Finding(d.address, "error", elsewhere, hint, "conflict"))
                continue
        if d.address in duplicates:
            findings.append(
                Finding(
                    d.address,
                    "error",
                    duplicates[d.address],
                    "the instance may use any of them: rename or delete the extra records, then plan again",
                    "conflict",
                )
            )
            continue
        if d.address in unresolved:
            hint = kind.unresolved_hint
            findings.append(Finding(d.address, "error", unresolved[d.address], hint, "conflict"))
            continue
        change, notes = _compare(d, kind, current, live, is_owned, owned)
        changes.append(change)
        findings += notes
        if kind.has_expiry:
            findings += expiries.of(d, current)
        findings += kind.findings(d, current, live)
    desired_addresses = {d.address for d in desired.resources}
    for address, owned in sorted(live.inventory.resources.items()):
        if address in desired_addresses:
            continue
        current = live.resources.get(address)
        if current is None:
            findings.append(Finding(address, "info", "owned record no longer exists on the instance; forgotten"))
            continue
        if prune:
            changes.append(_delete(current, owned.records))
        else:
            findings.append(
                Finding(
                    address,
                    "warning",
                    "owned by this stack but no longer in the specs",
                    "run with --prune to delete it (a binding is restored, never deleted)",
                    kind="orphan",
                )
            )
    changes = _repoint_dependants(changes)
    changes.sort(key=_change_order)
    findings.sort(key=lambda f: (f.address, f.severity, f.message))
    return DiffResult(tuple(changes), tuple(findings)), found


def _lacking_columns(d: DesiredResource, live: Live) -> Finding | None:
    """An error when the instance's dictionary lacks a column applying ``d`` would write: a real instance would
    drop it from the write silently and answer 200."""
    dictionary = live.dictionary
    if dictionary is None:
        return None
    lacking = [what for _, what in kind_named(d.kind).lacking_columns(dictionary, d)]
    if not lacking:
        return None
    return Finding(
        d.address,
        "error",
        "the instance has no column " + ", ".join(lacking) + ", which applying this resource writes "
        "(its data dictionary lists none, on the table or a table it extends)",
        "a write of a column the instance lacks is dropped silently; check the instance's release and plugins "
        "('mtls-config doctor' lists the columns the specs need)",
        "conflict",
    )


def _dictionary_unread(desired: Desired, live: Live) -> list[Finding]:
    if live.dictionary is None or live.dictionary.readable or not desired.resources:
        return []
    return [
        Finding(
            "sys_dictionary",
            "warning",
            "the instance's data dictionary returned nothing to this user: the columns the specs need were not checked",
            "let the user read sys_dictionary and sys_db_object (admin can); every write is still read back",
        )
    ]


def _repoint_dependants(changes: list[Change]) -> list[Change]:
    """A record that is re-made gets a new sys_id: resources whose fields name it (a profile its keystore) must be
    pointed at the new record even though, by name, nothing about them changed."""
    replaced = {(c.kind, c.name) for c in changes if c.action == "replace"}
    if not replaced:
        return changes
    out = []
    for c in changes:
        for field_name, kind in kind_named(c.kind).field_references.items():
            name = c.after.get(field_name) if c.after else None
            if c.action == "no-op" and (kind, name) in replaced:
                c = replace(
                    c,
                    action="update",
                    reason=f"its {field_name} '{name}' is re-created",
                    fields=(FieldChange(field_name, name, name),),
                )
        out.append(c)
    return out


def _fingerprints(current: LiveResource | None) -> tuple[Fingerprint, ...]:
    if current is None:
        return ()
    records = current.records
    if len(records) == 1:  # every kind but bindings
        for part, rec in records.items():
            return (_fingerprint(part, rec.table, rec.sys_id, rec.mod_count),)
    return tuple(Fingerprint(part, rec.table, rec.sys_id, rec.mod_count) for part, rec in sorted(records.items()))


def _owned_by(current: LiveResource, owned: OwnedResource | None) -> bool:
    """The live record found (``current``'s primary) is the one the stack's inventory records (``owned``)."""
    primary = current.records.get(current.primary_part)
    if primary is None or owned is None:
        return False
    sys_id = primary.sys_id
    records = owned.records
    if len(records) == 1:  # every kind but bindings
        return records[0].sys_id == sys_id
    return any(rec.sys_id == sys_id for rec in records)


def _compare(
    d: DesiredResource,
    kind: Kind,
    current: LiveResource | None,
    live: Live,
    is_owned: bool,
    owned: OwnedResource | None,
) -> tuple[Change, list[Finding]]:
    """``owned``: the inventory's entry for ``d``; ``is_owned``: ``current`` is the record it records (``_owned_by``);
    ``kind``: ``d``'s."""
    after = kind.desired_fields(d, current)
    notes: list[Finding] = []
    if current is None:
        reason = "not on the instance"
        if owned is not None and not owned.pending:
            reason = "owned record is missing on the instance (deleted outside mtls-config)"
        fields = tuple(FieldChange(k, None, v) for k, v in _flatten(after).items())
        if d.password is not None and kind.password_field is not None:
            fields += (FieldChange(kind.password_field, None, SENSITIVE, sensitive=True),)
        return _change(d, "create", reason, fields, None, after, current), notes

    importing = False
    if not is_owned and kind.takes_over:
        return _take_over(d, current, after, kind.take_over_reason(d)), notes
    if not is_owned:
        if not d.adopt:
            primary = current.primary
            found = primary.get(kind.natural_key) if primary is not None else ""
            where = "exists on the instance"
            hint = "set 'metadata.adopt: true' on the resource, or run 'mtls-config import', to take it over"
            if found and found != d.name:
                where += f" as '{found}' (the instance compares names ignoring case: it is the same name)"
                hint += ", or give the spec a name that differs from it by more than case"
            notes.append(
                Finding(d.address, "error", f"{where} but stack '{live.stack}' does not own it", hint, "conflict")
            )
        importing = True

    before = current.fields  # copied only when a change holds it (an unchanged resource's change holds ``after``)
    reason = kind.replace_reason(before, after)
    if reason:
        fields = _field_changes(before, after)
        return _change(d, "replace", reason, fields, dict(before), after, current, importing), notes

    # The common case at scale: the live fields are the desired ones, every one (nothing to list field by field);
    # the change then holds one mapping for both sides (the plan copies it once).
    same = same_fields(before, after)
    changed = [] if same else list(_field_changes(before, after))
    reasons: list[str] = []
    if d.password is not None and kind.password_field is not None:
        state = _password_state(d, current, live, is_owned)
        if state:
            changed.append(FieldChange(kind.password_field, SENSITIVE, SENSITIVE, sensitive=True))
            reasons.append(state)
    for problem in current.problems:
        reasons.append(problem)
    if owned is not None and is_owned and not changed:
        moved = _moved_outside(current, owned.records)
        if moved:
            notes.append(Finding(d.address, "info", moved))
    if importing:
        reasons.insert(0, "adopt the existing record")
    if changed and not reasons:
        reasons.append("fields differ")
    if current.problems and not changed:
        changed.append(FieldChange("attachment", current.problems[0], "exactly one file"))
    action: Action = "update" if changed or importing else "no-op"
    # One mapping for both sides only when they are the same in order too (a plan keeps each side's order).
    sides = after if same and list(before) == list(after) else dict(before)
    return _change(d, action, "; ".join(reasons), tuple(changed), sides, after, current, importing), notes


def _take_over(d: DesiredResource, current: LiveResource, after: Mapping[str, Any], reason: str) -> Change:
    """A resource the stack does not own yet that takes over fields of records that exist (a binding)."""
    return _change(
        d,
        "create",
        reason,
        _field_changes(current.fields, after),
        dict(current.fields),
        after,
        current,
    )


def _password_state(d: DesiredResource, current: LiveResource, live: Live, is_owned: bool) -> str:
    owned = live.owned(d.address)
    if not is_owned or owned is None or owned.password_digest is None:
        return "password will be set"
    assert d.password is not None
    if owned.password_digest == IMPORTED_PASSWORD:
        pass  # adopted by import: the instance's value stands until the record is edited elsewhere
    elif d.password.salted_digest(live.inventory.salt) != owned.password_digest:
        return "password changed in the specs"
    opaque = live.opaque_passwords.get(d.address)
    if opaque is not None and owned.password_opaque is not None:
        if opaque != owned.password_opaque:
            return "password changed on the instance"
        return ""
    if _moved_outside(current, owned.records):
        return "record modified outside mtls-config; its write-only password is set again"
    return ""


def _moved_outside(current: LiveResource, owned_records: list[OwnedRecord]) -> str:
    for rec in owned_records:
        live_rec = current.records.get(rec.part)
        if live_rec is not None and rec.mod_count is not None and live_rec.mod_count > rec.mod_count:
            return f"modified outside mtls-config (sys_mod_count {rec.mod_count} -> {live_rec.mod_count})"
    return ""


def _delete(current: LiveResource, owned_records: list[OwnedRecord]) -> Change:
    reason, after = kind_named(current.kind).removal(current, owned_records)
    return Change(
        current.address,
        current.kind,
        current.name,
        current.table,
        "delete",
        reason,
        tuple(FieldChange(k, v, None) for k, v in _flatten(dict(current.fields)).items()),
        dict(current.fields),
        after,
        dict(current.info),
        _fingerprints(current),
    )


def _change(
    d: DesiredResource,
    action: Action,
    reason: str,
    fields: tuple[FieldChange, ...],
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    current: LiveResource | None,
    importing: bool = False,
) -> Change:
    # The live view's own mapping (a plan copies what it shows), or a new one when the desired state says what the
    # live record lacks.
    info: Mapping[str, Any] = current.info if current is not None else {}
    if "subject" not in info or "expires" not in info:
        lacked = {k: v for k, v in d.info.items() if k in ("subject", "expires") and k not in info}
        if lacked:
            info = {**info, **lacked}
    return _new_change(
        d.address, d.kind, d.name, d.table, action, reason, fields, before, after, info,
        _fingerprints(current), importing, d.depends_on,
    )  # fmt: skip


# ``Change(...)`` and ``Fingerprint(...)`` given every field in order, their slots filled directly: one of each a
# resource a plan compares (1.4 and 0.5 us each through the frozen classes' ``__init__``, 0.7 and 0.3 so).
_new_change = slot_maker(Change)
_fingerprint = slot_maker(Fingerprint)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """Field-level differences of the owned fields, by deepdiff, as dotted paths."""
    owned_before = {k: before.get(k) for k in after}
    if identical(owned_before, dict(after)):
        return ()  # the common case at scale: DeepDiff costs about a millisecond a resource to say so
    if all(type(k) is str and _leaf(v) for k, v in after.items()) and all(_leaf(v) for v in owned_before.values()):
        # Flat fields of plain values or lists of them, a list compared whole (every kind but bindings): DeepDiff
        # reports each field that is not the same object and differs in type or value, under its own name; said
        # here at a tenth of its cost. A list (a certificate's names to notify, sorted) is one field: its change
        # shows the names before and after.
        return tuple(
            FieldChange(k, owned_before[k], after[k])
            for k in sorted(after)
            if not (owned_before[k] is after[k] or identical(owned_before[k], after[k]))
        )
    return _deep_field_changes(owned_before, after)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _leaf(value: Any) -> bool:
    """A value compared whole: a plain value, or a list of them."""
    return type(value) in _SCALARS or (type(value) is list and all(type(v) in _SCALARS for v in value))


def _deep_field_changes(owned_before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    # Imported here: deepdiff (with numpy) is 0.17 s of CPU to import, more than a plan of 1000 unchanged
    # resources spends diffing, and only nested fields that differ (bindings) come this way.
    from deepdiff import DeepDiff

    result = DeepDiff(dict(owned_before), dict(after), view="tree", ignore_order=False)
    out: dict[str, FieldChange] = {}
    for report in ("values_changed", "type_changes", "dictionary_item_added", "dictionary_item_removed"):
        for item in result.get(report, []):
            path = ".".join(str(p) for p in item.path(output_format="list"))
            old = None if report == "dictionary_item_added" else item.t1
            new = None if report == "dictionary_item_removed" else item.t2
            if isinstance(old, Mapping) or isinstance(new, Mapping):
                for sub, value in _flatten({path: new or {}}).items():
                    prev = _flatten({path: old or {}}).get(sub)
                    if prev != value:
                        out[sub] = FieldChange(sub, prev, value)
                for sub, value in _flatten({path: old or {}}).items():
                    if sub not in out and _flatten({path: new or {}}).get(sub) != value:
                        out[sub] = FieldChange(sub, value, None)
            else:
                out[path] = FieldChange(path, old, new)
    return tuple(out[k] for k in sorted(out))


# Values whose equality is ``identical``'s once their types are the same (a float is not: NaN is not equal to itself,
# but a dict comparison takes the same object for equal). So are they equal in JSON exactly when equal here (a plan's
# sides).
EXACT_TYPES = frozenset({str, int, bool, type(None)})


def same_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """``identical(dict(a), dict(b))``, said by C-level comparisons where the values are plain text, whole numbers,
    booleans or null (what an unchanged resource's fields are): the same keys and equal values (``==``), then the
    same type of every value, in the same order. Anything else (nested values, floats, keys in another order) is
    left to ``identical``, which decides."""
    if a is b:
        if EXACT_TYPES.issuperset(map(type, a.values())):
            return True
    elif a.keys() != b.keys() or a != b:
        return False  # equal is necessary: identical values are equal
    else:
        types = tuple(map(type, a.values()))
        if EXACT_TYPES.issuperset(types) and types == tuple(map(type, b.values())):
            return True
    return identical(dict(a), dict(b))


def identical(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down: where this holds DeepDiff reports nothing either."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return False
        for k, v in a.items():
            w = b[k]
            # Scalars (most fields) compared here: a call per field was most of the time of a no-change diff.
            if type(v) is not type(w) or not (identical(v, w) if isinstance(v, dict | list | tuple) else v == w):
                return False
        return True
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_EXPIRY_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def expiry_time(text: str) -> dt.datetime | None:
    """``text`` ("YYYY-MM-DD HH:MM:SS", UTC) as a time, or None when it is not one. The exact form, which both
    the instance and the desired state write, is read without strptime (a third of a no-change diff); any other
    text goes to strptime, which decides as it always did."""
    try:
        match = _EXPIRY_TEXT.fullmatch(text)
        if match is not None:
            year, month, day, hour, minute, second = (int(part) for part in match.groups())
            return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


class _Expiries:
    """The expiry warnings of a diff at ``now``. A date in the exact form both sides write ("YYYY-MM-DD HH:MM:SS")
    compares as text in time order: one later than ``now`` plus the warning days (that time's text, made once per
    number of days) says nothing, without being read as a time (most certificates of a plan)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.quiet_after: dict[int, str | None] = {}  # warn days -> the text after which nothing is said

    def _quiet_after(self, warn_days: int) -> str | None:
        if warn_days in self.quiet_after:
            return self.quiet_after[warn_days]
        text = None
        if warn_days >= 0:
            with contextlib.suppress(OverflowError):  # so many days that no date is that far: read each as a time
                text = (self.now + dt.timedelta(days=warn_days)).strftime("%Y-%m-%d %H:%M:%S")
            if text is not None and _EXPIRY_TEXT.fullmatch(text) is None:
                text = None  # a year of other than four digits: no longer text in time order
        self.quiet_after[warn_days] = text
        return text

    def of(self, d: DesiredResource, current: LiveResource | None) -> list[Finding]:
        expires = (current.info.get("expires") if current is not None else None) or d.info.get("expires")
        if not expires:
            return []
        text = str(expires)
        if _EXPIRY_TEXT.fullmatch(text) is not None:
            quiet_after = self._quiet_after(int(d.info.get("warn_days", 30)))
            # Later by a whole second at least (``now`` has microseconds): more than the warning days after now.
            if quiet_after is not None and text > quiet_after:
                return []
        return _expiry(d, current, self.now)


def _expiry(d: DesiredResource, current: LiveResource | None, now: dt.datetime) -> list[Finding]:
    if not kind_named(d.kind).has_expiry:
        return []
    expires = (current.info.get("expires") if current is not None else None) or d.info.get("expires")
    if not expires:
        return []
    when = expiry_time(str(expires))
    if when is None:
        return []
    days = (when - now).days
    warn_days = int(d.info.get("warn_days", 30))
    if when <= now:
        return [
            Finding(
                d.address, "warning", f"certificate expired on {expires} UTC", "renew it and update the spec", "expiry"
            )
        ]
    if days < warn_days:
        return [
            Finding(
                d.address,
                "warning",
                f"certificate expires in {days} days ({expires} UTC), within warnDays {warn_days}",
                "renew it before it expires",
                "expiry",
            )
        ]
    return []
