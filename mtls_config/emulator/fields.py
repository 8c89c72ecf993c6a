"""Field values as the instance reads, shows and stores them: dot-walking through references (by sys_id, or by
name for the dictionary's own), display values (choice labels, referenced names, masks), a record as it is served
to a user, and a value a client sends coerced to what the column keeps (booleans, integers, choices, references by
display value, password2 encrypted, one-way passwords hashed, long strings cut).

Reads take no lock: they look only at stored records, which are never changed in place.
Must never import: starlette or any HTTP library, the client, the engine, ``mtls_config.keystore``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from mtls_config.emulator.auth import User, hash_password
from mtls_config.emulator.certificates import days_until
from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import BadRequest
from mtls_config.emulator.store import Record, Vault
from mtls_config.emulator.tables import Column, Schema, Table

_TRUE = frozenset({"true", "1", "yes"})


class Fields:
    def __init__(
        self,
        config: EmulatorConfig,
        schema: Schema,
        rows: Callable[[str], dict[str, Record]],
        vault: Vault,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.config = config
        self.schema = schema
        self._rows = rows  # a table's stored rows by sys_id
        self._vault = vault
        self._clock = clock

    def is_valid(self, table: Table, path: str) -> bool:
        """Whether a (possibly dot-walked) field exists: ``keystore.name`` on a profile."""
        parts = path.split(".")
        current: Table | None = table
        for i, part in enumerate(parts):
            if current is None:
                return False
            column = current.column(part)
            if column is None:
                return False
            if i < len(parts) - 1:
                if column.type != "reference" or column.reference is None:
                    return False
                current = self.schema.get(column.reference)
                if current is None:  # a reference to a table we do not emulate: only sys_id is known
                    return parts[i + 1 :] == ["sys_id"]
        return True

    def _target(self, column: Column, value: str) -> tuple[Table, Record] | None:
        """The record a reference value points at (by sys_id, or by the key the column names)."""
        target_table = self.schema.get(column.reference or "")
        if target_table is None or not value:
            return None
        rows = self._rows(target_table.name)
        if column.reference_key == "sys_id":
            found = rows.get(value)
        else:
            found = next((r for r in list(rows.values()) if r.get(column.reference_key) == value), None)
        return None if found is None else (target_table, found)

    def value_at(self, table: Table, record: Mapping[str, str], path: str) -> str:
        """A (possibly dot-walked) field's stored value; ``""`` where a reference is empty or dangling."""
        head, _, rest = path.partition(".")
        value = record.get(head, "")
        if not rest:
            return value
        column = table.column(head)
        if column is None or column.reference is None or not value:
            return ""
        if self.schema.get(column.reference) is None:
            return value if rest == "sys_id" else ""
        target = self._target(column, value)
        return "" if target is None else self.value_at(target[0], target[1], rest)

    def display_value(self, column: Column, value: str) -> str:
        """The display value the instance shows for one stored value."""
        if column.type == "choice":
            return column.choices.get(value, value)
        if column.type == "reference" and column.reference is not None:
            if self.schema.get(column.reference) is None:
                return value
            target = self._target(column, value)
            return "" if target is None else target[1].get(target[0].display_field, "")
        if column.type in ("password", "password2"):
            return "" if not value else "********"
        if column.type == "glide_list" and column.reference is not None and value:
            target_table = self.schema.get(column.reference)
            if target_table is None:
                return value
            rows = self._rows(target_table.name)
            found = (rows.get(sys_id) for sys_id in value.split(","))
            return ", ".join(row.get(target_table.display_field, "") for row in found if row is not None)
        return value

    def public(self, table: Table, record: Record, viewer: User | None = None) -> Record:
        """A record as the instance serves it to ``viewer``: password2 never in clear, a one-way password hash
        only to admin (a field ACL [I]), day counts current."""
        out = dict(record)
        for column in table.columns:
            out.setdefault(column.name, column.default)
            if column.type == "password2" and out[column.name]:
                mode = self.config.password2_read
                out[column.name] = {"empty": "", "masked": "********", "ciphertext": out[column.name]}[mode]
            if column.type == "password" and (viewer is None or "admin" not in viewer.roles):
                out[column.name] = ""
        if table.name == "sys_certificate":
            out["expires_in_days"] = days_until(out.get("expires", ""), self._clock())
        return out

    def assign(self, table: Table, record: Record, column: Column, raw: Any, input_display_value: bool) -> None:
        """Set ``column`` of ``record`` from a value a client sent, as the instance stores it."""
        value = _as_text(raw)
        if column.type == "boolean":
            record[column.name] = "true" if value.lower() in _TRUE else "false"
        elif column.type == "integer":
            record[column.name] = _as_integer(value)
        elif column.type == "choice":
            if value == "":
                return  # an empty string does not clear a choice field
            if input_display_value:
                value = next((k for k, label in column.choices.items() if label == value), value)
            record[column.name] = value
        elif column.type == "reference":
            record[column.name] = self._resolve_reference(column, value)
        elif column.type == "password2":
            if self.config.password2_write_needs_input_display_value and not input_display_value:
                return  # "values submitted to encrypted fields are not saved" without the flag
            record[column.name] = self._vault.encrypt(value) if value else ""
        elif column.type == "password":
            # One-way: set as a display value it is hashed; otherwise it is kept as given, as if it were the hash
            # already, so that nobody can log in with it [I].
            hashed = input_display_value or not self.config.user_password_needs_input_display_value
            record[column.name] = hash_password(value) if value and hashed else value
        else:
            if column.max_length is not None and len(value) > column.max_length:
                if self.config.over_max_length == "reject":
                    raise BadRequest(
                        "Operation Failed",
                        f"{table.name}.{column.name} holds at most {column.max_length} characters, got {len(value)}",
                    )
                value = value[: column.max_length]
            record[column.name] = value

    def _resolve_reference(self, column: Column, value: str) -> str:
        target_table = self.schema.get(column.reference or "")
        if not value or target_table is None:
            return value
        rows = self._rows(target_table.name)
        if value in rows:
            return value
        # Like the instance, a reference set by its display value resolves to that record's sys_id.
        for sys_id, row in rows.items():
            if row.get(target_table.display_field) == value:
                return sys_id
        return value


def _as_text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, dict):
        return _as_text(raw.get("value", ""))
    if isinstance(raw, list):
        return ",".join(_as_text(x) for x in raw)
    return str(raw)


def _as_integer(value: str) -> str:
    text = value.strip().replace(",", "")
    if not text:
        return ""
    try:
        return str(int(float(text)))
    except ValueError:
        return ""
