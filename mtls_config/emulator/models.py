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
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

from mtls_config.emulator import query as encoded
from mtls_config.emulator.auth import Accounts, User
from mtls_config.emulator.catalog import db_object_rows, dictionary_rows
from mtls_config.emulator.certificates import DATE_FORMAT
from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import (
    AclDenied,
    BadRequest,
    InvalidTable,
    ReadDenied,
    RecordNotFound,
)
from mtls_config.emulator.fields import Fields
from mtls_config.emulator.rules import Rules, can_read, can_write
from mtls_config.emulator.seed import (
    SEED_GROUPS,
    SEED_HTTP_CONNECTIONS,
    SEED_OAUTH_ENTITIES,
    SEED_REST_MESSAGES,
    SEED_SOAP_MESSAGES,
    seed_sys_id,
)
from mtls_config.emulator.store import InstanceLock, Record, Store, Vault
from mtls_config.emulator.tables import CATALOG_TABLES, Column, Schema, Table, definitions

__all__ = ["Backend", "ListResult", "Record", "User", "new_sys_id"]

_SYS_ID = re.compile(r"[0-9a-f]{32}")
# Values the instance evaluates in an encoded query (facts-2 §10); we know these two.
_CURRENT_USER_ID = "javascript:gs.getUserID()"
_CURRENT_USER_NAME = "javascript:gs.getUserName()"
# Roles a stock instance has (those the reference names); security_admin is elevated (facts-2 §10).
STOCK_ROLES = (
    "admin",
    "web_service_admin",
    "oauth_admin",
    "connection_admin",
    "credential_admin",
    "itil",
    "security_admin",
)
ELEVATED_ROLES = frozenset({"security_admin"})
# The update set a user's changes go to when it has chosen none [I] (facts-2 §9).
DEFAULT_UPDATE_SET = {
    "name": "Default",
    "state": "in progress",
    "application": "global",
    "description": "Default update set",
}
# A seed record is found again by its key within its parent: table -> the field naming the parent.
_SEED_PARENT_FIELDS = {
    "sys_rest_message_fn": "rest_message",
    "sys_soap_message_function": "soap_message",
    "sys_user_has_role": "user",
}


@dataclass(frozen=True)
class ListResult:
    records: list[Record]
    total: int


def new_sys_id() -> str:
    return uuid.uuid4().hex


