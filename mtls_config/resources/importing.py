"""What 'import' hands each kind: the instance's listings, the records chosen so far, their files, and where the
kind writes its spec documents, files and inventory entries.

``mtls_config.importer`` does the reading and the writing; the kinds decide, record by record, what to import
and how its spec reads (``Kind.import_select``, ``import_pulls``, ``import_records``). Pure: no I/O here.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mtls_config.inventory import OwnedResource
from mtls_config.resources.common import Attachment, LiveRecord

if TYPE_CHECKING:
    from mtls_config.dictionary import Dictionary
    from mtls_config.resources.kind import ImportRead, Kind

API_VERSION = "mtls-config/v1"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "item"


def free(taken: Collection[str], stem: str, suffix: str = "", sep: str = "-") -> str:
    """``stem + suffix``, or ``stem-2 + suffix``... when another record's name gave the same one already."""
    candidate, n = stem + suffix, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}{sep}{n}{suffix}"
    return candidate


@dataclass
class ImportContext:
    patterns: Sequence[str]
    owned_ids: set[str]
    listings: dict[ImportRead, list[LiveRecord]]
    selected: dict[str, dict[str, LiveRecord]] = field(default_factory=dict)  # table -> sys_id -> record
    attachments: dict[str, list[Attachment]] = field(default_factory=dict)  # record sys_id -> its attachments
    downloads: dict[str, tuple[Attachment, bytes]] = field(default_factory=dict)  # record sys_id -> its one file
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    docs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # import group -> spec documents
    entries: dict[str, OwnedResource] = field(default_factory=dict)  # address -> what the inventory will own
    skips: list[tuple[tuple[int, tuple[str, ...]], str]] = field(default_factory=list)
    variables: set[str] = field(default_factory=set)
    dictionary: Dictionary | None = None  # the instance's columns, read before the listings

    # -- reading --------------------------------------------------------------------------------------------

    def listed(self, read: ImportRead) -> list[LiveRecord]:
        return self.listings.get(read, [])

    def by_id(self, table: str) -> dict[str, LiveRecord]:
        """Every listed record of ``table``, by sys_id."""
        return {r.sys_id: r for read, rows in self.listings.items() if read.table == table for r in rows}

    def matches(self, name: str) -> bool:
        return not self.patterns or any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def owned(self, record: LiveRecord) -> bool:
        return record.sys_id in self.owned_ids

    def chosen(self, table: str) -> list[LiveRecord]:
        return list(self.selected.get(table, {}).values())

    def file_of(self, record: LiveRecord) -> tuple[Attachment, bytes] | None:
        return self.downloads.get(record.sys_id)

    def attachment_count(self, record: LiveRecord) -> int:
        return len(self.attachments.get(record.sys_id, []))

    # -- writing --------------------------------------------------------------------------------------------

    def select(self, record: LiveRecord) -> None:
        self.selected.setdefault(record.table, {})[record.sys_id] = record

    def file_path(self, name: str, suffix: str) -> str:
        """A free path under files/ for a record's file; the caller stores it in ``files``."""
        return free(self.files, f"files/{slug(name)}", suffix)

    def env_var(self, name: str) -> str:
        """A free environment variable name for a record's password."""
        variable = free(
            self.variables,
            "MTLS_KEYSTORE_PASSWORD_" + (re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "X"),
            sep="_",
        )
        self.variables.add(variable)
        return variable

    def free_name(self, kind: Kind, stem: str) -> str:
        """A name no other spec of ``kind`` written by this import has."""
        return free({d["metadata"]["name"] for d in self.docs.get(kind.import_group, [])}, stem)

    def add(self, kind: Kind, name: str, spec: dict[str, Any], entry: OwnedResource) -> None:
        """A spec document for the record(s) and the inventory entry that makes the stack own them."""
        doc = {"apiVersion": API_VERSION, "kind": kind.name, "metadata": {"name": name}, "spec": spec}
        self.docs.setdefault(kind.import_group, []).append(doc)
        entry.address = kind.address(name)
        self.entries[entry.address] = entry

    def imported(self, address: str) -> bool:
        return address in self.entries

    def skip(self, kind: Kind, key: tuple[str, ...], message: str) -> None:
        """Leave a record out, saying why; reported in the kinds' apply order, then by ``key``."""
        self.skips.append(((kind.stage, key), message))

    def skipped(self) -> list[str]:
        return [message for _, message in sorted(self.skips, key=lambda s: s[0])]
