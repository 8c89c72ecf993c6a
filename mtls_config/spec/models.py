"""The spec language: one pydantic model per resource kind, tagged on ``kind``.

A spec document is Kubernetes-shaped::

    apiVersion: mtls-config/v1
    kind: KeyStore | TrustStoreCert | ProtocolProfile | MessageBinding
    metadata: {name: ..., adopt: false}
    spec: {...}

File paths in a spec are relative to the spec file. When a ``SpecContext`` is passed as validation context
(the loader does), paths are resolved to absolute paths, checked to exist and to stay inside the spec
repository; without one they are kept as written (JSON Schema export, unit tests).

The field descriptions here are the spec reference: ``docs/`` and ``schemas/`` are generated from them.
Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.functional_validators import AfterValidator
from pydantic_core import PydanticCustomError

from mtls_config.secrets import SecretRef

API_VERSION = "mtls-config/v1"
KINDS = ("KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding")

# Schemes a protocol profile must not shadow: the instance resolves these itself.
RESERVED_SCHEMES = frozenset(
    {
        "http", "https", "ftp", "ftps", "sftp", "file", "jar", "mailto", "ldap", "ldaps",
        "ws", "wss", "ssh", "telnet", "smtp", "smtps", "imap", "imaps", "pop", "pops", "jdbc", "data",
    }
)  # fmt: skip
PROTOCOL_NAME = re.compile(r"^[a-z]+$")


_KIND_NAMES: dict[type, str] = {}  # a resource model -> its kind, filled by _Resource.kind_name


@dataclass(frozen=True)
class SpecContext:
    """Validation context: where relative paths start and where they must stay."""

    base_dir: Path  # the spec file's folder
    root: Path  # the spec repository's root; file references may not leave it
    # What each path came to, for the run: a spec path (to a folder, as written) -> the resolved file or the error
    # to raise again. Thousands of specs name one keystore file ('client.jks'), and resolving a path is a system
    # call per component (about 25 us). Shared by the contexts of one load, so the checks run once per run; the
    # next run checks the files as they are then.
    outcomes: dict[tuple[Path, Path, str], str | tuple[str, str, dict[str, Any]]] = field(
        default_factory=dict, compare=False, repr=False
    )


def _resolve_spec_path(value: str, info: ValidationInfo) -> str:
    ctx = info.context.get("spec") if isinstance(info.context, dict) else None
    if not isinstance(ctx, SpecContext):
        return value
    key = (ctx.base_dir, ctx.root, value)
    outcome = ctx.outcomes.get(key)
    if outcome is None:
        try:
            outcome = _checked_spec_path(value, ctx.base_dir, ctx.root)
        except PydanticCustomError as exc:
            outcome = (exc.type, exc.message_template, exc.context or {})
        ctx.outcomes[key] = outcome
    if isinstance(outcome, tuple):
        raise PydanticCustomError(*outcome)
    return outcome


def _checked_spec_path(value: str, base_dir: Path, root_dir: Path) -> str:
    """The file ``value`` (relative to ``base_dir``) names, resolved; raises when it is absolute, missing, not a
    regular file or outside ``root_dir``."""
    raw = Path(value)
    if raw.is_absolute():
        raise PydanticCustomError(
            "path_absolute",
            "'{path}' is an absolute path; use a path relative to the spec file, inside the spec repository",
            {"path": value},
        )
    candidate = base_dir / raw
    try:
        resolved = candidate.resolve()
    except (RuntimeError, OSError):  # a symbolic link loop (RuntimeError before Python 3.13, OSError after)
        raise PydanticCustomError(
            "path_unresolvable", "'{path}' cannot be resolved (a loop of symbolic links?)", {"path": value}
        ) from None
    root = root_dir.resolve()
    if not resolved.is_relative_to(root):
        # Tell a symlink that leads out apart from a path that is written to lead out: the fixes differ.
        written = Path(os.path.normpath(base_dir.resolve() / raw))
        if written.is_relative_to(root):
            raise PydanticCustomError(
                "path_symlink_outside",
                "'{path}' is a symbolic link to a file outside the spec repository; "
                "copy the file into the repository instead",
                {"path": value},
            )
        raise PydanticCustomError(
            "path_outside",
            "'{path}' points outside the spec repository; keep referenced files inside it",
            {"path": value},
        )
    if not resolved.exists():
        raise PydanticCustomError(
            "path_missing", "file '{path}' does not exist (paths are relative to the spec file)", {"path": value}
        )
    if not resolved.is_file():
        raise PydanticCustomError("path_not_file", "'{path}' is not a regular file", {"path": value})
    return str(resolved)


SpecPath = Annotated[str, Field(min_length=1), AfterValidator(_resolve_spec_path)]


# One set of "fields given" per model class and content, shared by the models that have it: pydantic gives each
# validated model a set of its own (216 bytes, nearly half a small model's memory; about 4 MB of a stack of 5000
# resources). Safe because the models are frozen: nothing adds to the set of a model once made (model_copy copies it).
_FIELDS_SETS: dict[tuple[type[BaseModel], frozenset[str]], set[str]] = {}
# The set each model class shared last: documents of a kind mostly give the same fields, and comparing with it
# is cheaper than making the key above (a frozenset, a tuple, their hashes) for every model.
_LAST: dict[type[BaseModel], set[str]] = {}
_setattr = object.__setattr__


class _Model(BaseModel):
    # validate_default=False: every default is a value its field takes as it is (tests/test_spec_loader.py holds
    # each to that), so validating it again for every document only cost time (about 1 us a resource).
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True, validate_default=False
    )

    @model_validator(mode="after")
    def _share_fields_set(self) -> Self:
        given = self.__pydantic_fields_set__
        cls = type(self)
        last = _LAST.get(cls)
        if last == given:
            _setattr(self, "__pydantic_fields_set__", last)
            return self
        shared = _LAST[cls] = _FIELDS_SETS.setdefault((cls, frozenset(given)), given)
        if shared is not given:
            _setattr(self, "__pydantic_fields_set__", shared)
        return self


def _no_caret(value: str) -> str:
    if "^" in value:
        raise PydanticCustomError(
            "name_caret", "'^' cannot be used here: the instance's encoded queries use it to separate conditions"
        )
    return value


# A name the engine looks up on the instance (an encoded query cannot hold '^').
InstanceName = Annotated[str, AfterValidator(_no_caret)]


class Metadata(_Model):
    """Identity of a resource. ``name`` is its natural key on the instance."""

    name: InstanceName = Field(
        min_length=1,
        max_length=100,
        pattern=r"^\S(.*\S)?$",
        description="Name of the resource: the certificate record's name for KeyStore and TrustStoreCert, "
        "the protocol scheme for ProtocolProfile, a label of your choice for MessageBinding.",
    )
    adopt: bool = Field(
        default=False,
        description="Take ownership of an existing instance record with this natural key that no stack owns "
        "(instead of stopping with 'exists but not owned').",
    )


class ProtocolProfileMetadata(Metadata):
    name: str = Field(
        min_length=1,
        max_length=40,
        description="The protocol scheme (sys_protocol_profile.protocol), e.g. 'mauth': lower-case letters "
        "only, not http/https or another existing scheme. Keep it under 8 letters (KB0696599).",
        # For editors only; at run time the validator below says what is wrong in words.
        json_schema_extra={"pattern": PROTOCOL_NAME.pattern, "not": {"enum": [*sorted(RESERVED_SCHEMES)]}},
    )

    @field_validator("name")
    @classmethod
    def _scheme(cls, name: str) -> str:
        if not PROTOCOL_NAME.match(name):
            raise PydanticCustomError(
                "protocol_name",
                "a protocol profile's name is its URL scheme and must be lower-case letters only (a-z), "
                "e.g. 'mauth'; '{name}' is not",
                {"name": name},
            )
        if name in RESERVED_SCHEMES:
            raise PydanticCustomError(
                "protocol_reserved",
                "'{name}' is an existing URL scheme the instance handles itself; choose another name, e.g. 'mauth'",
                {"name": name},
            )
        return name


class KeyStoreBuild(_Model):
    """A keystore described by its parts; mtls-config assembles it deterministically."""

    key: SecretRef = Field(description="The PEM private key (PKCS#8 or traditional), as a secret reference.")
    key_password: SecretRef | None = Field(
        default=None, description="Password of the PEM private key, if it is encrypted."
    )
    cert: SpecPath = Field(description="The signed client certificate (PEM), the CA's reply.")
    chain: list[SpecPath] = Field(
        default_factory=list,
        description="CA certificates (PEM files, any order; a file may hold several). They are ordered "
        "leaf to root, put in the key entry's chain and added as trusted entries.",
    )
    alias: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="Alias of the private-key entry (lower-case). Default: derived from the certificate.",
    )


def _names(what: str, value: Any) -> Any:
    """A list of names to look up on the instance: each a non-empty string without '^', none twice (ignoring case,
    as the instance compares names)."""
    if not isinstance(value, list):
        raise PydanticCustomError("names_shape", "must be a list of {what}, e.g. [{example}]", _EXAMPLES[what])
    seen: set[str] = set()
    for position, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            raise PydanticCustomError(
                "names_item", "item {position} of the list is not a {one}", {"position": position, **_EXAMPLES[what]}
            )
        if "^" in item:
            raise PydanticCustomError(
                "names_caret",
                "item {position}: '^' cannot be used in a name (encoded queries use it as a separator)",
                {"position": position},
            )
        if item.casefold() in seen:
            raise PydanticCustomError(
                "names_twice", "'{name}' is listed twice (the instance compares names ignoring case)", {"name": item}
            )
        seen.add(item.casefold())
    return value


_EXAMPLES = {
    "users": {"what": "user IDs", "one": "user ID", "example": "jdoe, asmith"},
    "groups": {"what": "group names", "one": "group name", "example": "PKI Operations"},
}


class ExpirationNotification(_Model):
    """Expiry notices for a certificate record. ``true``/``false`` stand for ``{enabled: true}``/``{enabled: false}``:
    the tick alone. Each list given is owned: the record's list is made exactly it (``[]`` empties it); a list left
    out is not managed and stays as the instance has it."""

    enabled: bool = Field(
        default=True, description="expiration_notification on the record: the instance sends expiry notices."
    )
    users: list[str] | None = Field(
        default=None,
        description="Users to notify, by User ID (sys_user.user_name): notify_on_expiration on the record. "
        "Omitted: not managed.",
    )
    groups: list[str] | None = Field(
        default=None,
        description="Groups to notify, by name (sys_user_group.name): notify_groups on the record (newer "
        "releases: an instance without the column is a plan error). Omitted: not managed.",
    )
    frequency: str | None = Field(
        default=None,
        min_length=1,
        pattern=r"^[a-z_]+$",
        description="How often the instance sends the notice: frequency on the record, one of the instance's "
        "choice values (e.g. daily; newer releases). Omitted: not managed.",
    )

    @field_validator("users", mode="before")
    @classmethod
    def _users(cls, value: Any) -> Any:
        return value if value is None else _names("users", value)

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        return value if value is None else _names("groups", value)


def _flag_or_mapping(schema: dict[str, Any]) -> None:
    """expirationNotification in the JSON Schema: true/false, or the mapping; false when omitted."""
    ref = schema.pop("$ref", None) or schema.pop("allOf")[0]["$ref"]
    schema.pop("default", None)
    schema["oneOf"] = [{"type": "boolean"}, {"$ref": ref}]
    schema["default"] = False


class _CertificateRecordSpec(_Model):
    """The fields every ``sys_certificate`` record has, whatever it holds."""

    active: bool = Field(default=True, description="Whether the certificate record is active.")
    description: str = Field(default="", max_length=1000, description="short_description of the record.")
    warn_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Days before expiry to warn (drift, lint) and warn_in_days_to_expire on the record.",
    )
    expiration_notification: ExpirationNotification = Field(
        default=ExpirationNotification(enabled=False),
        description="Expiry notices: true or false sets expiration_notification on the record alone (who is "
        "notified stays as the instance has it); a mapping {enabled, users, groups, frequency} also says who is "
        "notified and how often.",
        json_schema_extra=_flag_or_mapping,
    )

    @field_validator("expiration_notification", mode="before")
    @classmethod
    def _notification_shape(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, dict | ExpirationNotification):
            return value
        raise PydanticCustomError(
            "notification_shape", "must be true, false or a mapping {users: [...], groups: [...], frequency: ...}"
        )


class KeyStoreSpec(_CertificateRecordSpec):
    """A Java keystore with the instance's client key: a ``sys_certificate`` record with the file attached."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["file"]}, {"required": ["build"]}]})

    format: Literal["jks", "pkcs12"] = Field(
        default="jks",
        description="jks (type 'Java Key Store', key_store) or pkcs12 (type 'PKCS12 Key Store', pkcs12_key_store).",
    )
    file: SpecPath | None = Field(default=None, description="The keystore file, relative to the spec file.")
    build: KeyStoreBuild | None = Field(
        default=None, description="Instead of file: the parts to assemble the keystore from."
    )
    password: SecretRef = Field(
        description="The keystore password (also the key password). Written to the write-only "
        "key_store_password field; never shown or compared by value."
    )

    @model_validator(mode="after")
    def _file_or_build(self) -> KeyStoreSpec:
        if self.file is not None and self.build is not None:
            raise PydanticCustomError("file_and_build", "give either 'file' or 'build', not both")
        if self.file is None and self.build is None:
            raise PydanticCustomError(
                "file_or_build",
                "missing the keystore: give 'file' (a .jks/.p12 file) or 'build' (key, cert and chain to assemble)",
            )
        return self