class Backend:
    """One emulated instance. Thread-safe: every public method holds the instance lock.

    Reads hold the lock only to take the rows they look at (stored records are never changed in place); the
    matching, sorting and rendering of a list happen outside it, so a heavy query does not hold up other clients.
    """

    def __init__(self, config: EmulatorConfig, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.config = config
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(dt.UTC))
        self.schema = Schema(definitions(config.connection_mutual_auth_columns), config.absent_columns)
        self.ignored_fields = self._field_names(config.ignore_fields)  # checked before any file is opened
        self._query_limits = encoded.QueryLimits(config.max_query_terms, config.max_query_groups, config.max_in_members)
        # Other processes may use the same database: creating and seeding it happens under its file lock too.
        self._lock = InstanceLock(config.db_path)
        with self._lock:
            self._open(config)

    def _open(self, config: EmulatorConfig) -> None:
        self.store = Store(
            config.db_path, (t for t in self.schema if t not in CATALOG_TABLES), seed_data=config.seed_data
        )
        # The data dictionary is made from the table definitions, never stored.
        started = self._timestamp()
        self._catalog: dict[str, dict[str, Record]] = {
            "sys_db_object": {r["sys_id"]: r for r in db_object_rows(self.schema, started)},
            "sys_dictionary": {r["sys_id"]: r for r in dictionary_rows(self.schema, started)},
        }
        self._vault = Vault(self.store)
        self.fields = Fields(config, self.schema, self._rows, self._vault, lambda: self.clock())
        self.accounts = Accounts(config, self.store, lambda: self.clock().timestamp())
        self.rules = Rules(config, self.schema, self.store, self, lambda: self.clock())
        self.store.begin()
        try:
            self.ensure_accounts()
            if config.seed_data and (self.store.fresh or self.store.meta("seed") == "pending"):
                # Also when a process died while seeding a new state file: the seed is idempotent, its marker last.
                self.seed()
        finally:
            self.store.commit()
        self._lock.on_acquire = self.store.begin
        self._lock.on_release = self.store.commit

    def close(self) -> None:
        with self._lock:
            self._lock.on_acquire = self._lock.on_release = None
            self.store.close()
        self._lock.close()

    def _rows(self, table: str) -> dict[str, Record]:
        return self._catalog[table] if table in self._catalog else self.store.tables[table]

    # ------------------------------------------------------------------ control (tests, /_emulator)

    def reset(self, *, seed: bool | None = None) -> None:
        """Forget every record, attachment and token; keep the configured users; then seed (default: as the
        config says)."""
        with self._lock:
            self.store.clear()
            self.accounts.forget_tokens()
            self.ensure_accounts()
            if self.config.seed_data if seed is None else seed:
                self.seed()

    def ensure_accounts(self) -> None:
        """The stock roles, and the configured users with their roles: an instance always has its accounts,
        seeded or not. Also the stock records every instance has: the "Default" update set and the properties that
        name its build [I]."""
        with self._lock:
            self._seed("sys_update_set", DEFAULT_UPDATE_SET, "name")
            for name, value in self.config.build_properties:
                self._seed("sys_properties", {"name": name, "value": value, "is_private": "false"}, "name")
            configured = {role for _, roles in self.config.users.values() for role in roles}
            for role in [*STOCK_ROLES, *sorted(configured - set(STOCK_ROLES))]:
                self._seed(
                    "sys_user_role", {"name": role, "elevated_privilege": str(role in ELEVATED_ROLES).lower()}, "name"
                )
            role_ids = {r["name"]: r["sys_id"] for r in self.store.tables["sys_user_role"].values()}
            for name, (_, roles) in self.config.users.items():
                user = self._seed("sys_user", {"user_name": name, "name": name}, "user_name")
                for role in roles:
                    grant = {"user": user["sys_id"], "role": role_ids[role]}
                    self._seed("sys_user_has_role", grant, "role", user)

    def seed(self) -> None:
        """Create the seed users and REST/SOAP messages that do not exist yet (by name)."""
        with self._lock:
            self.ensure_accounts()
            for message in SEED_REST_MESSAGES:
                msg = self._seed("sys_rest_message", message["record"], "name")
                for fn in message["functions"]:
                    self._seed("sys_rest_message_fn", {**fn, "rest_message": msg["sys_id"]}, "function_name", msg)
            for message in SEED_SOAP_MESSAGES:
                msg = self._seed("sys_soap_message", message["record"], "name")
                for fn in message["functions"]:
                    self._seed("sys_soap_message_function", {**fn, "soap_message": msg["sys_id"]}, "function_name", msg)
            for table, records in (
                ("oauth_entity", SEED_OAUTH_ENTITIES),
                ("http_connection", SEED_HTTP_CONNECTIONS),
                ("sys_user_group", SEED_GROUPS),
            ):
                for record in records:
                    self._seed(table, record, "name")
            self.store.set_meta("seed", "done")

    def _seed(self, table: str, values: Mapping[str, str], key: str, parent: Record | None = None) -> Record:
        parent_field = _SEED_PARENT_FIELDS.get(table)
        for record in self.store.tables[table].values():
            if record.get(key) == values[key] and (
                parent_field is None or record[parent_field] == values[parent_field]
            ):
                return record
        sys_id = seed_sys_id(table, parent["sys_id"] if parent else "", values[key])
        if sys_id in self.store.tables[table]:  # the seed record was renamed: seed a new one beside it
            sys_id = new_sys_id()
        return self._insert(self._table(table), {**values, "sys_id": sys_id}, "admin", trusted=True)

    def records(self, table: str) -> list[Record]:
        """Copies of every stored record of ``table`` as stored (password2 as ciphertext). For tests."""
        with self._lock:
            return [dict(r) for r in self._rows(self._table(table).name).values()]

    def record(self, table: str, sys_id: str) -> Record | None:
        with self._lock:
            found = self._rows(self._table(table).name).get(sys_id)
            return dict(found) if found is not None else None

    def reveal_password(self, table: str, sys_id: str, column: str) -> str:
        """The clear text of a password2 value (for tests that check what was set; never served)."""
        with self._lock:
            return self._vault.decrypt(self.store.tables[table][sys_id].get(column, ""))

    def attachment_bytes(self, sys_id: str) -> bytes | None:
        with self._lock:
            return self.store.blobs.get(sys_id)

    def ignore_fields(self, fields: Iterable[str]) -> None:
        """The fault "a write that does not stick": writes to these ``TABLE.FIELD``s answer 200/201 and change
        nothing in them. Raises ValueError naming an unknown table or field."""
        wanted = self._field_names(fields)
        with self._lock:
            self.ignored_fields = wanted

    def _field_names(self, fields: Iterable[str]) -> frozenset[tuple[str, str]]:
        wanted: set[tuple[str, str]] = set()
        for entry in fields:
            table_name, _, field_name = entry.partition(".")
            table = self.schema.get(table_name)
            if table is None or table.column(field_name) is None:
                raise ValueError(f"cannot ignore {entry!r}: no such table and field (write TABLE.FIELD)")
            wanted.add((table_name, field_name))
        return frozenset(wanted)

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

    def current_user(self, user: User) -> Record:
        """What ``/api/now/ui/user/current_user`` tells about the caller."""
        with self._lock:
            record = self.store.tables["sys_user"].get(user.sys_id, {})
            return {
                "user_sys_id": user.sys_id,
                "user_name": user.name,
                "name": record.get("name", user.name),
                "email": record.get("email", ""),
            }

    # ------------------------------------------------------------------ schema helpers

    def _table(self, name: str) -> Table:
        table = self.schema.get(name)
        if table is None:
            raise InvalidTable(name)
        return table

    def table(self, name: str) -> Table:
        return self._table(name)

    def is_valid_field(self, table: Table, path: str) -> bool:
        return self.fields.is_valid(table, path)

    def value_at(self, table: Table, record: Mapping[str, str], path: str) -> str:
        return self.fields.value_at(table, record, path)

    def display_value(self, column: Column, value: str) -> str:
        return self.fields.display_value(column, value)

    def public(self, table: Table, record: Record, viewer: User | None = None) -> Record:
        return self.fields.public(table, record, viewer)

    # ------------------------------------------------------------------ reading

    def _family_rows(self, table: Table) -> list[Record]:
        """The rows a read of ``table`` sees: its own and those of every table that extends it."""
        return list(chain.from_iterable(self._rows(name).values() for name in self.schema.family(table.name)))

    def _locate(self, table: Table, sys_id: str) -> tuple[Table, Record] | None:
        """A record by sys_id in ``table`` or a table that extends it, with the table it belongs to."""
        for name in self.schema.family(table.name):
            found = self._rows(name).get(sys_id)
            if found is not None:
                return self.schema[name], found
        return None

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
            rows = self._family_rows(table)
        # The rest works on the rows taken: stored records are never changed in place.
        query = query.replace(_CURRENT_USER_ID, user.sys_id).replace(_CURRENT_USER_NAME, user.name)
        try:
            parsed = encoded.parse(
                query,
                lambda f: self.is_valid_field(table, f),
                ignore_case=self.config.text_match_ignores_case,
                limits=self._query_limits,
            )
        except encoded.QueryTooComplex as exc:
            raise BadRequest("Query too complex for the emulated instance", str(exc)) from None
        if parsed.invalid_parts and self.config.invalid_query_returns_no_rows:
            return ListResult([], 0)
        rows = [
            r
            for r in parsed.narrowed(rows)
            if self.rules.visible(user, table, r) and parsed.matches(lambda f, r=r: self.value_at(table, r, f))  # type: ignore[misc]
        ]
        for order in reversed(parsed.order):
            rows.sort(key=lambda r, o=order: self._sort_key(table, r, o.field), reverse=order.descending)  # type: ignore[misc]
        total = len(rows)
        end = None if limit is None else offset + limit
        return ListResult([self.public(table, r, user) for r in rows[offset:end]], total)

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
            found = self._locate(table, sys_id)
            if found is None or not can_read(user, table) or not self.rules.visible(user, table, found[1]):
                raise RecordNotFound()
            return self.public(table, found[1], user)

    # ------------------------------------------------------------------ writing

    def insert(
        self, table_name: str, values: Mapping[str, Any], user: User, *, input_display_value: bool = False
    ) -> Record:
        with self._lock:
            table = self._table(table_name)
            if not can_write(user, table):
                raise AclDenied("Insert")
            self._check_fields(table, values)
            record = self._insert(table, values, user.name, input_display_value=input_display_value, as_client=True)
            return self.public(table, record, user)

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
            found = self._locate(table, sys_id)
            if found is None or not can_read(user, table) or not self.rules.visible(user, table, found[1]):
                raise RecordNotFound()
            own, old = found
            if not can_write(user, table) or not can_write(user, own):
                raise AclDenied("Update")
            self._check_fields(table, values)
            new = dict(old)
            for name, raw in values.items():
                column = table.column(name)
                if column is None or column.read_only or (own.name, name) in self.ignored_fields:
                    continue
                self.fields.assign(own, new, column, raw, input_display_value)
            changed = {k for k in new if new.get(k) != old.get(k)}
            if changed:
                self.rules.check(own, new, old)
                self.rules.derive(own, new, changed)
                new["sys_updated_on"] = self._timestamp()
                new["sys_updated_by"] = user.name
                new["sys_mod_count"] = str(int(old.get("sys_mod_count", "0") or 0) + 1)
                self.store.save(own.name, new)
                self.rules.after_update(own, new, old)
            return self.public(table, new, user)

    def delete(self, table_name: str, sys_id: str, user: User) -> None:
        with self._lock:
            table = self._table(table_name)
            found = self._locate(table, sys_id)
            if found is None or not can_read(user, table) or not self.rules.visible(user, table, found[1]):
                raise RecordNotFound()
            if not can_write(user, table) or not can_write(user, found[0]):
                raise AclDenied("Delete")
            self._delete(*found)

    def _check_fields(self, table: Table, values: Mapping[str, Any]) -> None:
        if self.config.drop_unknown_fields:
            return  # the instance drops them silently (facts-2 §7)
        unknown = sorted(name for name in values if table.column(name) is None)
        if unknown:
            raise BadRequest("Operation Failed", f"{table.name} has no field {', '.join(unknown)}")

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
        as_client: bool = False,
    ) -> Record:
        sys_id = str(values.get("sys_id") or "")
        if sys_id and not _SYS_ID.fullmatch(sys_id):
            raise BadRequest("Operation Failed", f"Invalid sys_id '{sys_id}': 32 lowercase hexadecimal characters")
        if sys_id and sys_id in self.store.tables[table.name]:
            if as_client and self.config.duplicate_sys_id == "overwrite":
                return self._overwrite(table, self.store.tables[table.name][sys_id], values, user_name)
            raise BadRequest("Operation Failed", f"Error during insert of {table.name} ({sys_id}): duplicate sys_id")
        record: Record = {c.name: c.default for c in table.columns}
        for name, raw in values.items():
            column = table.column(name)
            if column is None or (column.read_only and not (trusted and name != "sys_id")):
                continue
            if as_client and (table.name, name) in self.ignored_fields:
                continue
            self.fields.assign(table, record, column, raw, input_display_value)
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

    def _overwrite(self, table: Table, old: Record, values: Mapping[str, Any], user_name: str) -> Record:
        """``duplicate_sys_id="overwrite"``: an insert of an existing sys_id taken as an update of that record."""
        new = dict(old)
        for name, raw in values.items():
            column = table.column(name)
            if column is not None and not column.read_only:
                self.fields.assign(table, new, column, raw, False)
        new["sys_updated_on"] = self._timestamp()
        new["sys_updated_by"] = user_name
        new["sys_mod_count"] = str(int(old.get("sys_mod_count", "0") or 0) + 1)
        self.store.save(table.name, new)
        return new

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
            found = self._locate(table, table_sys_id)
            if found is None or not can_read(user, table) or not self.rules.visible(user, table, found[1]):
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
            attachments = self.schema["sys_attachment"]
            record = self._insert(attachments, values, user.name, trusted=True)
            self.store.put_blob(record["sys_id"], content)
            self.rules.after_attachment(found[0], found[1], content)
            return self.public(attachments, record)

    def attachment(self, sys_id: str, user: User) -> tuple[Record, bytes]:
        with self._lock:
            table = self.schema["sys_attachment"]
            record = self.store.tables[table.name].get(sys_id)
            if record is None or not self.rules.visible(user, table, record):
                raise RecordNotFound("Record doesn't exist or ACL restricts the record retrieval")
            return self.public(table, record), self.store.blobs.get(sys_id, b"")

    def delete_attachment(self, sys_id: str, user: User) -> None:
        with self._lock:
            table = self.schema["sys_attachment"]
            record = self.store.tables[table.name].get(sys_id)
            if record is None or not self.rules.visible(user, table, record):
                raise RecordNotFound()
            target = self.schema.get(record.get("table_name", ""))
            if target is None or not can_write(user, target):
                raise AclDenied("Delete")
            self._delete(table, record)
