"""Desired x Live -> changes. Pure: no I/O, no clock (``now`` is passed in).

Per resource the action is create, update, replace (the record must be re-made), delete (owned records
the specs no longer name, only with prune) or no-op. Fields are compared in canonical form with deepdiff;
derived fields (expiry, subject, sys_*) are never compared, only carried as information. The keystore
password is compared through the inventory's salted digest and shown only as "(sensitive value changed)".

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from deepdiff import DeepDiff

from mtls_config.desired import Desired
from mtls_config.inventory import IMPORTED_PASSWORD
from mtls_config.observe import Live
from mtls_config.resources import key_store, message_binding
from mtls_config.resources.common import KIND_ORDER, DesiredResource, LiveResource

Action = Literal["create", "update", "replace", "delete", "no-op"]
SENSITIVE = "(sensitive value)"


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    sensitive: bool = False


@dataclass(frozen=True)
class Fingerprint:
    """What a saved plan pins: a record's identity and its modification count when planned."""

    part: str
    table: str
    sys_id: str
    mod_count: int


@dataclass(frozen=True)
class Change:
    address: str
    kind: str
    name: str
    table: str
    action: Action
    reason: str
    fields: tuple[FieldChange, ...] = ()
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    live: tuple[Fingerprint, ...] = ()
    importing: bool = False
    depends_on: tuple[str, ...] = ()

    @property
    def sensitive_changed(self) -> bool:
        return any(f.sensitive for f in self.fields)


@dataclass(frozen=True)
class Finding:
    """Something a plan or drift run reports that is not a change: a conflict, an orphan, a warning."""

    address: str
    severity: Literal["error", "warning", "info"]
    message: str
    hint: str = ""
    kind: FindingKind = "other"


# What a finding is about, for reports that sort them (drift's "unexpected", expiry alerts).
FindingKind = Literal["orphan", "expiry", "conflict", "lint", "other"]