class TrustStoreCertSpec(_CertificateRecordSpec):
    """A partner's certificate the instance trusts: a ``sys_certificate`` record of type trust_store."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [{"required": ["file"]}, {"required": ["pem"]}],
            "if": {"required": ["pem"]},
            "then": {"properties": {"format": {"const": "pem"}}},
        }
    )

    format: Literal["pem", "der"] = Field(
        default="pem", description="pem (text in pem_certificate) or der (the file is attached)."
    )
    file: SpecPath | None = Field(default=None, description="The certificate file, relative to the spec file.")
    pem: str | None = Field(default=None, description="Instead of file: the PEM text inline (format pem only).")

    @model_validator(mode="after")
    def _file_or_pem(self) -> TrustStoreCertSpec:
        if self.file is not None and self.pem is not None:
            raise PydanticCustomError("file_and_pem", "give either 'file' or 'pem', not both")
        if self.file is None and self.pem is None:
            raise PydanticCustomError(
                "file_or_pem", "missing the certificate: give 'file' (a PEM or DER file) or 'pem' (the PEM text)"
            )
        if self.pem is not None and self.format != "pem":
            raise PydanticCustomError(
                "pem_inline_der",
                "inline 'pem' text needs 'format: pem'; a DER certificate must be given as a 'file'",
            )
        if self.pem is not None and "-----BEGIN CERTIFICATE-----" not in self.pem:
            raise PydanticCustomError("pem_text", "'pem' must hold a '-----BEGIN CERTIFICATE-----' block")
        return self


class ProtocolProfileSpec(_Model):
    """A ``sys_protocol_profile``: a URL scheme bound to the keystore the instance presents."""

    port: int = Field(default=443, ge=1, le=65535, description="default_port of the profile (443 for TLS).")
    key_store: str = Field(min_length=1, description="Name of the KeyStore (in these specs) the profile uses.")


# What each message.type binds, for messages: the table, and whether its records have functions.
MESSAGE_TYPES = {
    "rest": ("REST message", "sys_rest_message", True),
    "soap": ("SOAP message", "sys_soap_message", True),
    "oauth": ("OAuth provider", "oauth_entity", False),
    "connection": ("HTTP connection", "http_connection", False),
}


class MessageRef(_Model):
    """An existing record on the instance that calls out: a REST or SOAP message, an OAuth provider, an HTTP
    connection."""

    type: Literal["rest", "soap", "oauth", "connection"] = Field(
        description="rest (sys_rest_message), soap (sys_soap_message), oauth (an OAuth provider of the "
        "Application Registry, oauth_entity: its token and revocation requests) or connection (an HTTP connection "
        "of a Connection & Credential alias, http_connection).",
    )
    name: InstanceName = Field(min_length=1, description="The record's name on the instance.")


class MessageBindingSpec(_Model):
    """Turns on mutual authentication for an existing record (and optionally a message's functions)."""

    message: MessageRef = Field(description="The record to bind; it must exist already.")
    functions: Literal["all"] | list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        description="Also bind the message's functions (HTTP methods / SOAP functions): 'all', or a list "
        "of function names. Omitted: only the message itself, which its functions' own ticks then contradict. "
        "rest and soap only.",
    )
    protocol_profile: str = Field(
        min_length=1, description="Name (protocol) of the ProtocolProfile (in these specs) to use."
    )

    @field_validator("functions", mode="before")
    @classmethod
    def _functions_shape(cls, value: Any) -> Any:
        # One clear message instead of one per member of the union (pydantic reports each member's error).
        if value is None or value == "all":
            return value
        if not isinstance(value, list):
            raise PydanticCustomError("functions_shape", "must be 'all' or a list of function names, e.g. [get, post]")
        seen: set[str] = set()
        for position, item in enumerate(value, start=1):
            if not isinstance(item, str) or not item.strip():
                raise PydanticCustomError(
                    "functions_item", "item {position} of the list is not a function name", {"position": position}
                )
            if item in seen:
                raise PydanticCustomError("functions_twice", "function '{name}' is listed twice", {"name": item})
            if "^" in item:
                raise PydanticCustomError(
                    "functions_caret",
                    "item {position}: '^' cannot be used in a function name (encoded queries use it as a separator)",
                    {"position": position},
                )
            seen.add(item)
        return value

    @field_validator("functions")
    @classmethod
    def _functions_of_messages(cls, value: Any, info: ValidationInfo) -> Any:
        message = info.data.get("message")
        if value is not None and isinstance(message, MessageRef) and not MESSAGE_TYPES[message.type][2]:
            what, table, _ = MESSAGE_TYPES[message.type]
            raise PydanticCustomError(
                "functions_not_here",
                "an {what} ({table}) has no functions: remove 'functions' (only rest and soap messages have them)",
                {"what": what, "table": table},
            )
        return value


