"""Did a write stick? The record the instance returned after a create or update, compared with what was sent.

A real instance answers 200/201 to a write it did not carry out in full: a column it does not have is dropped
silently, a field ACL refuses a field without refusing the write, a business rule sets a field back
(``reference/servicenow-facts-2.md`` §7). So every owned field a create or update sends is compared with the
value the instance kept, in the form the instance stores it: booleans as booleans, integers as numbers,
references as sys_ids, and whatever a kind normalises (a trust certificate's PEM text, by fingerprint). Write-only
columns (the keystore password) are never compared: the instance does not give them back.

Pure: the runner (``mtls_config.apply``) reads the records and reports what this finds.
Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from mtls_config.operations import Create, Update
from mtls_config.resources.common import ref_value

BOOLEAN_TEXT = frozenset({"true", "false"})
SHOWN_CHARACTERS = 60


@dataclass(frozen=True)
class Unkept:
    """One field the instance did not keep as it was written."""

    table: str
    sys_id: str
    column: str
    sent: str
    kept: str | None  # None: the answer does not carry the column at all

    def describe(self) -> str:
        kept = "no such field in the answer" if self.kept is None else f"kept {_shown(self.kept)}"
        return f"{self.table}.{self.column}: sent {_shown(self.sent)}, {kept}"


def _shown(value: str) -> str:
    text = value if len(value) <= SHOWN_CHARACTERS else value[: SHOWN_CHARACTERS - 3] + "..."
    return repr(text)


def same_value(sent: str, kept: str) -> bool:
    """Whether a stored value is the value sent, as the instance stores it (not character for character)."""
    if sent == kept:
        return True
    if sent.lower() in BOOLEAN_TEXT:
        return kept.strip().lower() in {sent.lower(), "1" if sent.lower() == "true" else "0"}
    if sent.strip().lstrip("-").isdigit() and kept.strip().lstrip("-").isdigit():
        return int(sent) == int(kept)
    return False


def unkept(
    op: Create | Update,
    record: Mapping[str, Any],
    *,
    write_only: Collection[str] = (),
    form: Callable[[str, str], str] = lambda column, value: value,
) -> list[Unkept]:
    """The fields of ``op`` that ``record`` (the instance's answer, or the record read after the write) does not
    hold as sent. ``form`` brings a column's value into the form the kind compares it in."""
    out: list[Unkept] = []
    for column, sent in sorted(op.values.items()):
        if column in write_only:
            continue
        if column not in record:
            out.append(Unkept(op.table, op.sys_id, column, sent, None))
            continue
        kept = ref_value(record[column])
        if not same_value(form(column, sent), form(column, kept)):
            out.append(Unkept(op.table, op.sys_id, column, sent, kept))
    return out


HINT = (
    "the instance answered the write as done: a column it does not have is dropped silently, a field ACL refuses "
    "a field without refusing the write, a business rule can set it back. Check the column in the table's "
    "dictionary ('mtls-config doctor'), then its ACLs and business rules"
)


def unkept_message(found: list[Unkept]) -> str:
    return "the instance did not keep what was written: " + "; ".join(u.describe() for u in found)