@dataclass(frozen=True)
class DiffResult:
    changes: tuple[Change, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def has_changes(self) -> bool:
        return any(c.action != "no-op" for c in self.changes)


def sort_key(address: str, action: str) -> tuple[int, int, str]:
    kind = address.partition("/")[0]
    order = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    if action == "delete":
        return (1, -order, address)
    return (0, order, address)


def diff(desired: Desired, live: Live, *, prune: bool = False, now: dt.datetime | None = None) -> DiffResult:
    now = now or dt.datetime.now(dt.UTC)
    changes: list[Change] = []
    findings: list[Finding] = []
    for d in desired.resources:
        current = live.resources.get(d.address)
        owned = live.owned(d.address)
        if d.kind == "MessageBinding" and current is not None and owned is None and not d.adopt:
            elsewhere = _bound_elsewhere(d, current)
            if elsewhere:
                findings.append(
                    Finding(
                        d.address, "error", elsewhere, "set 'metadata.adopt: true' to take the message over", "conflict"
                    )
                )
                continue
        if d.address in live.duplicates:
            findings.append(
                Finding(
                    d.address,
                    "error",
                    live.duplicates[d.address],
                    "the instance may use any of them: rename or delete the extra records, then plan again",
                    "conflict",
                )
            )
            continue
        if d.address in live.binding_errors:
            findings.append(
                Finding(
                    d.address,
                    "error",
                    live.binding_errors[d.address],
                    "a MessageBinding binds an existing message; create the message (or fix its name) first",
                    "conflict",
                )
            )
            continue
        change, notes = _compare(d, current, live)
        changes.append(change)
        findings.extend(notes)
        findings.extend(_expiry(d, current, now))
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
    changes.sort(key=lambda c: sort_key(c.address, c.action))
    findings.sort(key=lambda f: (f.address, f.severity, f.message))
    return DiffResult(tuple(changes), tuple(findings))


def _repoint_dependants(changes: list[Change]) -> list[Change]:
    """A keystore that is re-made gets a new sys_id: profiles that use it must be pointed at the new record
    even though, by name, nothing about them changed."""
    replaced = {c.name for c in changes if c.kind == "KeyStore" and c.action == "replace"}
    if not replaced:
        return changes
    out = []
    for c in changes:
        if c.kind == "ProtocolProfile" and c.action == "no-op" and c.after and c.after.get("keystore") in replaced:
            name = c.after["keystore"]
            c = replace(
                c,
                action="update",
                reason=f"its keystore '{name}' is re-created",
                fields=(FieldChange("keystore", name, name),),
            )
        out.append(c)
    return out


def _fingerprints(current: LiveResource | None) -> tuple[Fingerprint, ...]:
    if current is None:
        return ()
    return tuple(
        Fingerprint(part, rec.table, rec.sys_id, rec.mod_count) for part, rec in sorted(current.records.items())
    )


def _desired_fields(d: DesiredResource, current: LiveResource | None) -> dict[str, Any]:
    fields = dict(d.fields)
    if d.kind == "MessageBinding" and d.target.get("functions") == "all" and current is not None:
        protocol = fields["message"]["protocol_name"]
        fields["functions"] = {fn: message_binding.part_fields(protocol) for fn in sorted(current.fields["functions"])}
    return fields


def _compare(d: DesiredResource, current: LiveResource | None, live: Live) -> tuple[Change, list[Finding]]:
    after = _desired_fields(d, current)
    notes: list[Finding] = []
    owned = live.owned(d.address)
    if current is None:
        reason = "not on the instance"
        if owned is not None and not owned.pending:
            reason = "owned record is missing on the instance (deleted outside mtls-config)"
        fields = tuple(FieldChange(k, None, v) for k, v in _flatten(after).items())
        if d.password is not None:
            fields += (FieldChange(key_store.PASSWORD_FIELD, None, SENSITIVE, sensitive=True),)
        return _change(d, "create", reason, fields, None, after, current), notes

    primary = current.primary
    owned_ids = {r.sys_id for r in owned.records} if owned is not None else set()
    is_owned = primary is not None and primary.sys_id in owned_ids
    importing = False
    if not is_owned and d.kind == "MessageBinding":
        return _bind(d, current, after), notes
    if not is_owned:
        if not d.adopt:
            notes.append(
                Finding(
                    d.address,
                    "error",
                    f"exists on the instance but stack '{live.stack}' does not own it",
                    "set 'metadata.adopt: true' on the resource, or run 'mtls-config import', to take it over",
                    "conflict",
                )
            )
        importing = True

    before = dict(current.fields)
    if d.kind in ("KeyStore", "TrustStoreCert") and _family(before.get("type")) != _family(after.get("type")):
        reason = f"record type {before.get('type')!r} cannot become {after.get('type')!r} in place"
        return _change(d, "replace", reason, _field_changes(before, after), before, after, current, importing), notes

    changed = list(_field_changes(before, after))
    reasons: list[str] = []
    if d.password is not None:
        state = _password_state(d, current, live, is_owned)
        if state:
            changed.append(FieldChange(key_store.PASSWORD_FIELD, SENSITIVE, SENSITIVE, sensitive=True))
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
    return _change(d, action, "; ".join(reasons), tuple(changed), before, after, current, importing), notes


def _bind(d: DesiredResource, current: LiveResource, after: dict[str, Any]) -> Change:
    """A binding the stack does not own yet: it takes over two fields of an existing message."""
    return _change(
        d,
        "create",
        "enable mutual authentication on the existing message",
        _field_changes(current.fields, after),
        dict(current.fields),
        after,
        current,
    )


def _bound_elsewhere(d: DesiredResource, current: LiveResource) -> str:
    """The message already uses mutual auth with another profile (someone else's set-up)."""
    ours = d.fields["message"]["protocol_name"]
    parts = {"message": current.fields["message"], **current.fields["functions"]}
    for part, values in sorted(parts.items()):
        if values.get("use_mutual_auth") and values.get("protocol_name") not in ("", ours):
            where = "the message" if part == "message" else f"function '{part}'"
            return f"{where} already uses mutual authentication with profile '{values.get('protocol_name')}'"
    return ""


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


def _moved_outside(current: LiveResource, owned_records: list[Any]) -> str:
    for rec in owned_records:
        live_rec = current.records.get(rec.part)
        if live_rec is not None and rec.mod_count is not None and live_rec.mod_count > rec.mod_count:
            return f"modified outside mtls-config (sys_mod_count {rec.mod_count} -> {live_rec.mod_count})"
    return ""


def _family(record_type: Any) -> str:
    return "trust" if record_type == "trust_store" else "key"


def _delete(current: LiveResource, owned_records: list[Any]) -> Change:
    if current.kind == "MessageBinding":
        originals = {r.part: r.original for r in owned_records if r.original is not None}
        reason = "removed from the specs: restore the message's original mutual-auth fields"
        after: dict[str, Any] | None = {"restore": originals}
    else:
        reason = "owned by this stack and removed from the specs"
        after = None
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
    info: dict[str, Any] = dict(current.info) if current is not None else {}
    for k, v in d.info.items():
        if k in ("subject", "expires") and k not in info:
            info[k] = v
    return Change(
        d.address, d.kind, d.name, d.table, action, reason, fields, before, after, info,
        _fingerprints(current), importing, d.depends_on,
    )  # fmt: skip


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
    if _identical(owned_before, dict(after)):
        return ()  # the common case at scale: DeepDiff costs about a millisecond a resource to say so
    if all(type(k) is str and type(v) in _SCALARS for k, v in after.items()) and all(
        type(v) in _SCALARS for v in owned_before.values()
    ):
        # Flat fields of plain values (every kind but bindings): DeepDiff reports each field that is not the same
        # object and differs in type or value, under its own name; said here at a tenth of its cost.
        return tuple(
            FieldChange(k, owned_before[k], after[k])
            for k in sorted(after)
            if not (owned_before[k] is after[k] or _identical(owned_before[k], after[k]))
        )
    return _deep_field_changes(owned_before, after)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _deep_field_changes(owned_before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
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


def _identical(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down: where this holds DeepDiff reports nothing either."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return False
        for k, v in a.items():
            w = b[k]
            # Scalars (most fields) compared here: a call per field was most of the time of a no-change diff.
            if type(v) is not type(w) or not (_identical(v, w) if isinstance(v, dict | list | tuple) else v == w):
                return False
        return True
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_EXPIRY_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def _expiry_time(text: str) -> dt.datetime | None:
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


def _expiry(d: DesiredResource, current: LiveResource | None, now: dt.datetime) -> list[Finding]:
    if d.kind not in ("KeyStore", "TrustStoreCert"):
        return []
    expires = (current.info.get("expires") if current is not None else None) or d.info.get("expires")
    if not expires:
        return []
    when = _expiry_time(str(expires))
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
