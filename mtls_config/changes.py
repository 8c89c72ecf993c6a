"""What a plan is made of, as plain frozen values: changes, their field changes and live fingerprints, findings; and
what applying the changes came to (outcomes).

The diff makes them, the plan serialises them, the kinds compile them into operations and the renderers show
them. Pure data: no I/O, no clock.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Action = Literal["create", "update", "replace", "delete", "no-op"]
# What a finding is about, for reports that sort them (drift's "unexpected", expiry alerts).
FindingKind = Literal["orphan", "expiry", "conflict", "lint", "mutual-auth", "other"]
# "interrupted": a signal stopped the run while the resource was being written (a re-run finishes it);
# "not applied": a signal stopped the run before it began on the resource.
Status = Literal["applied", "failed", "skipped", "interrupted", "not applied"]
SENSITIVE = "(sensitive value)"


# Slotted: a plan that creates 20 000 resources holds 330 000 field changes, and a dict each was 100 bytes more
# than the values it held (issue 18, apply's memory).
@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    sensitive: bool = False


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a saved plan pins: a record's identity and its modification count when planned."""

    part: str
    table: str
    sys_id: str
    mod_count: int


@dataclass(frozen=True, slots=True)
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

    def changed(self, name: str) -> bool:
        return any(f.field == name for f in self.fields)


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a plan or drift run reports that is not a change: a conflict, an orphan, a warning."""

    address: str
    severity: Literal["error", "warning", "info"]
    message: str
    hint: str = ""
    kind: FindingKind = "other"


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


@dataclass(frozen=True)
class Outcome:
    address: str
    action: str
    status: Status
    message: str = ""
    hint: str = ""


@dataclass(frozen=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]
    journal: Path | None
    tidied: tuple[str, ...] = ()  # what a run with no change tidied (housekeeping), one sentence each

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return all(o.status == "applied" for o in self.outcomes)
