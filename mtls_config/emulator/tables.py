"""The emulated tables: their columns, types, choices, display fields and the roles that guard them.

Pure data, no behaviour. Must never import: starlette, the client, the engine, the keystore package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

FieldType = Literal[
    "string", "boolean", "integer", "choice", "reference", "password2", "glide_date_time", "glide_list", "sys_id"
]


@dataclass(frozen=True)
class Column:
    name: str
    type: FieldType = "string"
    reference: str | None = None  # referenced table, for type reference
    choices: Mapping[str, str] = field(default_factory=dict)  # stored value -> label
    default: str = ""
    mandatory: bool = False
    read_only: bool = False  # derived by the instance; client writes are ignored
    max_length: int | None = None  # string columns: longer values are cut (or refused, per EmulatorConfig)


@dataclass(frozen=True)
class Table:
    name: str
    label: str
    columns: tuple[Column, ...]
    display_field: str
    read_roles: frozenset[str]  # any one of them grants read; empty = any authenticated user
    write_roles: frozenset[str]
    by_name: Mapping[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", MappingProxyType({c.name: c for c in self.columns}))

    def column(self, name: str) -> Column | None:
        return self.by_name.get(name)

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


SYS_COLUMNS = (
    Column("sys_id", "sys_id", read_only=True),
    Column("sys_created_on", "glide_date_time", read_only=True),
    Column("sys_created_by", read_only=True),
    Column("sys_updated_on", "glide_date_time", read_only=True),
    Column("sys_updated_by", read_only=True),
    Column("sys_mod_count", "integer", default="0", read_only=True),
)

# sys_metadata columns of the message tables; the instance fills them, clients cannot set them.
METADATA_COLUMNS = (
    Column("sys_class_name", read_only=True),
    Column("sys_name", read_only=True),
    Column("sys_package", "reference", reference="sys_package", read_only=True),
    Column("sys_policy", read_only=True),
    Column("sys_scope", "reference", reference="sys_scope", read_only=True),
    Column("sys_update_name", read_only=True),
)

BASIC_AUTH_COLUMNS = (
    Column("use_basic_auth", "boolean", default="false"),
    Column("basic_auth_user"),
    Column("basic_auth_password", "password2"),
)

MUTUAL_AUTH_COLUMNS = (
    Column("use_mutual_auth", "boolean", default="false"),
    Column("protocol_name", "reference", reference="sys_protocol_profile"),
)

AUTH_TYPES = {"no_authentication": "No authentication", "basic": "Basic", "oauth2": "OAuth 2.0"}
HTTP_METHODS = {m: m.upper() for m in ("get", "post", "put", "patch", "delete", "head")}

ADMIN = frozenset({"admin"})
WEB_SERVICE = frozenset({"admin", "web_service_admin"})
ANYONE: frozenset[str] = frozenset()


def _table(
    name: str,
    label: str,
    columns: tuple[Column, ...],
    display_field: str,
    read_roles: frozenset[str],
    write_roles: frozenset[str],
) -> Table:
    return Table(name, label, (*columns, *SYS_COLUMNS), display_field, read_roles, write_roles)


TABLES: Mapping[str, Table] = MappingProxyType(
    {
        t.name: t
        for t in (
            _table(
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
                    Column("pem_certificate"),
                    Column("key_store_password", "password2"),
                    Column("active", "boolean", default="true"),
                    Column("valid_from", "glide_date_time", read_only=True),
                    Column("expires", "glide_date_time", read_only=True),
                    Column("expires_in_days", "integer", read_only=True),
                    Column("issuer", read_only=True),
                    Column("subject", read_only=True),
                    Column("serial_number", read_only=True),
                    Column("expiration_notification", "boolean", default="false"),
                    Column("notify_on_expiration", "glide_list"),
                    Column("notify_groups", "glide_list"),
                    Column("warn_in_days_to_expire", "integer"),
                    Column("frequency"),
                ),
                "name",
                ADMIN,
                ADMIN,
            ),
            _table(
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
            _table(
                "sys_rest_message",
                "REST Message",
                (
                    Column("name", mandatory=True),
                    Column("description"),
                    Column("rest_endpoint"),
                    Column(
                        "access",
                        "choice",
                        choices={"public": "All application scopes", "package_private": "This application scope only"},
                        default="public",
                    ),
                    Column("authentication_type", "choice", choices=AUTH_TYPES, default="no_authentication"),
                    *BASIC_AUTH_COLUMNS,
                    Column("basic_auth_profile", "reference", reference="sys_auth_profile_basic"),
                    Column("oauth2_profile", "reference", reference="oauth_entity_profile"),
                    *MUTUAL_AUTH_COLUMNS,
                    *METADATA_COLUMNS,
                ),
                "name",
                WEB_SERVICE,
                WEB_SERVICE,
            ),
            _table(
                "sys_rest_message_fn",
                "HTTP Method",
                (
                    Column("rest_message", "reference", reference="sys_rest_message", mandatory=True),
                    Column("function_name", mandatory=True),
                    Column("http_method", "choice", choices=HTTP_METHODS, default="get"),
                    Column("rest_endpoint"),
                    Column("content"),
                    Column("qualified_name", read_only=True),
                    Column("lock", "boolean", default="false"),
                    Column("use_mid_server", "reference", reference="ecc_agent"),
                    Column(
                        "authentication_type",
                        "choice",
                        choices={"inherit_from_parent": "Inherit from parent", **AUTH_TYPES},
                        default="inherit_from_parent",
                    ),
                    *BASIC_AUTH_COLUMNS,
                    Column("basic_auth_profile", "reference", reference="sys_auth_profile_basic"),
                    Column("oauth2_profile", "reference", reference="oauth_entity_profile"),
                    *MUTUAL_AUTH_COLUMNS,
                    *METADATA_COLUMNS,
                ),
                "function_name",
                WEB_SERVICE,
                WEB_SERVICE,
            ),
            _table(
                "sys_soap_message",
                "SOAP Message",
                (
                    Column("name", mandatory=True),
                    Column("description"),
                    Column("wsdl"),
                    Column("download_wsdl", "boolean", default="false"),
                    Column("envelope"),
                    *BASIC_AUTH_COLUMNS,
                    *MUTUAL_AUTH_COLUMNS,
                    *METADATA_COLUMNS,
                ),
                "name",
                WEB_SERVICE,
                WEB_SERVICE,
            ),
            _table(
                "sys_soap_message_function",
                "SOAP Message Function",
                (
                    Column("soap_message", "reference", reference="sys_soap_message", mandatory=True),
                    Column("function_name", mandatory=True),
                    Column("soap_action"),
                    Column("soap_endpoint"),
                    Column("envelope"),
                    *BASIC_AUTH_COLUMNS,
                    *MUTUAL_AUTH_COLUMNS,
                    *METADATA_COLUMNS,
                ),
                "function_name",
                WEB_SERVICE,
                WEB_SERVICE,
            ),
            _table(
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
            _table(
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
            _table(
                "sys_user",
                "User",
                (
                    Column("user_name", mandatory=True),
                    Column("first_name"),
                    Column("last_name"),
                    Column("name"),
                    Column("email"),
                    Column("active", "boolean", default="true"),
                    Column("locked_out", "boolean", default="false"),
                    Column("web_service_access_only", "boolean", default="false"),
                    Column("roles", read_only=True),
                ),
                "name",
                ANYONE,
                ADMIN,
            ),
        )
    }
)

KEYSTORE_TYPES = frozenset({"key_store", "pkcs12_key_store"})
