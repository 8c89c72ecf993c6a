"""The emulated tables: their columns, types, labels, choices, display fields, the tables they extend and the roles
that guard them. One definition serves both the rows (Table API) and the data dictionary (``sys_dictionary``,
``sys_db_object``), so the two cannot disagree.

A table that extends another (``sys_rest_message`` extends ``sys_metadata``) defines only its own columns; it has
its parent's as well, and the dictionary lists those under the parent, as the instance does. Tables without a
parent carry the ``sys_`` audit columns themselves.

Where a fact comes from: ``shared/reference/servicenow-api.md`` and ``servicenow-facts-2.md`` (cited by section
below); columns, labels or hierarchy the reference does not give are marked [I] and listed in docs/emulator.md.

Pure data, no behaviour. Must never import: starlette, the client, the engine, the keystore package.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

FieldType = Literal[
    "string",
    "boolean",
    "integer",
    "choice",
    "reference",
    "password",
    "password2",
    "glide_date_time",
    "glide_list",
    "sys_id",
]

# The dictionary's internal_type for each of our field types (a choice is a string column with choices).
INTERNAL_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "string": "string",
        "boolean": "boolean",
        "integer": "integer",
        "choice": "string",
        "reference": "reference",
        "password": "password",
        "password2": "password2",
        "glide_date_time": "glide_date_time",
        "glide_list": "glide_list",
        "sys_id": "GUID",
    }
)


@dataclass(frozen=True)
class Column:
    name: str
    type: FieldType = "string"
    reference: str | None = None  # referenced table, for type reference (and glide_list)
    choices: Mapping[str, str] = field(default_factory=dict)  # stored value -> label
    default: str = ""
    mandatory: bool = False
    read_only: bool = False  # derived by the instance; client writes are ignored
    max_length: int | None = None  # string columns: longer values are cut (or refused, per EmulatorConfig)
    label: str = ""  # the dictionary's column_label; "" means made from the name ("use_basic_auth" -> "Use basic auth")
    reference_key: str = "sys_id"  # the target's field a reference holds: "name" for the dictionary's own references

    @property
    def column_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class TableDef:
    """One table as the reference describes it: its own columns, the table it extends, its ACL roles."""

    name: str
    label: str
    columns: tuple[Column, ...]  # its own; a table without a parent lists the sys_ audit columns too
    display_field: str
    read_roles: frozenset[str]  # any one of them grants read; empty = any authenticated user
    write_roles: frozenset[str]
    parent: str | None = None
    writable: bool = True  # False: the instance serves the table, no one writes it through the Table API


@dataclass(frozen=True)
class Table:
    """A table as served: its own columns first, then those it inherits, nearest parent first."""

    name: str
    label: str
    columns: tuple[Column, ...]
    own_columns: tuple[Column, ...]
    display_field: str
    read_roles: frozenset[str]
    write_roles: frozenset[str]
    parent: str | None = None
    writable: bool = True
    by_name: Mapping[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", MappingProxyType({c.name: c for c in self.columns}))

    def column(self, name: str) -> Column | None:
        return self.by_name.get(name)

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


class Schema:
    """The tables of one emulated instance, resolved (inherited columns, hierarchy). ``absent`` removes columns
    (``"table.column"``, on the table that defines them): an instance of a release without them."""

    def __init__(self, definitions: Iterable[TableDef], absent: Iterable[str] = ()) -> None:
        defs = {d.name: d for d in definitions}
        missing: dict[str, set[str]] = {}
        for entry in absent:
            table, _, column = entry.partition(".")
            definition = defs.get(table)
            if definition is None or not column:
                raise ValueError(f"unknown table in absent column {entry!r} (write TABLE.COLUMN)")
            if not any(c.name == column for c in definition.columns):
                raise ValueError(f"{table} defines no column {column!r} (an inherited column is absent on its parent)")
            missing.setdefault(table, set()).add(column)
        resolved: dict[str, Table] = {}

        def resolve(name: str) -> Table:
            if name in resolved:
                return resolved[name]
            d = defs[name]
            own = tuple(c for c in d.columns if c.name not in missing.get(name, set()))
            inherited = resolve(d.parent).columns if d.parent else ()
            table = Table(
                d.name,
                d.label,
                (*own, *inherited),
                own,
                d.display_field,
                d.read_roles,
                d.write_roles,
                d.parent,
                d.writable,
            )
            resolved[name] = table
            return table

        for name in defs:
            resolve(name)
        self.tables: Mapping[str, Table] = MappingProxyType(resolved)

    def get(self, name: str) -> Table | None:
        return self.tables.get(name)

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tables

    def __iter__(self) -> Iterator[str]:
        return iter(self.tables)

    def lineage(self, name: str) -> tuple[str, ...]:
        """The table and the tables it extends, nearest first: ("sys_rest_message", "sys_metadata")."""
        chain: list[str] = []
        current: str | None = name
        while current is not None:
            chain.append(current)
            current = self.tables[current].parent
        return tuple(chain)

    def extends(self, name: str, ancestor: str) -> bool:
        return ancestor in self.lineage(name)

    def family(self, name: str) -> tuple[str, ...]:
        """The table and every table that extends it (a read of a parent table returns their rows too)."""
        return tuple(t for t in self.tables if name in self.lineage(t))


# ---------------------------------------------------------------------- shared columns

SYS_COLUMNS = (
    Column("sys_id", "sys_id", read_only=True, label="Sys ID"),
    Column("sys_created_on", "glide_date_time", read_only=True, label="Created"),
    Column("sys_created_by", read_only=True, label="Created by"),
    Column("sys_updated_on", "glide_date_time", read_only=True, label="Updated"),
    Column("sys_updated_by", read_only=True, label="Updated by"),
    Column("sys_mod_count", "integer", default="0", read_only=True, label="Updates"),
)

# sys_metadata's columns (facts-2 §9, servicenow-api.md §3); the instance fills them, clients cannot set them.
METADATA_COLUMNS = (
    Column("sys_class_name", read_only=True, label="Class"),
    Column("sys_name", read_only=True, label="Display name"),
    Column("sys_package", "reference", reference="sys_package", read_only=True, label="Package"),
    Column("sys_policy", read_only=True, label="Protection policy"),
    Column("sys_scope", "reference", reference="sys_scope", read_only=True, label="Application"),
    Column("sys_update_name", read_only=True, label="Update name"),
)

BASIC_AUTH_COLUMNS = (
    Column("use_basic_auth", "boolean", default="false"),
    Column("basic_auth_user", label="Basic auth user ID"),
    Column("basic_auth_password", "password2", label="Basic auth password"),
)

BASIC_AUTH_PROFILE = Column(
    "basic_auth_profile", "reference", reference="sys_auth_profile_basic", label="Basic auth profile"
)

# On both REST tables (facts-2 §2).
REST_AUTH_COLUMNS = (
    *BASIC_AUTH_COLUMNS,
    BASIC_AUTH_PROFILE,
    Column("oauth2_profile", "reference", reference="oauth_entity_profile", label="OAuth profile"),
)

# REST (facts-2 §2) and the Application Registry (§4): form labels "Use mutual authentication", "Protocol profile".
MUTUAL_AUTH_COLUMNS = (
    Column("use_mutual_auth", "boolean", default="false", label="Use mutual authentication"),
    Column("protocol_name", "reference", reference="sys_protocol_profile", label="Protocol profile"),
)

# The real SOAP columns (facts-2 §1), form labels "Enable mutual authentication" and "Protocol profile".
SOAP_MUTUAL_AUTH_COLUMNS = (
    Column("enable_mutual_auth", "boolean", default="false", label="Enable mutual authentication"),
    Column("protocol_profile", "reference", reference="sys_protocol_profile", label="Protocol profile"),
)

# authentication_type's stored values (facts-2 §2, all five confirmed): inherit_from_parent on methods only.
AUTH_TYPES = {
    "no_authentication": "No authentication",
    "basic": "Basic",
    "oauth2": "OAuth 2.0",
    "basic_simple": "Basic (Simple)",
}
METHOD_AUTH_TYPES = {"inherit_from_parent": "Inherit from parent", **AUTH_TYPES}

# [I] choice values the reference does not give: each is listed in docs/emulator.md as inferred.
FREQUENCIES = {"once": "Once", "daily": "Daily", "weekly": "Weekly"}
OAUTH_TYPES = {"oauth_provider": "Third party OAuth Provider", "client": "OAuth API endpoint for external clients"}
GRANT_TYPES = {
    "authorization_code": "Authorization Code",
    "password": "Resource Owner Password Credentials",
    "client_credentials": "Client Credentials",
    "jwt_bearer": "JWT Bearer",
}
CLIENT_CREDENTIALS_AS = {"form_data": "Form data", "basic_auth": "Basic authorization header"}
MID_SELECTIONS = {"auto_select": "Auto-select MID server", "specific_mid_server": "Specific MID server"}
MID_STATUSES = {"Up": "Up", "Down": "Down", "Upgrading": "Upgrading", "Paused": "Paused"}
MID_VALIDATED = {"true": "Validated", "false": "Not validated", "rejected": "Rejected"}
HTTP_METHODS = {m: m.upper() for m in ("get", "post", "put", "patch", "delete", "head")}
UPDATE_SET_STATES = {"in progress": "In progress", "complete": "Complete", "ignore": "Ignore"}

# The roles of each table's ACL (facts-2 §3, §4, §10): any one of them grants access, admin always does.
ADMIN = frozenset({"admin"})
WEB_SERVICE = frozenset({"admin", "web_service_admin"})
OAUTH = frozenset({"admin", "oauth_admin"})
CONNECTION = frozenset({"admin", "connection_admin"})
ANYONE: frozenset[str] = frozenset()

# Tables the emulator serves from its table definitions rather than from stored rows.
CATALOG_TABLES = ("sys_db_object", "sys_dictionary")


def _root(
    name: str,
    label: str,
    columns: tuple[Column, ...],
    display_field: str,
    read_roles: frozenset[str],
    write_roles: frozenset[str],
    *,
    writable: bool = True,
) -> TableDef:
    """A table that extends nothing: it carries the sys_ audit columns itself."""
    return TableDef(name, label, (*columns, *SYS_COLUMNS), display_field, read_roles, write_roles, None, writable)


def definitions(connection_columns: tuple[str, str] = ("mutual_auth", "protocol_profile")) -> tuple[TableDef, ...]:
    """The emulated tables. ``connection_columns``: the names of http_connection's "Mutual authentication" and
    "Protocol profile" columns, which the reference does not confirm (facts-2 §3) [I]."""
    mutual_auth, protocol_profile = connection_columns
    return (
        _root(
            "sys_certificate",
            "X.509 Certificate",
            (
                Column("name", mandatory=True),
                Column("short_description"),
                Column(
                    "type",
                    "choice",
                    choices={
                        "trust_store": "Trust Store Cert",
                        "key_store": "Java Key Store",
                        "pkcs12_key_store": "PKCS12 Key Store",
                    },
                    default="trust_store",
                ),
                Column("format", "choice", choices={"pem": "PEM", "der": "DER"}, default="pem"),
                Column("pem_certificate", label="PEM certificate"),
                Column("key_store_password", "password2", label="Key store password"),
                Column("active", "boolean", default="true"),
                Column("valid_from", "glide_date_time", read_only=True),
                Column("expires", "glide_date_time", read_only=True),
                Column("expires_in_days", "integer", read_only=True),
                Column("issuer", read_only=True),
                Column("subject", read_only=True),
                Column("serial_number", read_only=True),
                # expiry notifications (facts-2 §6; servicenow-api.md §1)
                Column("expiration_notification", "boolean", default="false"),
                Column("notify_on_expiration", "glide_list", reference="sys_user"),
                Column(
                    "notify_groups", "glide_list", reference="sys_user_group", label="Groups to notify on expiration"
                ),
                Column("warn_in_days_to_expire", "integer"),
                Column("frequency", "choice", choices=FREQUENCIES, mandatory=True),
            ),
            "name",
            ADMIN,
            ADMIN,
        ),
        _root(
            "sys_protocol_profile",
            "Protocol Profile",
            (
                Column("protocol", mandatory=True),
                Column("default_port", "integer", default="443"),
                Column("keystore", "reference", reference="sys_certificate"),
            ),
            "protocol",
            ADMIN,
            ADMIN,
        ),
        _root(
            "sys_metadata",
            "Application File",
            METADATA_COLUMNS,
            "sys_name",
            ANYONE,  # rows are filtered by read access to the table each one belongs to
            ADMIN,
        ),
        TableDef(
            "sys_rest_message",
            "REST Message",
            (
                Column("name", mandatory=True),
                Column("description"),
                Column("rest_endpoint", label="Endpoint"),
                Column(
                    "access",
                    "choice",
                    choices={"public": "All application scopes", "package_private": "This application scope only"},
                    default="public",
                    label="Accessible from",
                ),
                Column("authentication_type", "choice", choices=AUTH_TYPES, default="no_authentication"),
                *REST_AUTH_COLUMNS,
                *MUTUAL_AUTH_COLUMNS,
            ),
            "name",
            WEB_SERVICE,
            WEB_SERVICE,
            parent="sys_metadata",
        ),
        TableDef(
            "sys_rest_message_fn",
            "HTTP Method",
            (
                Column("rest_message", "reference", reference="sys_rest_message", mandatory=True, label="REST message"),
                Column("function_name", mandatory=True, label="Name"),
                Column("http_method", "choice", choices=HTTP_METHODS, default="get", label="HTTP method"),
                Column("rest_endpoint", label="Endpoint"),
                Column("content"),
                Column("qualified_name", read_only=True),
                Column("lock", "boolean", default="false"),
                Column("use_mid_server", "reference", reference="ecc_agent", label="Use MID server"),
                Column(
                    "authentication_type",
                    "choice",
                    choices=METHOD_AUTH_TYPES,
                    default="inherit_from_parent",
                ),
                *REST_AUTH_COLUMNS,
                *MUTUAL_AUTH_COLUMNS,
            ),
            "function_name",
            WEB_SERVICE,
            WEB_SERVICE,
            parent="sys_metadata",
        ),
        TableDef(
            "sys_soap_message",
            "SOAP Message",
            (
                Column("name", mandatory=True),
                Column("description"),
                Column("wsdl", label="WSDL"),
                Column("download_wsdl", "boolean", default="false", label="Download WSDL"),
                Column("envelope"),
                Column("authentication_type", "choice", choices=AUTH_TYPES, default="no_authentication"),
                *BASIC_AUTH_COLUMNS,
                BASIC_AUTH_PROFILE,
                *SOAP_MUTUAL_AUTH_COLUMNS,
            ),
            "name",
            WEB_SERVICE,
            WEB_SERVICE,
            parent="sys_metadata",  # likely (facts-2 §9: it has sys_scope)
        ),
        TableDef(
            "sys_soap_message_function",
            "SOAP Message Function",
            (
                Column("soap_message", "reference", reference="sys_soap_message", mandatory=True, label="SOAP message"),
                Column("function_name", mandatory=True, label="Name"),
                Column("soap_action", label="SOAP action"),
                Column("soap_endpoint", label="Endpoint"),
                Column("envelope"),
                Column("use_mid_server", "reference", reference="ecc_agent", label="Use MID server"),
                Column("authentication_type", "choice", choices=METHOD_AUTH_TYPES, default="inherit_from_parent"),
                *BASIC_AUTH_COLUMNS,
                *SOAP_MUTUAL_AUTH_COLUMNS,
            ),
            "function_name",
            WEB_SERVICE,
            WEB_SERVICE,
            parent="sys_metadata",
        ),
        TableDef(
            "oauth_entity",
            "Application Registry",
            (
                Column("name", mandatory=True),
                Column("type", "choice", choices=OAUTH_TYPES, default="oauth_provider"),
                Column("client_id", label="Client ID"),
                Column("client_secret", "password2"),
                Column("default_grant_type", "choice", choices=GRANT_TYPES, default="authorization_code"),
                Column("auth_url", label="Authorization URL"),
                Column("token_url", label="Token URL"),
                Column("revoke_token_url", label="Token revocation URL"),
                Column("refresh_token_url", label="Refresh token URL"),
                Column("send_client_credentials_as", "choice", choices=CLIENT_CREDENTIALS_AS, default="form_data"),
                *MUTUAL_AUTH_COLUMNS,  # the REST names here (facts-2 §4)
                Column("active", "boolean", default="true"),
            ),
            "name",
            OAUTH,
            OAUTH,
            parent="sys_metadata",  # facts-2 §4
        ),
        _root(
            "sys_connection",
            "Connection",
            (
                Column("name", mandatory=True),
                Column("connection_alias", "reference", reference="sys_alias"),
                Column("credential", "reference", reference="discovery_credentials"),
                Column("active", "boolean", default="true"),
                Column("sys_class_name", read_only=True, label="Class"),
            ),
            "name",
            CONNECTION,
            CONNECTION,
        ),
        TableDef(
            "http_connection",
            "HTTP(s) Connection",
            (
                Column("connection_url", label="Connection URL"),
                Column("url_builder", "boolean", default="false", label="Use Connection URL builder"),
                Column(mutual_auth, "boolean", default="false", label="Mutual authentication"),
                Column("protocol", default="https"),
                Column(protocol_profile, "reference", reference="sys_protocol_profile", label="Protocol profile"),
                Column("host"),
                Column("port", "integer"),
                Column("base_path"),
                Column("use_mid", "boolean", default="false", label="Use MID server"),
                Column("mid_selection", "choice", choices=MID_SELECTIONS, default="auto_select", label="MID selection"),
                Column("mid_server", "reference", reference="ecc_agent", label="MID server"),
                Column("connection_retries", "integer", default="0"),
            ),
            "name",
            CONNECTION,
            CONNECTION,
            parent="sys_connection",  # facts-2 §3
        ),
        _root(
            "ecc_agent",
            "MID Server",
            (
                Column("name", mandatory=True),
                Column("status", "choice", choices=MID_STATUSES, default="Down"),
                Column("validated", "choice", choices=MID_VALIDATED, default="false"),
                Column("host_name"),
                Column("ip_address", label="IP address"),
                Column("version"),
            ),
            "name",
            WEB_SERVICE,  # who picks one on a method must read them [I]
            ADMIN,
        ),
        _root(
            "sys_attachment",
            "Attachment",
            (
                Column("file_name"),
                Column("content_type"),
                Column("size_bytes", "integer"),
                Column("size_compressed", "integer"),
                Column("compressed", "boolean", default="true"),
                Column("table_name"),
                Column("table_sys_id"),
                Column("image_width", "integer"),
                Column("image_height", "integer"),
                Column("average_image_color"),
                Column("sys_tags"),
            ),
            "file_name",
            ANYONE,  # rows are filtered by read access to the table each one is attached to
            ADMIN,  # Table API writes; the Attachment API checks the target table instead
        ),
        _root(
            "sys_properties",
            "System Property",
            (
                Column("name", mandatory=True),
                Column("value", max_length=4000),  # [I] the common dictionary length of the column
                Column("description"),
                Column(
                    "type",
                    "choice",
                    choices={t: t for t in ("string", "integer", "boolean", "choicelist", "password2")},
                    default="string",
                ),
                Column("ignore_cache", "boolean", default="false"),
                Column("is_private", "boolean", default="false"),
                Column("read_roles"),
                Column("write_roles"),
            ),
            "name",
            ADMIN,
            ADMIN,
        ),
        # Users and roles (facts-2 §10).
        _root(
            "sys_user",
            "User",
            (
                Column("user_name", mandatory=True, label="User ID"),
                Column("first_name"),
                Column("last_name"),
                Column("name"),
                Column("email"),
                Column("active", "boolean", default="true"),
                Column("locked_out", "boolean", default="false"),
                Column("web_service_access_only", "boolean", default="false"),
                Column("user_password", "password", label="Password"),
                Column("roles", read_only=True),
            ),
            "name",
            ANYONE,
            ADMIN,
        ),
        _root(
            "sys_user_role",
            "Role",
            (
                Column("name", mandatory=True),
                Column("description"),
                Column("elevated_privilege", "boolean", default="false"),
            ),
            "name",
            ANYONE,
            ADMIN,
        ),
        _root(
            "sys_user_has_role",
            "User Role",
            (
                Column("user", "reference", reference="sys_user", mandatory=True),
                Column("role", "reference", reference="sys_user_role", mandatory=True),
                Column("inherited", "boolean", default="false", read_only=True),
                Column(
                    "state",
                    "choice",
                    choices={"active": "Active", "requested": "Requested", "pending": "Pending", "revoked": "Revoked"},
                    default="active",
                ),
            ),
            "role",
            ANYONE,  # rows: a user reads its own, an admin all (EmulatorConfig.user_roles_read)
            ADMIN,
        ),
        _root(
            "sys_user_group",
            "Group",
            (
                Column("name", mandatory=True),
                Column("description"),
                Column("email"),
                Column("manager", "reference", reference="sys_user"),
                Column("active", "boolean", default="true"),
            ),
            "name",
            ANYONE,
            ADMIN,
        ),
        # Update sets (facts-2 §9): a user's current set is its sys_user_preference 'sys_update_set' (likely); the
        # columns of both tables and the stock "Default" set are [I].
        _root(
            "sys_user_preference",
            "User Preference",
            (
                Column("user", "reference", reference="sys_user"),
                Column("name", mandatory=True),
                Column("value"),
                Column("type", default="string"),
                Column("description"),
            ),
            "name",
            ANYONE,  # rows: a user reads its own and the system-wide ones (no user), an admin all [I]
            ADMIN,
        ),
        _root(
            "sys_update_set",
            "Update Set",
            (
                Column("name", mandatory=True),
                Column("description"),
                Column("state", "choice", choices=UPDATE_SET_STATES, default="in progress"),
                Column("application", "reference", reference="sys_scope", default="global"),
            ),
            "name",
            ADMIN,
            ADMIN,
        ),
        # The data dictionary (facts-2 §8), served from these definitions.
        _root(
            "sys_db_object",
            "Table",
            (
                Column("name", read_only=True),
                Column("label", read_only=True),
                Column("super_class", "reference", reference="sys_db_object", read_only=True, label="Extends table"),
                Column("sys_name", read_only=True, label="Display name"),
                Column("is_extendable", "boolean", default="false", read_only=True, label="Extensible"),
                Column(
                    "ws_access",
                    "boolean",
                    default="true",
                    read_only=True,
                    label="Allow access to this table via web services",
                ),
            ),
            "label",
            ADMIN,
            ADMIN,
            writable=False,
        ),
        _root(
            "sys_dictionary",
            "Dictionary Entry",
            (
                Column("name", read_only=True, label="Table"),
                Column("element", read_only=True, label="Column name"),
                Column("column_label", read_only=True),
                Column(
                    "internal_type",
                    "reference",
                    reference="sys_glide_object",
                    reference_key="name",
                    read_only=True,
                    label="Type",
                ),
                Column("reference", "reference", reference="sys_db_object", reference_key="name", read_only=True),
                Column("max_length", "integer", read_only=True),
                Column("mandatory", "boolean", default="false", read_only=True),
                Column("read_only", "boolean", default="false", read_only=True),
                Column("active", "boolean", default="true", read_only=True),
                Column("display", "boolean", default="false", read_only=True),
                Column("default_value", read_only=True),
                Column(
                    "choice",
                    "choice",
                    choices={"0": "-- None --", "1": "Dropdown with -- None --", "3": "Dropdown without -- None --"},
                    default="0",
                    read_only=True,
                ),
            ),
            "column_label",
            ADMIN,
            ADMIN,
            writable=False,
        ),
    )


KEYSTORE_TYPES = frozenset({"key_store", "pkcs12_key_store"})
