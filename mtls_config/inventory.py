"""The stack's inventory: which instance records a stack owns, kept on the instance itself.

It lives in ``sys_properties``. The head record ``mtls_config.inventory.<stack>`` holds the inventory JSON when
that fits the property's length limit (an admin can read it there). A larger inventory is gzip-compressed and
base64-encoded: held by the head itself when that fits (``PackedInventory``: a write of a small stack then costs
one round trip, not two), else cut into part records ``mtls_config.inventory.<stack>.<token>.<index>`` (a fresh token per
write), and the head holds a pointer naming the token, the number of parts and the JSON's sha256: one query
for the head's name and that prefix reads it all in one round trip. Stack names hold no dot, so the prefix is
unique to the stack. Earlier versions kept a large inventory in a JSON attachment on the head instead; that
pointer is still read.

Per owned resource it keeps the natural key, the sys_ids, the content digests that let a plan trust the
instance without downloading files, the salted digest of the keystore password, and for message bindings
the field values found before the stack took them over. A generation counter lets two writers notice
each other. Pure data and (de)serialisation: no I/O here.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import re
import secrets
import zlib
from collections.abc import Collection, Sequence
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mtls_config.jsontext import loads
from mtls_config.wording import plural

PROPERTY_PREFIX = "mtls_config.inventory."
FORMAT_VERSION = 1
VALUE_LIMIT = 3500  # sys_properties values are commonly limited to 4000 characters
ATTACHMENT_NAME = "inventory.json"  # where earlier versions kept a large inventory
PARTS_ENCODING = "gzip+base64"
# 8 hex characters tell this write's parts from any other's (a new token is checked against the ones
# listed); short, so that a part name stays within 99 characters for the longest stack name.
TOKEN_HEX = 8
MAX_PARTS = 9999  # the index has four digits
MAX_JSON_BYTES = 64 * 1024 * 1024  # a decoded inventory larger than this is refused (about 170,000 resources)
STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_PART_SUFFIX = re.compile(rf"([0-9a-f]{{{TOKEN_HEX}}})\.([0-9]{{4}})")
IMPORTED_PASSWORD = "as-found"  # password_digest of an imported keystore: the value on the instance, unknown to us


# ``json.dumps(value, sort_keys=True, separators=(",", ":"))``, with one encoder for all.
_compact = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> str:
        """Compact JSON with sorted keys: the same value always makes the same text."""
        return _compact(self.model_dump(mode="json"))


# Each validated model gets a set of the fields its input gave, 728 bytes for an owned resource or record: twice
# the rest of the model, 29 MB of an inventory of 20 000 resources (issue 18). An inventory this tool wrote gives
# every field, so such models share one set of all their fields instead; setting a field of a model only adds its
# name to the set, which holds it already, so the shared set never changes. Any other set stays the model's own.
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}
_setattr = object.__setattr__


class _Owned(_Model):
    @model_validator(mode="after")
    def _share_all_fields_set(self) -> Self:
        cls = type(self)
        every = _ALL_FIELDS.get(cls)
        if every is None:
            every = _ALL_FIELDS[cls] = set(cls.model_fields)
        if len(self.__pydantic_fields_set__) == len(every):  # given only fields: given all of them
            _setattr(self, "__pydantic_fields_set__", every)
        return self


class OwnedRecord(_Owned):
    table: str
    sys_id: str
    part: str = ""  # "" for single-record kinds; "message" / "fn:<name>" for bindings
    mod_count: int | None = None  # after our last write (None: pending, not yet written)
    original: dict[str, str] | None = None  # bindings: the owned fields' values before we took them


class OwnedResource(_Owned):
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
        """``_Model.to_json``'s text, made a resource at a time: the whole inventory as one tree of dicts first was
        40 MB held at once at 20 000 resources, on top of the apply's (issue 18)."""
        head = self.model_dump(mode="json", exclude={"resources"})
        pieces = []
        for key in sorted([*head, "resources"]):
            if key == "resources":
                entries = (
                    f"{_compact(address)}:{_compact(self.resources[address].model_dump(mode='json'))}"
                    for address in sorted(self.resources)
                )
                pieces.append(f'"resources":{{{",".join(entries)}}}')
            else:
                pieces.append(f"{_compact(key)}:{_compact(head[key])}")
        return "{" + ",".join(pieces) + "}"

    @classmethod
    def from_json(cls, text: str | bytes) -> Inventory:
        """Parsed and validated in one step by pydantic's own JSON reader (which bounds nesting too, with a
        ValueError): no tree of Python dicts made first and validated after (issue 18: half the time of reading
        an inventory of 5000 resources)."""
        return cls.model_validate_json(text)


