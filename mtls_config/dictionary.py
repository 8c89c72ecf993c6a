"""The columns an instance's tables have, from its data dictionary: what a run checks before it writes.

A real instance drops a column it does not have from a write and answers 200 (``reference/servicenow-facts-2.md``
§7), so the columns the engine writes are not assumed: ``sys_dictionary`` is read once a run for the tables the
stack touches, with ``sys_db_object`` for the tables they extend (a table's dictionary rows hold only the columns
it defines itself; ``sys_scope`` of a message is a row of ``sys_metadata``, §8). A column the engine would write
that the instance lacks is a plan error naming the table and the column.

Columns no source names (issue 16's HTTP connections) are found here by their form label, through
``message_binding.columns_of``.

Pure: the rows are read in a run's first round (``mtls_config.observe``). Never imports the client, the emulator
or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtls_config.resources.common import ref_value

DICTIONARY_TABLE = "sys_dictionary"
OBJECTS_TABLE = "sys_db_object"
# tsnow's query (facts-2 §8): active columns, without each table's collection row (empty element).
DICTIONARY_QUERY = "active=true^element!=NULL^nameIN"
DICTIONARY_FIELDS = ("name", "element", "column_label", "internal_type", "reference", "read_only")
OBJECT_FIELDS = ("name", "super_class.name")
# Tables the engine's tables are known to extend (facts-2 §9): asked for with them, so that the usual hierarchy
# costs no second round. A parent that is not here is read in a follow-up.
KNOWN_PARENTS = ("sys_metadata",)
# Parents known for one table only: asked for when that table is (an HTTP connection's columns may be its parent's,
# facts-2 §3).
PARENT_OF = {"http_connection": "sys_connection"}
MAX_DEPTH = 8  # tables extending tables: a loop or an absurd depth stops the walk


@dataclass(frozen=True)
class Column:
    table: str  # the table that defines it (a parent's, for an inherited column)
    name: str
    label: str
    type: str  # internal_type's name: boolean, reference, password2, ...
    reference: str  # the referenced table, for a reference
    read_only: bool


@dataclass(frozen=True)
class Dictionary:
    """The columns each table defines, and the table each extends, as the instance's dictionary says."""

    columns: Mapping[str, Mapping[str, Column]] = field(default_factory=dict)  # defining table -> name -> column
    parents: Mapping[str, str] = field(default_factory=dict)  # table -> the table it extends ("" for none)
    # ``lacks`` answered, by (table, column): asked for every field of every resource, the same few pairs
    _lacking: dict[tuple[str, str], bool] = field(default_factory=dict, init=False, compare=False, repr=False)
    # ``lacking`` answered, by set of columns: a plan asks for every resource, with the few sets its kinds write
    _lacking_sets: dict[tuple[tuple[str, tuple[str, ...]], ...], tuple[tuple[str, str], ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def readable(self) -> bool:
        """Whether the dictionary answered at all (a user without admin may read it as empty)."""
        return bool(self.parents)

    def knows(self, table: str) -> bool:
        """Whether the table's dictionary was read: its ``sys_db_object`` row came back."""
        return table in self.parents

    def lineage(self, table: str) -> tuple[str, ...]:
        """The table and those it extends, nearest first, as far as they were read."""
        chain: list[str] = []
        current = table
        while current and current not in chain and len(chain) < MAX_DEPTH:
            chain.append(current)
            current = self.parents.get(current, "")
        return tuple(chain)

    def column(self, table: str, name: str) -> Column | None:
        """The column ``table`` has by ``name``, its own or inherited."""
        for owner in self.lineage(table):
            found = self.columns.get(owner, {}).get(name)
            if found is not None:
                return found
        return None

    def by_label(self, table: str, label: str) -> Column | None:
        """The column ``table`` has whose label is ``label`` (compared ignoring case), its own or inherited."""
        wanted = label.casefold()
        for owner in self.lineage(table):
            for column in self.columns.get(owner, {}).values():
                if column.label.casefold() == wanted:
                    return column
        return None

    def lacks(self, table: str, name: str) -> bool:
        """True only when the dictionary was read for ``table`` and neither it nor a table it extends has ``name``."""
        known = self._lacking.get((table, name))
        if known is None:
            known = self._lacking[(table, name)] = (
                self.knows(table)
                and all(o in self.parents for o in self.lineage(table))
                and not self.column(table, name)
            )
        return known

    def lacking(self, written: Mapping[str, Sequence[str]]) -> tuple[tuple[str, str], ...]:
        """What of ``written`` (columns per table) this dictionary lacks, as ``(table, "table.column")``, sorted by
        table; each set of columns answered once."""
        key = tuple([(table, tuple(columns)) for table, columns in written.items()])
        found = self._lacking_sets.get(key)
        if found is None:
            found = self._lacking_sets[key] = tuple(
                (t, f"{t}.{c}") for t, columns in sorted(key) for c in columns if self.lacks(t, c)
            )
        return found

    def unread_parents(self) -> set[str]:
        """Tables a read table extends whose own dictionary was not read yet."""
        return {parent for parent in self.parents.values() if parent and parent not in self.parents}


def dictionary_of(
    column_rows: Iterable[Mapping[str, Any]], object_rows: Iterable[Mapping[str, Any]], base: Dictionary | None = None
) -> Dictionary:
    """A dictionary from ``sys_dictionary`` and ``sys_db_object`` rows (references as names or as links), added to
    ``base`` (an earlier round's)."""
    columns: dict[str, dict[str, Column]] = {t: dict(c) for t, c in (base.columns if base else {}).items()}
    parents: dict[str, str] = dict(base.parents) if base else {}
    for row in object_rows:
        name = str(row.get("name") or "")
        if name:
            parents[name] = _name(row.get("super_class.name"))
    for row in column_rows:
        table, element = str(row.get("name") or ""), str(row.get("element") or "")
        if not table or not element:
            continue
        columns.setdefault(table, {})[element] = Column(
            table=table,
            name=element,
            label=str(row.get("column_label") or ""),
            type=_name(row.get("internal_type")),
            reference=_name(row.get("reference")),
            read_only=str(row.get("read_only") or "").lower() == "true",
        )
    return Dictionary(columns, parents)


def _name(value: Any) -> str:
    """A dictionary reference keyed by name (facts-2 §8): the value is the name; a link ends in ``?name=<name>``."""
    text = ref_value(value)
    if not text and isinstance(value, Mapping):
        text = str(value.get("link") or "")
    return text.rpartition("?name=")[2] if "?name=" in text else text


def tables_to_read(tables: Iterable[str]) -> tuple[str, ...]:
    """The tables a first round asks the dictionary about: the stack's, and the parents they are known to have."""
    wanted = set(tables)
    parents = {PARENT_OF[t] for t in wanted if t in PARENT_OF}
    return tuple(sorted(wanted | parents | set(KNOWN_PARENTS))) if wanted else ()
