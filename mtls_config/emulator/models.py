"""The emulated instance's state and rules (the "backend"): records, attachments, users, tokens, and the
business rules the real instance runs on insert, update and delete.

Values are stored as the instance shows them on the wire: strings, ``""`` for null, references as sys_ids,
dates ``YYYY-MM-DD HH:MM:SS`` UTC, password2 fields as ciphertext. State lives in dicts; with a database path
every change is also written through to SQLite (stdlib) so that a served instance survives restarts.

Must never import: starlette or any HTTP library, the client, the engine, ``mtls_config.keystore``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import sqlite3
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from mtls_config.emulator import query as encoded
from mtls_config.emulator.certificates import DATE_FORMAT, days_until, read_certificate
from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import (
    AclDenied,
    BadRequest,
    InstanceError,
    InvalidTable,
    ReadDenied,
    RecordNotFound,
)
from mtls_config.emulator.tables import KEYSTORE_TYPES, TABLES, Column, Table

Record = dict[str, str]
_SYS_ID = re.compile(r"[0-9a-f]{32}")
_PROTOCOL = re.compile(r"[a-z]+")
_RESERVED_PROTOCOLS = frozenset({"http", "https", "ftp", "ftps", "sftp", "ldap", "ldaps", "jdbc", "file", "mailto"})
_TRUE = frozenset({"true", "1", "yes"})


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[str]

    def has_any(self, roles: frozenset[str]) -> bool:
        """Whether the user holds one of ``roles`` (admin holds every role; an empty set needs none)."""
        return not roles or "admin" in self.roles or bool(self.roles & roles)


@dataclass(frozen=True)
class Token:
    user: str
    client_id: str
    expires_at: float


@dataclass(frozen=True)
class ListResult:
    records: list[Record]
    total: int


def new_sys_id() -> str:
    return uuid.uuid4().hex


def seed_sys_id(*parts: str) -> str:
    """Stable sys_ids for seed records, so that a seeded instance looks the same every time."""
    return hashlib.md5(":".join(("mtls-config-seed", *parts)).encode(), usedforsecurity=False).hexdigest()


class Backend:
    """One emulated instance. Thread-safe: every public method holds the instance lock."""

    def __init__(self, config: EmulatorConfig, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.config = config
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.RLock()
        self._tables: dict[str, dict[str, Record]] = {name: {} for name in TABLES}
        self._blobs: dict[str, bytes] = {}
        self._tokens: dict[str, Token] = {}
        self._refresh_tokens: dict[str, Token] = {}
        self._db: sqlite3.Connection | None = None
        self._seq = 0
        fresh = True
        key: bytes | None = None
        if config.db_path is not None:
            existed = config.db_path.exists()
            config.db_path.parent.mkdir(parents=True, exist_ok=True)
            if not existed:
                # The state holds keystore files and passwords: owner-only (SQLite gives its WAL the same mode).
                config.db_path.touch(mode=0o600)
            self._db = sqlite3.connect(config.db_path, check_same_thread=False, isolation_level=None)
            # WAL + NORMAL: each change is durable against a crash of this process without an fsync per write.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS records (tbl TEXT, sys_id TEXT, data TEXT NOT NULL, seq INTEGER,"
                " PRIMARY KEY (tbl, sys_id));"
                "CREATE TABLE IF NOT EXISTS blobs (sys_id TEXT PRIMARY KEY, content BLOB NOT NULL);"
            )
            # A file whose creation was interrupted has no meta rows yet: it is still new.
            fresh = not existed or self._db.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0
            if fresh:
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('seed', ?)", ("pending" if config.seed_data else "none",)
                )
            row = self._db.execute("SELECT value FROM meta WHERE key='password2_key'").fetchone()
            key = row[0].encode() if row else None
            self._load()
        if key is None:
            # Per-instance key: password2 values are reversibly encrypted, as on the instance, never stored clear.
            key = Fernet.generate_key()
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('password2_key', ?)", (key.decode(),))
        self._cipher = Fernet(key)
        if config.seed_data and (fresh or self._seed_pending()):
            # Also when a process died while seeding a new state file: the seed is idempotent, its marker last.
            self.seed()

    # ------------------------------------------------------------------ persistence

    def _load(self) -> None:
        assert self._db is not None
        for tbl, sys_id, data, seq in self._db.execute("SELECT tbl, sys_id, data, seq FROM records ORDER BY seq"):
            self._seq = max(self._seq, seq or 0)
            if tbl in self._tables:
                self._tables[tbl][sys_id] = json.loads(data)
        for sys_id, content in self._db.execute("SELECT sys_id, content FROM blobs"):
            self._blobs[sys_id] = bytes(content)

    def _save(self, table: str, record: Record) -> None:
        self._tables[table][record["sys_id"]] = record
        if self._db is not None:
            self._seq += 1  # insertion order survives a restart; an update keeps the record's place
            self._db.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (tbl, sys_id) DO UPDATE SET data = excluded.data",
                (table, record["sys_id"], json.dumps(record), self._seq),
            )

    def _remove(self, table: str, sys_id: str) -> None:
        self._tables[table].pop(sys_id, None)
        if self._db is not None:
            self._db.execute("DELETE FROM records WHERE tbl = ? AND sys_id = ?", (table, sys_id))
        if table == "sys_attachment":
            self._blobs.pop(sys_id, None)
            if self._db is not None:
                self._db.execute("DELETE FROM blobs WHERE sys_id = ?", (sys_id,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ------------------------------------------------------------------ control (tests, /_emulator)

    def reset(self, *, seed: bool | None = None) -> None:
        """Forget every record, attachment and token; then seed (default: as the config says)."""
        with self._lock:
            for table in self._tables.values():
                table.clear()
            self._blobs.clear()
            self._tokens.clear()
            self._refresh_tokens.clear()
            if self._db is not None:
                self._db.execute("DELETE FROM records")
                self._db.execute("DELETE FROM blobs")
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
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seed', 'done')")

    def _seed_pending(self) -> bool:
        row = None if self._db is None else self._db.execute("SELECT value FROM meta WHERE key='seed'").fetchone()
        return row is not None and row[0] == "pending"

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
            stored = self._tables[table][sys_id].get(column, "")
            return self._decrypt(stored)

    def attachment_bytes(self, sys_id: str) -> bytes | None:
        with self._lock:
            return self._blobs.get(sys_id)

    # ------------------------------------------------------------------ users and tokens

    def authenticate(self, name: str, password: str) -> User | None:
        entry = self.config.users.get(name)
        if entry is None or not secrets.compare_digest(entry[0].encode(), password.encode()):
            return None
        return self.user(name)

    def user(self, name: str) -> User | None:
        entry = self.config.users.get(name)
        return None if entry is None else User(name, frozenset(entry[1]))

    def issue_token(self, *, grant_type: str, form: Mapping[str, str]) -> dict[str, Any]:
        """OAuth 2.0 token endpoint (``/oauth_token.do``); raises InstanceError(401) when refused."""
        with self._lock:
            client_id = form.get("client_id", "")
            expected = self.config.oauth_clients.get(client_id)
            if expected is None or not secrets.compare_digest(
                expected.encode(), form.get("client_secret", "").encode()
            ):
                raise OAuthRefused()
            if grant_type == "client_credentials":
                user = self.config.oauth_client_credentials_user
            elif grant_type == "password":
                found = self.authenticate(form.get("username", ""), form.get("password", ""))
                if found is None:
                    raise OAuthRefused()
                user = found.name
            elif grant_type == "refresh_token":
                old = self._refresh_tokens.get(form.get("refresh_token", ""))
                if old is None or old.client_id != client_id or old.expires_at < self._now_ts():
                    raise OAuthRefused()
                user = old.user
            else:
                raise OAuthRefused("unsupported_grant_type")
            now = self._now_ts()
            access = secrets.token_urlsafe(48)
            refresh = secrets.token_urlsafe(48)
            self._tokens[access] = Token(user, client_id, now + self.config.oauth_token_lifetime_s)
            self._refresh_tokens[refresh] = Token(user, client_id, now + self.config.oauth_refresh_token_lifetime_s)
            return {
                "access_token": access,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": self.config.oauth_token_lifetime_s,
            }

    def token_user(self, token: str) -> User | None:
        with self._lock:
            found = self._tokens.get(token)
            if found is None or found.expires_at < self._now_ts():
                return None
            return self.user(found.user)

    def _now_ts(self) -> float:
        return self.clock().timestamp()

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

    def can_read(self, user: User, table: Table) -> bool:
        return user.has_any(table.read_roles)

    def can_write(self, user: User, table: Table) -> bool:
        return user.has_any(table.write_roles)

    def _visible(self, user: User, table: Table, record: Record) -> bool:
        if table.name == "sys_attachment":
            target = TABLES.get(record.get("table_name", ""))
            return target is not None and self.can_read(user, target)
        return True

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
            if not self.can_read(user, table):
                if self.config.list_without_read_role == "403":
                    raise ReadDenied(table.name)
                return ListResult([], 0)
            parsed = encoded.parse(query, lambda f: self.is_valid_field(table, f))
            if parsed.invalid_parts and self.config.invalid_query_returns_no_rows:
                return ListResult([], 0)
            rows = [
                r
                for r in self._tables[table.name].values()
                if self._visible(user, table, r) and parsed.matches(lambda f, r=r: self.value_at(table, r, f))  # type: ignore[misc]
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
            if record is None or not self.can_read(user, table) or not self._visible(user, table, record):
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
            if not self.can_write(user, table):
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
            if old is None or not self.can_read(user, table):
                raise RecordNotFound()
            if not self.can_write(user, table):
                raise AclDenied("Update")
            new = dict(old)
            for name, raw in values.items():
                column = table.column(name)
                if column is None or column.read_only:
                    continue
                self._assign(table, new, column, raw, input_display_value)
            changed = {k for k in new if new.get(k) != old.get(k)}
            if changed:
                self._check_rules(table, new, old)
                self._derive(table, new, changed)
                new["sys_updated_on"] = self._timestamp()
                new["sys_updated_by"] = user.name
                new["sys_mod_count"] = str(int(old.get("sys_mod_count", "0") or 0) + 1)
                self._save(table.name, new)
                self._after_update(table, new, old)
            return self.public(table, new)

    def delete(self, table_name: str, sys_id: str, user: User) -> None:
        with self._lock:
            table = self._table(table_name)
            record = self._tables[table.name].get(sys_id)
            if record is None or not self.can_read(user, table):
                raise RecordNotFound()
            if not self.can_write(user, table):
                raise AclDenied("Delete")
            self._delete(table, record)

    def _delete(self, table: Table, record: Record) -> None:
        self._remove(table.name, record["sys_id"])
        # Cascades the instance performs: the record's attachments, a message's functions, a profile's properties.
        for attachment in list(self._tables["sys_attachment"].values()):
            if attachment.get("table_name") == table.name and attachment.get("table_sys_id") == record["sys_id"]:
                self._remove("sys_attachment", attachment["sys_id"])
        children = {
            "sys_rest_message": ("sys_rest_message_fn", "rest_message"),
            "sys_soap_message": ("sys_soap_message_function", "soap_message"),
        }.get(table.name)
        if children is not None:
            child_table, field = children
            for child in list(self._tables[child_table].values()):
                if child.get(field) == record["sys_id"]:
                    self._delete(TABLES[child_table], child)
        if table.name == "sys_protocol_profile" and self.config.create_protocol_properties:
            for prop in list(self._tables["sys_properties"].values()):
                if prop.get("name") in _protocol_property_names(record.get("protocol", "")):
                    self._remove("sys_properties", prop["sys_id"])

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
        self._check_rules(table, record, None)
        self._derive(table, record, set(record))
        self._save(table.name, record)
        self._after_insert(table, record, user_name, seeding=trusted)
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
            record[column.name] = self._encrypt(value) if value else ""
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

    def _encrypt(self, clear: str) -> str:
        return self._cipher.encrypt(clear.encode()).decode()

    def _decrypt(self, stored: str) -> str:
        if not stored:
            return ""
        try:
            return self._cipher.decrypt(stored.encode()).decode()
        except InvalidToken:
            return ""

    # ------------------------------------------------------------------ business rules

    def _check_rules(self, table: Table, record: Record, old: Record | None) -> None:
        if table.name == "sys_protocol_profile":
            protocol = record.get("protocol", "")
            if not _PROTOCOL.fullmatch(protocol):
                raise BadRequest(
                    "Operation Failed",
                    f"Invalid protocol '{protocol}': use lowercase letters only, no digits, upper case or special characters",
                )
            if protocol in _RESERVED_PROTOCOLS:
                raise BadRequest("Operation Failed", f"Invalid protocol '{protocol}': it is an existing protocol name")
            for other in self._tables[table.name].values():
                if other["sys_id"] != record.get("sys_id") and other.get("protocol") == protocol:
                    raise BadRequest(
                        "Operation Failed", f"Protocol '{protocol}' already exists: protocol must be unique"
                    )
            keystore = record.get("keystore", "")
            if keystore and self.config.enforce_keystore_reference_type:
                target = self._tables["sys_certificate"].get(keystore)
                if target is None or target.get("type") not in KEYSTORE_TYPES:
                    raise BadRequest(
                        "Operation Failed",
                        "Invalid keystore: it must reference a certificate of type Java Key Store or PKCS12 Key Store",
                    )

    def _derive(self, table: Table, record: Record, changed: set[str]) -> None:
        if table.name == "sys_certificate" and ("pem_certificate" in changed or "format" in changed):
            self._derive_certificate(record, record.get("pem_certificate", "").encode())
        if table.name in ("sys_rest_message", "sys_soap_message", "sys_rest_message_fn", "sys_soap_message_function"):
            record["sys_class_name"] = table.name
            record["sys_name"] = record.get(table.display_field, "")
            record["sys_update_name"] = f"{table.name}_{record['sys_id']}"
            record["sys_scope"] = record.get("sys_scope") or "global"
            record["sys_package"] = record.get("sys_package") or "global"
        if table.name == "sys_rest_message_fn":
            parent = self._tables["sys_rest_message"].get(record.get("rest_message", ""), {})
            record["qualified_name"] = f"{parent.get('name', '')} [ {record.get('function_name', '')} ]"

    def _derive_certificate(self, record: Record, data: bytes) -> None:
        facts = read_certificate(data) if data else None
        if facts is None:
            for name in ("valid_from", "expires", "expires_in_days", "subject", "issuer", "serial_number"):
                record[name] = ""
            return
        record["valid_from"] = facts.valid_from.strftime(DATE_FORMAT)
        record["expires"] = facts.expires.strftime(DATE_FORMAT)
        record["expires_in_days"] = days_until(record["expires"], self.clock())
        record["subject"] = facts.subject
        record["issuer"] = facts.issuer
        record["serial_number"] = facts.serial_number

    def _after_insert(self, table: Table, record: Record, user_name: str, *, seeding: bool) -> None:
        if table.name == "sys_rest_message" and self.config.auto_create_get_method and not seeding:
            self._insert(
                TABLES["sys_rest_message_fn"],
                {
                    "rest_message": record["sys_id"],
                    "function_name": "Default GET",
                    "http_method": "get",
                    "rest_endpoint": record.get("rest_endpoint", ""),
                },
                user_name,
            )
        if table.name == "sys_protocol_profile" and self.config.create_protocol_properties:
            self._write_protocol_properties(record, user_name)

    def _after_update(self, table: Table, record: Record, old: Record) -> None:
        if table.name == "sys_protocol_profile" and self.config.create_protocol_properties:
            for prop in list(self._tables["sys_properties"].values()):
                if prop.get("name") in _protocol_property_names(old.get("protocol", "")):
                    self._remove("sys_properties", prop["sys_id"])
            self._write_protocol_properties(record, record["sys_updated_by"])

    def _write_protocol_properties(self, profile: Record, user_name: str) -> None:
        protocol = profile["protocol"]
        class_name, port_name = _protocol_property_names(protocol)
        wanted = {class_name: "com.glide.certificates.DBKeyStoreSocketFactory", port_name: profile["default_port"]}
        existing = {p.get("name"): p for p in self._tables["sys_properties"].values()}
        for name, value in wanted.items():
            if name in existing:
                prop = dict(existing[name])
                prop["value"] = value
                self._save("sys_properties", prop)
            else:
                self._insert(TABLES["sys_properties"], {"name": name, "value": value}, user_name)

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
            if target is None or not self.can_read(user, table):
                raise RecordNotFound("Invalid table name or sys_id of the record to attach to")
            if not self.can_write(user, table):
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
            self._blobs[record["sys_id"]] = content
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?)", (record["sys_id"], content))
            if (
                table.name == "sys_certificate"
                and target.get("format") == "der"
                and target.get("type") == "trust_store"
            ):
                # A DER trust certificate comes as an attachment; the instance reads its dates from it.
                updated = dict(target)
                self._derive_certificate(updated, content)
                self._save(table.name, updated)
            return self.public(TABLES["sys_attachment"], record)

    def attachment(self, sys_id: str, user: User) -> tuple[Record, bytes]:
        with self._lock:
            table = TABLES["sys_attachment"]
            record = self._tables[table.name].get(sys_id)
            if record is None or not self._visible(user, table, record):
                raise RecordNotFound("Record doesn't exist or ACL restricts the record retrieval")
            return self.public(table, record), self._blobs.get(sys_id, b"")

    def delete_attachment(self, sys_id: str, user: User) -> None:
        with self._lock:
            table = TABLES["sys_attachment"]
            record = self._tables[table.name].get(sys_id)
            if record is None or not self._visible(user, table, record):
                raise RecordNotFound()
            target = TABLES.get(record.get("table_name", ""))
            if target is None or not self.can_write(user, target):
                raise AclDenied("Delete")
            self._remove(table.name, sys_id)


class OAuthRefused(InstanceError):
    """The token endpoint's refusal; rendered with OAuth's own body, not the Table API envelope."""

    status = 401

    def __init__(self, error: str = "access_denied") -> None:
        super().__init__(error, None)
        self.error = error


def _protocol_property_names(protocol: str) -> tuple[str, str]:
    return f"glide.httpclient.protocol.{protocol}.class", f"glide.httpclient.protocol.{protocol}.port"


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


SEED_REST_MESSAGES: list[dict[str, Any]] = [
    {
        "record": {
            "name": "Acme Payments API",
            "description": "Card payments and refunds with Acme Payments",
            "rest_endpoint": "https://api.acme-payments.example/v2",
            "authentication_type": "no_authentication",
        },
        "functions": [
            {
                "function_name": "Default GET",
                "http_method": "get",
                "rest_endpoint": "https://api.acme-payments.example/v2",
            },
            {
                "function_name": "post_payment",
                "http_method": "post",
                "rest_endpoint": "https://api.acme-payments.example/v2/payments",
                "content": '{"amount": "${amount}", "currency": "${currency}"}',
            },
        ],
    },
    {
        "record": {
            "name": "Weather Service",
            "description": "Forecasts for the facilities dashboard",
            "rest_endpoint": "https://api.weather.example/v1/forecast",
            "authentication_type": "no_authentication",
        },
        "functions": [
            {
                "function_name": "Default GET",
                "http_method": "get",
                "rest_endpoint": "https://api.weather.example/v1/forecast",
            },
        ],
    },
]

SEED_SOAP_MESSAGES: list[dict[str, Any]] = [
    {
        "record": {
            "name": "Globex Orders",
            "description": "Order intake at Globex",
            "wsdl": "https://orders.globex.example/ws/OrderService?wsdl",
        },
        "functions": [
            {
                "function_name": "submitOrder",
                "soap_action": "urn:globex:orders#submitOrder",
                "soap_endpoint": "https://orders.globex.example/ws/OrderService",
            },
            {
                "function_name": "getStatus",
                "soap_action": "urn:globex:orders#getStatus",
                "soap_endpoint": "https://orders.globex.example/ws/OrderService",
            },
        ],
    },
    {
        "record": {
            "name": "Legacy Billing",
            "description": "Invoices from the legacy billing system",
            "wsdl": "https://billing.legacy.example/soap/Billing?wsdl",
        },
        "functions": [
            {
                "function_name": "invoice",
                "soap_action": "urn:legacy:billing#invoice",
                "soap_endpoint": "https://billing.legacy.example/soap/Billing",
            },
        ],
    },
]
