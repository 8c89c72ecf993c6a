"""The emulated instance's records (the "backend" of a moto-style service): list, read, insert, update and delete
rows as the Table API does, and attachments as the Attachment API does. State and rules, no HTTP.

The parts it is built from: ``store`` (records and bytes, SQLite), ``auth`` (users, roles, tokens), ``rules``
(ACLs, business rules, derived fields, cascades), ``tables`` (the schema), ``query`` (encoded queries).
Values are stored as the instance shows them on the wire: strings, ``""`` for null, references as sys_ids,
dates ``YYYY-MM-DD HH:MM:SS`` UTC, password2 fields as ciphertext.

Must never import: starlette or any HTTP library, the client, the engine, ``mtls_config.keystore``.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mtls_config.emulator import query as encoded
from mtls_config.emulator.auth import Accounts, User
from mtls_config.emulator.certificates import DATE_FORMAT, days_until
from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import (
    AclDenied,
    BadRequest,
    InvalidTable,
    ReadDenied,
    RecordNotFound,
)
from mtls_config.emulator.rules import Rules, can_read, can_write, visible
from mtls_config.emulator.seed import SEED_REST_MESSAGES, SEED_SOAP_MESSAGES, seed_sys_id
from mtls_config.emulator.store import Record, Store, Vault
from mtls_config.emulator.tables import TABLES, Column, Table

__all__ = ["Backend", "ListResult", "Record", "User", "new_sys_id"]

_SYS_ID = re.compile(r"[0-9a-f]{32}")
_TRUE = frozenset({"true", "1", "yes"})


@dataclass(frozen=True)
class ListResult:
    records: list[Record]
    total: int


def new_sys_id() -> str:
    return uuid.uuid4().hex


class Backend:
    """One emulated instance. Thread-safe: every public method holds the instance lock."""

    def __init__(self, config: EmulatorConfig, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.config = config
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.RLock()
        self.store = Store(config.db_path, TABLES, seed_data=config.seed_data)
        self._tables = self.store.tables
        self._vault = Vault(self.store)
        self.accounts = Accounts(config, lambda: self.clock().timestamp())
        self.rules = Rules(config, self.store, self, lambda: self.clock())
        if config.seed_data and (self.store.fresh or self.store.meta("seed") == "pending"):
            # Also when a process died while seeding a new state file: the seed is idempotent, its marker last.
            self.seed()

    def close(self) -> None:
        with self._lock:
            self.store.close()

    # ------------------------------------------------------------------ control (tests, /_emulator)

    def reset(self, *, seed: bool | None = None) -> None:
        """Forget every record, attachment and token; then seed (default: as the config says)."""
        with self._lock:
            self.store.clear()
            self.accounts.forget_tokens()
            if self.config.seed_data if seed is None else seed:
                self.seed()

    def seed(self) -> None:
        """Create the seed users and REST/SOAP messages that do not exist yet (by name)."""
        with self._lock:
            for name, (_, roles) in self.config.users.items():
                self._seed("sys_user", {"user_name": name, "name": name, "roles": ",".join(roles)}, "user_name")
            for message in SEED_REST_MESSAGES:
                msg = self._seed("sys_rest_message", message["record"], "name")
                for fn in message["functions"]:
                    self._seed("sys_rest_message_fn", {**fn, "rest_message": msg["sys_id"]}, "function_name", msg)
            for message in SEED_SOAP_MESSAGES:
                msg = self._seed("sys_soap_message", message["record"], "name")
                for fn in message["functions"]:
                    self._seed("sys_soap_message_function", {**fn, "soap_message": msg["sys_id"]}, "function_name", msg)
            self.store.set_meta("seed", "done")

    def _seed(self, table: str, values: Mapping[str, str], key: str, parent: Record | None = None) -> Record:
        parent_field = {"sys_rest_message_fn": "rest_message", "sys_soap_message_function": "soap_message"}.get(table)
        for record in self._tables[table].values():
            if record.get(key) == values[key] and (
                parent_field is None or record[parent_field] == values[parent_field]
            ):
                return record
        sys_id = seed_sys_id(table, parent["sys_id"] if parent else "", values[key])
        if sys_id in self._tables[table]:  # the seed record was renamed: seed a new one beside it
            sys_id = new_sys_id()
        return self._insert(self._table(table), {**values, "sys_id": sys_id}, "admin", trusted=True)

    def records(self, table: str) -> list[Record]:
        """Copies of every stored record of ``table`` as stored (password2 as ciphertext). For tests."""
        with self._lock:
            return [dict(r) for r in self._tables[self._table(table).name].values()]

    def record(self, table: str, sys_id: str) -> Record | None:
        with self._lock:
            found = self._tables[self._table(table).name].get(sys_id)
            return dict(found) if found is not None else None

    def reveal_password(self, table: str, sys_id: str, column: str) -> str:
        """The clear text of a password2 value (for tests that check what was set; never served)."""
        with self._lock:
            return self._vault.decrypt(self._tables[table][sys_id].get(column, ""))

    def attachment_bytes(self, sys_id: str) -> bytes | None:
        with self._lock:
            return self.store.blobs.get(sys_id)

    # ------------------------------------------------------------------ users and tokens

    def authenticate(self, name: str, password: str) -> User | None:
        with self._lock:
            return self.accounts.authenticate(name, password)

    def user(self, name: str) -> User | None:
        with self._lock:
            return self.accounts.user(name)

    def issue_token(self, *, grant_type: str, form: Mapping[str, str]) -> dict[str, Any]:
        """OAuth 2.0 token endpoint (``/oauth_token.do``); raises OAuthRefused (401) when refused."""
        with self._lock:
            return self.accounts.issue_token(grant_type=grant_type, form=form)

    def token_user(self, token: str) -> User | None:
        with self._lock:
            return self.accounts.token_user(token)

    # ------------------------------------------------------------------ schema helpers

    def _table(self, name: str) -> Table:
        table = TABLES.get(name)
        if table is None:
            raise InvalidTable(name)
        return table

    def table(self, name: str) -> Table:
        return self._table(name)

    def is_valid_field(self, table: Table, path: str) -> bool:
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
                current = TABLES.get(column.reference)
                if current is None:  # a reference to a table we do not emulate: only sys_id is known
                    return parts[i + 1 :] == ["sys_id"]
        return True

    def value_at(self, table: Table, record: Mapping[str, str], path: str) -> str:
        """A (possibly dot-walked) field's stored value; ``""`` where a reference is empty or dangling."""
        head, _, rest = path.partition(".")
        value = record.get(head, "")
        if not rest:
            return value
        column = table.column(head)
        if column is None or column.reference is None or not value:
            return ""
        target_table = TABLES.get(column.reference)
        if target_table is None:
            return value if rest == "sys_id" else ""
        target = self._tables[target_table.name].get(value)
        return "" if target is None else self.value_at(target_table, target, rest)

    def display_value(self, column: Column, value: str) -> str:
        """The display value the instance shows for one stored value."""
        if column.type == "choice":
            return column.choices.get(value, value)
        if column.type == "reference" and column.reference is not None:
            target_table = TABLES.get(column.reference)
            if target_table is None:
                return value
            target = self._tables[target_table.name].get(value)
            return "" if target is None else target.get(target_table.display_field, "")
        if column.type == "password2":
            return "" if not value else "********"
        return value

    # ------------------------------------------------------------------ reading

    def list(
        self,
        table_name: str,
        user: User,
        *,
        query: str = "",
        limit: int | None = None,
        offset: int = 0,
    ) -> ListResult:
        with self._lock:
            table = self._table(table_name)
            if not can_read(user, table):
                if self.config.list_without_read_role == "403":
                    raise ReadDenied(table.name)
                return ListResult([], 0)
            parsed = encoded.parse(query, lambda f: self.is_valid_field(table, f))
            if parsed.invalid_parts and self.config.invalid_query_returns_no_rows:
                return ListResult([], 0)
            rows = [
                r
                for r in self._tables[table.name].values()
                if visible(user, table, r) and parsed.matches(lambda f, r=r: self.value_at(table, r, f))  # type: ignore[misc]
            ]
            for order in reversed(parsed.order):
                rows.sort(key=lambda r, o=order: self._sort_key(table, r, o.field), reverse=order.descending)  # type: ignore[misc]
            total = len(rows)
            end = None if limit is None else offset + limit
            return ListResult([self.public(table, r) for r in rows[offset:end]], total)

    def _sort_key(self, table: Table, record: Record, path: str) -> tuple[int, float, str]:
        value = self.value_at(table, record, path)
        column = table.column(path.split(".")[-1]) if "." not in path else None
        if column is not None and column.type == "integer" and value:
            try:
                return (1, float(value), "")
            except ValueError:
                pass
        return (0 if value == "" else 2, 0.0, value.lower())

    def get(self, table_name: str, sys_id: str, user: User) -> Record:
        with self._lock:
            table = self._table(table_name)
            record = self._tables[table.name].get(sys_id)
            if record is None or not can_read(user, table) or not visible(user, table, record):
                raise RecordNotFound()
            return self.public(table, record)

    def public(self, table: Table, record: Record) -> Record:
        """A record as the instance serves it: password2 never in clear, day counts current."""
        out = dict(record)
        for column in table.columns:
            out.setdefault(column.name, column.default)
            if column.type == "password2" and out[column.name]:
                mode = self.config.password2_read
                out[column.name] = {"empty": "", "masked": "********", "ciphertext": out[column.name]}[mode]
        if table.name == "sys_certificate":
            out["expires_in_days"] = days_until(out.get("expires", ""), self.clock())
        return out

    # ------------------------------------------------------------------ writing

    def insert(
        self, table_name: str, values: Mapping[str, Any], user: User, *, input_display_value: bool = False
    ) -> Record:
        with self._lock:
            table = self._table(table_name)
            if not can_write(user, table):
                raise AclDenied("Insert")
            record = self._insert(table, values, user.name, input_display_value=input_display_value)
            return self.public(table, record)

    def update(
        self,
        table_name: str,
        sys_id: str,
        values: Mapping[str, Any],
        user: User,
        *,
        input_display_value: bool = False,
    ) -> Record:
        with self._lock:
            table = self._table(table_name)
            old = self._tables[table.name].get(sys_id)
            if old is None or not can_read(user, table):
                raise RecordNotFound()
            if not can_write(user, table):
                raise AclDenied("Update")
            new = dict(old)
            for name, raw in values.items():
                column = table.column(name)
                if column is None or column.read_only:
                    continue
                self._assign(table, new, column, raw, input_display_value)
            changed = {k for k in new if new.get(k) != old.get(k)}
            if changed:
                self.rules.check(table, new, old)
                self.rules.derive(table, new, changed)
                new["sys_updated_on"] = self._timestamp()
                new["sys_updated_by"] = user.name
                new["sys_mod_count"] = str(int(old.get("sys_mod_count", "0") or 0) + 1)
                self.store.save(table.name, new)
                self.rules.after_update(table, new, old)
            return self.public(table, new)

    def delete(self, table_name: str, sys_id: str, user: User) -> None:
        with self._lock:
            table = self._table(table_name)
            record = self._tables[table.name].get(sys_id)
            if record is None or not can_read(user, table):
                raise RecordNotFound()
            if not can_write(user, table):
                raise AclDenied("Delete")
            self._delete(table, record)

    def _delete(self, table: Table, record: Record) -> None:
        self.store.remove(table.name, record["sys_id"], with_blob=table.name == "sys_attachment")
        self.rules.after_delete(table, record)

    # The rules' Writer: how business rules change other records.

    def insert_record(self, table: Table, values: Mapping[str, Any], user_name: str) -> Record:
        return self._insert(table, values, user_name)

    def save_record(self, table: str, record: Record) -> None:
        self.store.save(table, record)

    def delete_record(self, table: Table, record: Record) -> None:
        self._delete(table, record)

    def _timestamp(self) -> str:
        return self.clock().astimezone(dt.UTC).strftime(DATE_FORMAT)

    def _insert(
        self,
        table: Table,
        values: Mapping[str, Any],
        user_name: str,
        *,
        input_display_value: bool = False,
        trusted: bool = False,
    ) -> Record:
        sys_id = str(values.get("sys_id") or "")
        if sys_id and not _SYS_ID.fullmatch(sys_id):
            raise BadRequest("Operation Failed", f"Invalid sys_id '{sys_id}': 32 lowercase hexadecimal characters")
        if sys_id and sys_id in self._tables[table.name]:
            raise BadRequest("Operation Failed", f"Error during insert of {table.name} ({sys_id}): duplicate sys_id")
        record: Record = {c.name: c.default for c in table.columns}
        for name, raw in values.items():
            column = table.column(name)
            if column is None or (column.read_only and not (trusted and name != "sys_id")):
                continue
            self._assign(table, record, column, raw, input_display_value)
        now = self._timestamp()
        record.update(
            sys_id=sys_id or new_sys_id(),
            sys_created_on=now,
            sys_created_by=user_name,
            sys_updated_on=now,
            sys_updated_by=user_name,
            sys_mod_count="0",
        )
        self.rules.check(table, record, None)
        self.rules.derive(table, record, set(record))
        self.store.save(table.name, record)
        self.rules.after_insert(table, record, user_name, seeding=trusted)
        return record

    def _assign(self, table: Table, record: Record, column: Column, raw: Any, input_display_value: bool) -> None:
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
        target_table = TABLES.get(column.reference or "")
        if not value or target_table is None:
            return value
        rows = self._tables[target_table.name]
        if value in rows:
            return value
        # Like the instance, a reference set by its display value resolves to that record's sys_id.
        for sys_id, row in rows.items():
            if row.get(target_table.display_field) == value:
                return sys_id
        return value

    # ------------------------------------------------------------------ attachments

    def add_attachment(
        self,
        user: User,
        *,
        table_name: str,
        table_sys_id: str,
        file_name: str,
        content_type: str,
        content: bytes,
    ) -> Record:
        with self._lock:
            table = self._table(table_name)
            target = self._tables[table.name].get(table_sys_id)
            if target is None or not can_read(user, table):
                raise RecordNotFound("Invalid table name or sys_id of the record to attach to")
            if not can_write(user, table):
                raise AclDenied("Insert")
            values = {
                "file_name": file_name,
                "content_type": content_type,
                "size_bytes": str(len(content)),
                "size_compressed": str(len(zlib.compress(content))),
                "compressed": "true",
                "table_name": table.name,
                "table_sys_id": table_sys_id,
            }
            record = self._insert(TABLES["sys_attachment"], values, user.name, trusted=True)
            self.store.put_blob(record["sys_id"], content)
            self.rules.after_attachment(table, target, content)
            return self.public(TABLES["sys_attachment"], record)

    def attachment(self, sys_id: str, user: User) -> tuple[Record, bytes]:
        with self._lock:
            table = TABLES["sys_attachment"]
            record = self._tables[table.name].get(sys_id)
            if record is None or not visible(user, table, record):
                raise RecordNotFound("Record doesn't exist or ACL restricts the record retrieval")
            return self.public(table, record), self.store.blobs.get(sys_id, b"")

    def delete_attachment(self, sys_id: str, user: User) -> None:
        with self._lock:
            table = TABLES["sys_attachment"]
            record = self._tables[table.name].get(sys_id)
            if record is None or not visible(user, table, record):
                raise RecordNotFound()
            target = TABLES.get(record.get("table_name", ""))
            if target is None or not can_write(user, target):
                raise AclDenied("Delete")
            self._delete(table, record)


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
