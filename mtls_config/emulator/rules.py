"""The instance's rules around records: who may read and write a table (ACLs), the checks a write must pass
(business rules), the fields the instance derives, and what it does after an insert, update or delete
(a REST message's default method, a profile's system properties, cascades).

Rules decide; the backend (models) stores. Rules read the store and write through the backend's ``Writer``.

Must never import: starlette or any HTTP library, the client, the engine, ``mtls_config.keystore``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mtls_config.emulator.auth import User, granted_roles
from mtls_config.emulator.certificates import DATE_FORMAT, days_until, read_certificate
from mtls_config.emulator.config import EmulatorConfig
from mtls_config.emulator.exceptions import BadRequest
from mtls_config.emulator.store import Record, Store
from mtls_config.emulator.tables import KEYSTORE_TYPES, Schema, Table

_PROTOCOL = re.compile(r"[a-z]+")
_RESERVED_PROTOCOLS = frozenset({"http", "https", "ftp", "ftps", "sftp", "ldap", "ldaps", "jdbc", "file", "mailto"})
# Deleting a message deletes its functions: parent table -> (child table, the child's reference to it).
_CHILDREN = {
    "sys_rest_message": ("sys_rest_message_fn", "rest_message"),
    "sys_soap_message": ("sys_soap_message_function", "soap_message"),
}
SOCKET_FACTORY = "com.glide.certificates.DBKeyStoreSocketFactory"


# ---------------------------------------------------------------------- ACLs


def can_read(user: User, table: Table) -> bool:
    return user.has_any(table.read_roles)


def can_write(user: User, table: Table) -> bool:
    return table.writable and user.has_any(table.write_roles)


# ---------------------------------------------------------------------- business rules


class Writer(Protocol):
    """How rules change other records: through the backend, as the instance's own scripts do."""

    def insert_record(self, table: Table, values: Mapping[str, Any], user_name: str) -> Record: ...

    def save_record(self, table: str, record: Record) -> None: ...

    def delete_record(self, table: Table, record: Record) -> None: ...


def protocol_property_names(protocol: str) -> tuple[str, str]:
    return f"glide.httpclient.protocol.{protocol}.class", f"glide.httpclient.protocol.{protocol}.port"


