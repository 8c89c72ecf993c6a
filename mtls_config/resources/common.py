"""Values shared by the resource kinds: the canonical desired and live states, and wire conversions.

The engine compares resources in one canonical form: typed values (bool, int, str), references as the
referenced resource's name, certificate and keystore content as digests. Desired specs and live records
are both brought into it, so a freshly applied stack always compares equal.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mtls_config.frozen import slot_maker
from mtls_config.resources.sending import Sender
from mtls_config.secrets import SecretValue


@dataclass(frozen=True)
class Content:
    """A file the instance keeps as an attachment (keystore, DER certificate)."""

    data: bytes = field(repr=False)
    file_name: str
    content_type: str
    digest: str  # what is compared: "sha256:<hex>" of the bytes, or a keystore's canonical digest
    canonical: bool = False  # True: compare a keystore's canonical model, not its bytes

    @property
    def sha256(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class DesiredResource:
    """One resource as the specs want it, in canonical form, with what applying it needs. Slotted: one per
    resource, kept for the run (120 bytes where an instance dict took 350); the kinds make it with
    ``desired_resource``."""

    address: str
    kind: str
    name: str
    table: str
    fields: Mapping[str, Any]  # canonical owned fields (compared)
    adopt: bool = False
    content: Content | None = None
    password: SecretValue | None = None  # write-only; compared through the inventory's salted digest
    depends_on: tuple[str, ...] = ()  # addresses that must exist first
    info: Mapping[str, Any] = field(default_factory=dict)  # shown, never compared
    # MessageBinding only: which message, and which functions ("all", a list, or none)
    target: Mapping[str, Any] = field(default_factory=dict)


# ``DesiredResource(...)`` given every field in order, its slots filled directly: a kind's desired state makes one
# per resource (1.5 -> 0.6 us).
desired_resource = slot_maker(DesiredResource)


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """One record as the Table API returned it (all values strings, references as sys_ids). Slotted: a plan holds
    one per record it read (20 000 and more), and makes them with ``live_record_made``."""

    table: str
    sys_id: str
    mod_count: int
    values: Mapping[str, str]

    def get(self, name: str) -> str:
        return self.values.get(name, "")


@dataclass(frozen=True)
class Attachment:
    sys_id: str
    file_name: str
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class LiveResource:
    """One resource as it is on the instance, in canonical form (None parts: absent). Slotted: a plan holds one per
    resource; the kinds make them with ``live_resource`` (every field, in order)."""

    address: str
    kind: str
    name: str
    table: str
    records: Mapping[str, LiveRecord]  # by part: "" for single-record kinds, "message" / "fn:<name>" for bindings
    fields: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    problems: tuple[str, ...] = ()  # facts that make the record unusable as-is (e.g. two attachments)
    primary_part: str = ""  # the part whose record is the resource's own (a binding's message)
    # The records a bound call goes through, owned or not (a binding's message and all its functions), as the
    # checks of ``resources.sending`` see them: never compared, never shown.
    senders: tuple[Sender, ...] = ()

    @property
    def primary(self) -> LiveRecord | None:
        return self.records.get(self.primary_part)

    def with_fields(self, fields: Mapping[str, Any]) -> LiveResource:
        """``dataclasses.replace(self, fields=fields)``, without its call of ``__init__`` with every field by name (the
        content checks make one for every keystore of a plan)."""
        return live_resource(
            self.address, self.kind, self.name, self.table, self.records, fields, self.info, self.attachments,
            self.problems, self.primary_part, self.senders,
        )  # fmt: skip


# ``LiveRecord(...)`` and ``LiveResource(...)`` given every field in order, their slots filled directly (a frozen
# dataclass's ``__init__`` sets each field through ``object.__setattr__``): one of each a resource a plan reads,
# 0.5 and 1.3 us each that way (issue 18).
live_record_made = slot_maker(LiveRecord)
live_resource = slot_maker(LiveResource)


# What the instance writes for most booleans and numbers, looked up rather than read (several a record, tens of
# thousands of records a plan): each gives what reading it gives.
_BOOL_TEXT = {"true": True, "false": False}
_SMALL_INT_TEXT = {str(n): n for n in range(1000)}


def to_bool(value: str | bool | None) -> bool:
    known = _BOOL_TEXT.get(value) if type(value) is str else None
    if known is not None:
        return known
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes"}


def to_int(value: str | int | None) -> int | None:
    known = _SMALL_INT_TEXT.get(value) if type(value) is str else None
    if known is not None:
        return known
    if isinstance(value, int):
        return value
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 40:  # no count, size or port the instance keeps is that long
        return None
    try:
        return int(float(text))
    except (ValueError, OverflowError):  # "1e999" is infinity, which has no integer
        return None


def wire(value: Any) -> str:
    """A canonical value as the Table API wants it: strings everywhere."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def ref_value(value: Any) -> str:
    """The sys_id of a reference field, whether or not the instance sent a link."""
    if isinstance(value, Mapping):
        return str(value.get("value", ""))
    return "" if value is None else str(value)