class SpecReference(NamedTuple):
    """A field of a spec that names another resource of the specs: where it is (``loc``), what it must name (a
    resource of ``model`` called ``name``), and kinds it is easily mistaken for (said so when it names one). A
    tuple: made for every reference each time a stage asks (the plan's order asks for each profile's), and a
    frozen dataclass costs about 2 us to make."""

    loc: tuple[str, ...]
    model: type[_Resource]
    name: str
    needed_by: str = ""  # "a protocol profile": who needs it, for the mistaken-kind message
    mistaken: tuple[type[_Resource], ...] = ()


class _Resource(_Model):
    api_version: Literal["mtls-config/v1"] = Field(alias="apiVersion", description="Always mtls-config/v1.")

    def references(self) -> tuple[SpecReference, ...]:
        """The other resources this one names; each must be in the specs, and is needed on the instance first."""
        return ()

    @property
    def name(self) -> str:
        metadata: Metadata = getattr(self, "metadata")  # noqa: B009 - declared on each subclass
        return metadata.name

    @property
    def address(self) -> str:
        # address_of(name) in one step: asked for again and again by every stage (about 10 times a resource)
        return f"{getattr(self, 'kind')}/{getattr(self, 'metadata').name}"  # noqa: B009 - declared on each subclass

    @classmethod
    def kind_name(cls) -> str:
        """The ``kind`` a document of this model has."""
        name = _KIND_NAMES.get(cls)
        if name is None:  # asked for every address (45 000 times in a plan of 5000): read the Literal once
            (literal,) = get_args(cls.model_fields["kind"].annotation)
            name = _KIND_NAMES[cls] = str(literal)
        return name

    @classmethod
    def address_of(cls, name: str) -> str:
        """The address of the resource of this kind named ``name``: ``KIND/NAME``."""
        return f"{cls.kind_name()}/{name}"