class Rules:
    def __init__(
        self,
        config: EmulatorConfig,
        schema: Schema,
        store: Store,
        writer: Writer,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.config = config
        self.schema = schema
        self.store = store
        self.writer = writer
        self.clock = clock

    def visible(self, user: User, table: Table, record: Record) -> bool:
        """Row-level read access, beyond the table's: a row of a table that extends ``table`` needs read access to
        its own table; an attachment, to the table of its record; a role grant, to be the user's own (a switch)."""
        own = self.schema.get(record.get("sys_class_name", "")) if table.column("sys_class_name") else None
        if own is not None and own.name != table.name and not can_read(user, own):
            return False
        if table.name == "sys_attachment":
            target = self.schema.get(record.get("table_name", ""))
            return target is not None and can_read(user, target)
        if table.name == "sys_user_has_role" and self.config.user_roles_read != "all" and "admin" not in user.roles:
            return self.config.user_roles_read == "own" and record.get("user") == user.sys_id
        if table.name == "sys_user_preference" and "admin" not in user.roles:
            return record.get("user") in ("", user.sys_id)
        return True

    def check(self, table: Table, record: Record, old: Record | None) -> None:
        """Refuse a write the instance refuses (400 ``Operation Failed``, the reason in ``detail``)."""
        if table.name == "sys_protocol_profile":
            self._check_protocol_profile(table, record)

    def _check_protocol_profile(self, table: Table, record: Record) -> None:
        protocol = record.get("protocol", "")
        if not _PROTOCOL.fullmatch(protocol):
            raise BadRequest(
                "Operation Failed",
                f"Invalid protocol '{protocol}': use lowercase letters only, no digits, upper case or special characters",
            )
        if protocol in _RESERVED_PROTOCOLS:
            raise BadRequest("Operation Failed", f"Invalid protocol '{protocol}': it is an existing protocol name")
        for other in self.store.tables[table.name].values():
            if other["sys_id"] != record.get("sys_id") and other.get("protocol") == protocol:
                raise BadRequest("Operation Failed", f"Protocol '{protocol}' already exists: protocol must be unique")
        keystore = record.get("keystore", "")
        target = self.store.tables["sys_certificate"].get(keystore) if keystore else None
        wrong_type = target is None or target.get("type") not in KEYSTORE_TYPES
        if keystore and self.config.enforce_keystore_reference_type and wrong_type:
            raise BadRequest(
                "Operation Failed",
                "Invalid keystore: it must reference a certificate of type Java Key Store or PKCS12 Key Store",
            )
        if target is not None and self.config.refuse_inactive_keystore_reference and target.get("active") != "true":
            raise BadRequest("Operation Failed", "Invalid keystore: it must reference an active certificate")

    # ------------------------------------------------------------------ derived fields

    def derive(self, table: Table, record: Record, changed: set[str]) -> None:
        """Fill the fields the instance computes, in place, before the record is saved."""
        if table.name == "sys_certificate" and ("pem_certificate" in changed or "format" in changed):
            self.derive_certificate(record, record.get("pem_certificate", "").encode())
        if table.column("sys_class_name") is not None:
            record["sys_class_name"] = table.name
        if self.schema.extends(table.name, "sys_metadata"):
            record["sys_name"] = record.get(table.display_field, "")
            record["sys_update_name"] = f"{table.name}_{record['sys_id']}"
            record["sys_scope"] = record.get("sys_scope") or "global"
            record["sys_package"] = record.get("sys_package") or "global"
        if table.name == "sys_rest_message_fn":
            parent = self.store.tables["sys_rest_message"].get(record.get("rest_message", ""), {})
            record["qualified_name"] = f"{parent.get('name', '')} [ {record.get('function_name', '')} ]"

    def derive_certificate(self, record: Record, data: bytes) -> None:
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

    # ------------------------------------------------------------------ after a write

    def after_insert(self, table: Table, record: Record, user_name: str, *, seeding: bool) -> None:
        if table.name == "sys_user_has_role":
            self._refresh_user_roles(record.get("user", ""))
        if table.name == "sys_rest_message" and self.config.auto_create_get_method and not seeding:
            self.writer.insert_record(
                self.schema["sys_rest_message_fn"],
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

    def after_update(self, table: Table, record: Record, old: Record) -> None:
        if table.name == "sys_user_has_role":
            self._refresh_user_roles(old.get("user", ""))
            self._refresh_user_roles(record.get("user", ""))
        if table.name == "sys_protocol_profile" and self.config.create_protocol_properties:
            self._remove_protocol_properties(old)
            self._write_protocol_properties(record, record["sys_updated_by"])

    def after_delete(self, table: Table, record: Record) -> None:
        """Cascades the instance performs: the record's attachments, a message's functions, a profile's properties."""
        for attachment in list(self.store.tables["sys_attachment"].values()):
            if attachment.get("table_name") == table.name and attachment.get("table_sys_id") == record["sys_id"]:
                self.writer.delete_record(self.schema["sys_attachment"], attachment)
        children = _CHILDREN.get(table.name)
        if children is not None:
            child_table, field = children
            for child in list(self.store.tables[child_table].values()):
                if child.get(field) == record["sys_id"]:
                    self.writer.delete_record(self.schema[child_table], child)
        if table.name == "sys_protocol_profile" and self.config.create_protocol_properties:
            self._remove_protocol_properties(record)
        if table.name == "sys_user_has_role":
            self._refresh_user_roles(record.get("user", ""))
        if table.name in ("sys_user", "sys_user_role"):
            # A user's or a role's grants go with it.
            field = "user" if table.name == "sys_user" else "role"
            for grant in list(self.store.tables["sys_user_has_role"].values()):
                if grant.get(field) == record["sys_id"]:
                    self.writer.delete_record(self.schema["sys_user_has_role"], grant)

    def _refresh_user_roles(self, user_sys_id: str) -> None:
        """``sys_user.roles``: the names of the roles the user's grants give, kept in step with the grants."""
        user = self.store.tables["sys_user"].get(user_sys_id)
        if user is None:
            return
        names = sorted(granted_roles(self.store, user_sys_id))
        if user.get("roles", "") != ",".join(names):
            self.writer.save_record("sys_user", {**user, "roles": ",".join(names)})

    def after_attachment(self, table: Table, target: Record, content: bytes) -> None:
        if table.name == "sys_certificate" and target.get("format") == "der" and target.get("type") == "trust_store":
            # A DER trust certificate comes as an attachment; the instance reads its dates from it.
            updated = dict(target)
            self.derive_certificate(updated, content)
            self.writer.save_record(table.name, updated)

    def _remove_protocol_properties(self, profile: Record) -> None:
        names = protocol_property_names(profile.get("protocol", ""))
        for prop in list(self.store.tables["sys_properties"].values()):
            if prop.get("name") in names:
                self.store.remove("sys_properties", prop["sys_id"])

    def _write_protocol_properties(self, profile: Record, user_name: str) -> None:
        class_name, port_name = protocol_property_names(profile["protocol"])
        wanted = {class_name: SOCKET_FACTORY, port_name: profile["default_port"]}
        existing = {p.get("name"): p for p in self.store.tables["sys_properties"].values()}
        for name, value in wanted.items():
            if name in existing:
                self.writer.save_record("sys_properties", {**existing[name], "value": value})
            else:
                self.writer.insert_record(self.schema["sys_properties"], {"name": name, "value": value}, user_name)
