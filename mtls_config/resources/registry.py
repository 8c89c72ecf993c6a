"""The resource kinds, in the order they are applied (deletions run in reverse). The engine's stages iterate this;
a kind they are asked about and do not find here is an error (``UnknownKind``), never treated as another kind.

Adding a kind: its spec model in ``spec/models.py``, its module here in ``resources/``, one line in ``KINDS``
(docs/architecture.md says the rest).

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from mtls_config.errors import UnknownKind
from mtls_config.resources import key_store, message_binding, protocol_profile, trust_store_cert
from mtls_config.resources.kind import Kind, Reference

if TYPE_CHECKING:
    from mtls_config.dictionary import Dictionary

KINDS: tuple[Kind, ...] = (key_store.KIND, trust_store_cert.KIND, protocol_profile.KIND, message_binding.KIND)
_BY_NAME = {k.name: k for k in KINDS}
NAMES = tuple(_BY_NAME)


def kind_named(name: str) -> Kind:
    found = _BY_NAME.get(name)
    if found is None:
        raise UnknownKind(
            f"unknown resource kind {name!r} (this version knows {', '.join(NAMES)})",
            hint="the record was written by another version of mtls-config: use that version, or upgrade",
        )
    return found


def kind_of_address(address: str) -> Kind:
    return kind_named(address.partition("/")[0])


def position(name: str) -> int:
    """The kind's place in the apply order."""
    return NAMES.index(kind_named(name).name)


def columns(table: str) -> tuple[str, ...]:
    """What the kinds read of ``table``: the union of their columns, in the order first declared."""
    out: dict[str, None] = {}
    for kind in KINDS:
        for column in kind.reads().get(table, ()):
            out.setdefault(column, None)
    return tuple(out)


def fields_to_read(table: str) -> list[str] | None:
    """``sysparm_fields`` for reading ``table``'s records: what the kinds read, or None (every column) for a table
    some of whose columns are known only by label until the dictionary names them."""
    if any(table in kind.every_column() for kind in KINDS):
        return None
    return list(columns(table))


def read_tables() -> Mapping[str, tuple[str, ...]]:
    tables: dict[str, None] = {}
    for kind in KINDS:
        for table in kind.reads():
            tables.setdefault(table, None)
    return {table: columns(table) for table in tables}


def roles_of_table(table: str) -> tuple[str, ...]:
    """The roles (any one of them) a kind's table needs; admin for a table no kind declares."""
    for kind in KINDS:
        found = kind.table_roles().get(table)
        if found is not None:
            return found
    return ("admin",)


def kinds_of_table(table: str) -> tuple[str, ...]:
    """The names of the kinds whose records live in ``table``."""
    return tuple(kind.name for kind in KINDS if table in kind.reads())


def written_columns(tables: Iterable[str], dictionary: Dictionary | None = None) -> dict[str, tuple[str, ...]]:
    """Every column the kinds may write to ``tables``, per table (what 'doctor' checks an instance has)."""
    wanted = set(tables)
    out: dict[str, dict[str, None]] = {}
    for kind in KINDS:
        for table, columns in kind.all_written_columns(dictionary).items():
            if table in wanted:
                out.setdefault(table, {}).update(dict.fromkeys(columns))
    return {table: tuple(columns) for table, columns in sorted(out.items())}


def references(dictionary: Dictionary | None = None) -> tuple[Reference, ...]:
    """Every reference column of the kinds' tables, as the instance (its dictionary, when read) names them."""
    return tuple(ref for kind in KINDS for ref in kind.references_of(dictionary))


def lacking_columns(tables: Iterable[str], dictionary: Dictionary) -> list[str]:
    """What the kinds always write to ``tables`` that the instance's dictionary lacks (what 'doctor' reports)."""
    wanted = set(tables)
    out: dict[str, None] = {}
    for kind in KINDS:
        if wanted & set(kind.all_written_columns(dictionary)):
            out.update(dict.fromkeys(what for table, what in kind.lacking_columns(dictionary) if table in wanted))
    return list(out)


def attachment_tables() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k.attachment_table for k in KINDS if k.attachment_table is not None))


@functools.cache
def opaque_columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` whose value the instance keeps opaque (a password's ciphertext). Asked for every
    record apply writes: made once per table (``KINDS`` is fixed)."""
    return tuple(dict.fromkeys(k.opaque_column for k in KINDS if k.opaque_column is not None and table in k.reads()))
