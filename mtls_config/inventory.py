"""The stack's inventory: which instance records a stack owns, kept on the instance itself.

One ``sys_properties`` record per stack (``mtls_config.inventory.<stack>``). Its value is the inventory
JSON when that fits the property's length limit, else a pointer to a JSON attachment on the same record.
Per owned resource it keeps the natural key, the sys_ids, the content digests that let a plan trust the
instance without downloading files, the salted digest of the keystore password, and for message bindings
the field values found before the stack took them over. A generation counter lets two writers notice
each other. Pure data and (de)serialisation: no I/O here.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROPERTY_PREFIX = "mtls_config.inventory."
FORMAT_VERSION = 1
VALUE_LIMIT = 3500  # sys_properties values are commonly limited to 4000 characters
ATTACHMENT_NAME = "inventory.json"
IMPORTED_PASSWORD = "as-found"  # password_digest of an imported keystore: the value on the instance, unknown to us


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OwnedRecord(_Model):
    table: str
    sys_id: str
    part: str = ""  # "" for single-record kinds; "message" / "fn:<name>" for bindings
    mod_count: int | None = None  # after our last write (None: pending, not yet written)
    original: dict[str, str] | None = None  # bindings: the owned fields' values before we took them


class OwnedResource(_Model):
    address: str
    records: list[OwnedRecord] = Field(default_factory=list)
    content_attachment: str | None = None  # sys_id of the attachment we uploaded
    content_size: int | None = None
    content_digest: str | None = None  # the digest we compared on (sha256 or canonical)
    password_digest: str | None = None  # salted HMAC of the keystore password we set
    password_opaque: str | None = None  # sha256 of what the instance returns for the password field, if anything
    pending: bool = False  # recorded before the write; confirmed after


class Inventory(_Model):
    format_version: int = FORMAT_VERSION
    stack: str
    generation: int = 0
    salt: str = Field(default_factory=lambda: secrets.token_hex(16))
    resources: dict[str, OwnedResource] = Field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Inventory:
        return cls.model_validate(json.loads(text))


def property_name(stack: str) -> str:
    return PROPERTY_PREFIX + stack


def pointer_value(generation: int, attachment_sys_id: str | None = None) -> str:
    """The property value when the inventory lives in an attachment. With the attachment's sys_id a reader
    downloads it straight away (one round trip) instead of listing the record's attachments first."""
    pointer: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "attachment": ATTACHMENT_NAME,
        "generation": generation,
    }
    if attachment_sys_id:
        pointer["attachment_sys_id"] = attachment_sys_id
    return json.dumps(pointer)


def parse_value(value: str) -> tuple[Inventory | None, dict[str, Any] | None]:
    """(inventory, None) when the value holds it; (None, pointer) when it lives in an attachment."""
    data = json.loads(value)
    if isinstance(data, dict) and "attachment" in data and "resources" not in data:
        return None, data
    return Inventory.model_validate(data), None