class KeyStore(_Resource):
    kind: Literal["KeyStore"]
    metadata: Metadata
    spec: KeyStoreSpec


class TrustStoreCert(_Resource):
    kind: Literal["TrustStoreCert"]
    metadata: Metadata
    spec: TrustStoreCertSpec


class ProtocolProfile(_Resource):
    kind: Literal["ProtocolProfile"]
    metadata: ProtocolProfileMetadata
    spec: ProtocolProfileSpec

    def references(self) -> tuple[SpecReference, ...]:
        return (
            SpecReference(
                ("spec", "keyStore"), KeyStore, self.spec.key_store, "a protocol profile", mistaken=(TrustStoreCert,)
            ),
        )


class MessageBinding(_Resource):
    kind: Literal["MessageBinding"]
    metadata: Metadata
    spec: MessageBindingSpec

    def references(self) -> tuple[SpecReference, ...]:
        return (SpecReference(("spec", "protocolProfile"), ProtocolProfile, self.spec.protocol_profile),)


def _kind_of(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


Resource = Annotated[
    Annotated[KeyStore, Tag("KeyStore")]
    | Annotated[TrustStoreCert, Tag("TrustStoreCert")]
    | Annotated[ProtocolProfile, Tag("ProtocolProfile")]
    | Annotated[MessageBinding, Tag("MessageBinding")],
    Discriminator(
        _kind_of,
        custom_error_type="unknown_kind",
        custom_error_message="unknown kind; expected one of KeyStore, TrustStoreCert, ProtocolProfile, MessageBinding",
    ),
]

MODELS: dict[str, type[_Resource]] = {
    "KeyStore": KeyStore,
    "TrustStoreCert": TrustStoreCert,
    "ProtocolProfile": ProtocolProfile,
    "MessageBinding": MessageBinding,
}
AnyResource = KeyStore | TrustStoreCert | ProtocolProfile | MessageBinding