class PartsRef(_Model):
    id: str = Field(pattern=rf"^[0-9a-f]{{{TOKEN_HEX}}}$")
    count: int = Field(ge=1, le=MAX_PARTS)
    encoding: Literal["gzip+base64"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of the inventory JSON text (UTF-8), before compression


class PartsPointer(_Model):
    """The head's value when the inventory lives in part records."""

    format_version: int = FORMAT_VERSION
    generation: int = 0
    parts: PartsRef


class AttachmentPointer(_Model):
    """The head's value when an earlier version kept the inventory in an attachment (read, never written)."""

    format_version: int = FORMAT_VERSION
    attachment: str
    generation: int = 0
    attachment_sys_id: str | None = None


class Packed(_Model):
    encoding: Literal["gzip+base64"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of the inventory JSON text (UTF-8), before compression
    data: str


class PackedInventory(_Model):
    """The head's value when the inventory's JSON does not fit a value but compressed does: the parts' encoding,
    held by the head (no part record to write before it)."""

    format_version: int = FORMAT_VERSION
    generation: int = 0
    packed: Packed


HeadValue = Inventory | PackedInventory | PartsPointer | AttachmentPointer


def property_name(stack: str) -> str:
    """The head record's name. The stack name's pattern (no dot) is what makes ``part_prefix`` unique to it."""
    if not STACK_NAME.fullmatch(stack):
        raise ValueError(f"not a stack name: {stack!r}")
    return PROPERTY_PREFIX + stack


def part_prefix(stack: str) -> str:
    return property_name(stack) + "."


def part_name(stack: str, token: str, index: int) -> str:
    return f"{part_prefix(stack)}{token}.{index:04d}"


def parse_part_name(stack: str, name: str) -> tuple[str, int] | None:
    """``(token, index)`` of one of the stack's part records; None for any other name."""
    prefix = part_prefix(stack)
    if not name.startswith(prefix):
        return None
    match = _PART_SUFFIX.fullmatch(name[len(prefix) :])
    return (match.group(1), int(match.group(2))) if match else None


def new_token(taken: Collection[str] = ()) -> str:
    while True:
        token = secrets.token_hex(TOKEN_HEX // 2)
        if token not in taken:
            return token


def parse_head(value: str) -> HeadValue:
    """The head's value: the inventory itself (packed or not: ``unpack``), or a pointer to where it lives.
    ValueError when it is neither."""
    data = loads(value)
    if isinstance(data, dict) and "resources" not in data:
        if "packed" in data:
            return PackedInventory.model_validate(data)
        if "parts" in data:
            return PartsPointer.model_validate(data)
        if "attachment" in data:
            return AttachmentPointer.model_validate(data)
    return Inventory.model_validate(data)


def pack(inventory: Inventory, text: str | None = None) -> tuple[str, str]:
    """The gzip+base64 form of an inventory's JSON text (``text``: that JSON, when made already), and the text's
    sha256. Deterministic (gzip without a timestamp): the same inventory always packs the same. A write packs once
    and hands the result to ``packed_head`` and, when that does not fit, ``encode_parts``."""
    data = (text if text is not None else inventory.to_json()).encode("utf-8")
    blob = base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")
    return blob, hashlib.sha256(data).hexdigest()


def packed_head(inventory: Inventory, packed: tuple[str, str] | None = None) -> str | None:
    """The head's value holding ``inventory`` packed (``packed``: ``pack``'s result, when made already), or None
    when even packed it does not fit a value."""
    blob, digest = packed if packed is not None else pack(inventory)
    if len(blob) > VALUE_LIMIT:
        return None
    value = PackedInventory(
        generation=inventory.generation, packed=Packed(encoding=PARTS_ENCODING, sha256=digest, data=blob)
    ).to_json()
    return value if len(value) <= VALUE_LIMIT else None


def encode_parts(
    inventory: Inventory, token: str, packed: tuple[str, str] | None = None
) -> tuple[PartsPointer, list[str]]:
    """The pointer and the part values of a large inventory (``packed``: ``pack``'s result, when made already).
    Deterministic: the same inventory always makes the same parts."""
    blob, digest = packed if packed is not None else pack(inventory)
    chunks = [blob[start : start + VALUE_LIMIT] for start in range(0, len(blob), VALUE_LIMIT)]
    if len(chunks) > MAX_PARTS:
        raise ValueError(f"the inventory needs {plural(len(chunks), 'part')}, more than {MAX_PARTS}")
    ref = PartsRef(id=token, count=len(chunks), encoding=PARTS_ENCODING, sha256=digest)
    return PartsPointer(generation=inventory.generation, parts=ref), chunks


def unpack(head: PackedInventory) -> Inventory:
    """The inventory a packed head holds. ValueError saying why when it does not make one up."""
    return _unpack(head.packed.data, head.packed.sha256, "its packed data")


def decode_parts(ref: PartsRef, chunks: Sequence[str]) -> Inventory:
    """The inventory from its parts, in index order. ValueError saying why when they do not make it up."""
    return _unpack("".join(chunks), ref.sha256, "its parts")


def _unpack(blob: str, sha256: str, what: str) -> Inventory:
    """The inventory from its gzip+base64 form (``what`` it was read from, for the errors)."""
    try:
        packed = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} are not base64") from None
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    try:
        data = inflater.decompress(packed, MAX_JSON_BYTES + 1)
    except zlib.error:
        raise ValueError(f"{what} are not gzip data") from None
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"it decompresses to more than {MAX_JSON_BYTES} bytes")
    if not inflater.eof:
        raise ValueError(f"{what} end before the gzip data does")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{what} do not match the digest the head records")
    return Inventory.from_json(data)
