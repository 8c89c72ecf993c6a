"""Where a stack's inventory lives on the instance, and how it is read and written.

``mtls_config.inventory`` is the inventory's data model and its encodings; this module is its storage in
``sys_properties``: the head record ``mtls_config.inventory.<stack>`` (the JSON itself when it fits a value,
else a pointer) and, for a large inventory, the part records under the prefix ``mtls_config.inventory.<stack>.``.
One query for the head's name and that prefix returns both, so a plan reads the inventory in one round trip.
The reader and the writer of that format live side by side so that they cannot drift apart.

Writes keep one rule: at every moment the head names parts that exist. New parts are written first, then the
head is pointed at them, then every other part of the stack is deleted (the previous write's, and those of a
run that died before it moved the head). Part records are written and deleted through the Batch API, so a
write costs a fixed number of round trips whatever the inventory's size.

Never imports the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtls_config.concurrency import gather, gather_all
from mtls_config.errors import BadResponse, ConflictError, InstanceError, MtlsConfigError, RecordNotFound
from mtls_config.instance import Instance
from mtls_config.inventory import (
    ATTACHMENT_NAME,
    VALUE_LIMIT,
    AttachmentPointer,
    Inventory,
    PackedInventory,
    PartsPointer,
    decode_parts,
    encode_parts,
    new_token,
    pack,
    packed_head,
    parse_head,
    parse_part_name,
    part_name,
    part_prefix,
    property_name,
    unpack,
)
from mtls_config.operations import BatchableWrite, Create, Delete, WriteResult
from mtls_config.reads import attachment_of, live_record, read_in
from mtls_config.resources.common import Attachment, LiveRecord
from mtls_config.wording import plural

TABLE = "sys_properties"
PROPERTY_FIELDS = ("sys_id", "name", "value", "sys_mod_count")
# One page holds the head and every part the largest inventory can have: the read is one request.
READ_PAGE_SIZE = 10000
# KB1000746: a property written with ignore_cache=false flushes every server-side cache of the instance
# (minutes of slowness); ours change on every apply. is_private keeps them out of update sets: an inventory
# describes this instance's records and must never be carried to another one.
RECORD_FLAGS = {"ignore_cache": "true", "is_private": "true"}
DAMAGED_HINT = "restore it, or delete the property and adopt the records again with 'mtls-config import'"


@dataclass(frozen=True)
class _Part:
    sys_id: str
    name: str
    token: str
    index: int
    value: str = field(default="", repr=False)


def stack_query(stack: str) -> str:
    """The head and every part of one stack (and nothing of ``prod-eu`` for ``prod``: the prefix ends in a dot)."""
    return f"name={property_name(stack)}^ORnameSTARTSWITH{part_prefix(stack)}"


def _split(stack: str, rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[_Part]]:
    """The head rows and the part rows among a prefix query's answer. Names are checked here, exactly: the
    instance's STARTSWITH ignores case and may treat '_' as a wildcard."""
    head = property_name(stack)
    heads: list[dict[str, Any]] = []
    parts: list[_Part] = []
    for row in rows:
        name = str(row.get("name", ""))
        if name == head:
            heads.append(row)
            continue
        parsed = parse_part_name(stack, name)
        if parsed is not None and isinstance(row.get("sys_id"), str):
            value = row.get("value")
            parts.append(_Part(row["sys_id"], name, parsed[0], parsed[1], value if isinstance(value, str) else ""))
    return heads, parts


# -- reading --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A stack's inventory as read: the inventory (a fresh, empty one when the stack owns nothing yet), its head
    record, the attachment it was read from when an earlier version's format still holds it, and the part records
    the head does not name (a write that was stopped before it removed them)."""

    inventory: Inventory
    record: LiveRecord | None = None
    attachment: Attachment | None = None
    leftover_parts: tuple[str, ...] = ()  # sys_ids


async def read_inventory(client: Instance, stack: str) -> tuple[Inventory, LiveRecord | None, Attachment | None]:
    """The stack's inventory, its head record and the attachment it was read from (see ``Stored``)."""
    stored = await read_stored(client, stack)
    return stored.inventory, stored.record, stored.attachment


async def read_stored(client: Instance, stack: str) -> Stored:
    """The stack's inventory and what a tidy-up would remove: one query."""
    rows = await client.list(TABLE, query=stack_query(stack), fields=list(PROPERTY_FIELDS), page_size=READ_PAGE_SIZE)
    heads, parts = _split(stack, rows)
    if not heads:
        # Parts without a head: a first write that died before its head existed. Nothing is owned yet.
        return Stored(Inventory(stack=stack), leftover_parts=tuple(p.sys_id for p in parts))
    record = live_record(TABLE, heads[0])
    try:
        head = parse_head(record.get("value"))
    except ValueError as exc:
        raise BadResponse(f"the inventory property {property_name(stack)} is not valid JSON ({exc})") from None
    leftover = tuple(p.sys_id for p in parts if not isinstance(head, PartsPointer) or p.token != head.parts.id)
    if isinstance(head, Inventory):
        return Stored(head, record, leftover_parts=leftover)
    if isinstance(head, PackedInventory):
        return Stored(_unpacked(stack, head), record, leftover_parts=leftover)
    if isinstance(head, PartsPointer):
        return Stored(_assemble(stack, head, parts), record, leftover_parts=leftover)
    inventory, record, attachment = await _read_attachment(client, stack, record, head)
    return Stored(inventory, record, attachment, leftover)


def _unpacked(stack: str, head: PackedInventory) -> Inventory:
    try:
        return unpack(head)
    except ValueError as exc:
        raise MtlsConfigError(
            f"the inventory of stack '{stack}' is damaged: {exc} (held packed by its head)", hint=DAMAGED_HINT
        ) from None


def _assemble(stack: str, pointer: PartsPointer, parts: Sequence[_Part]) -> Inventory:
    ref = pointer.parts
    mine = {p.index: p.value for p in parts if p.token == ref.id}  # other tokens: stale, or a writer's unfinished
    missing = [i for i in range(ref.count) if i not in mine]
    if missing:
        raise MtlsConfigError(
            f"the inventory of stack '{stack}' points to parts that are missing "
            f"({len(missing)} of {ref.count}, e.g. {part_name(stack, ref.id, missing[0])})",
            hint=DAMAGED_HINT,
        )
    try:
        return decode_parts(ref, [mine[i] for i in range(ref.count)])
    except ValueError as exc:
        raise MtlsConfigError(
            f"the inventory of stack '{stack}' is damaged: {exc} (token {ref.id}, {plural(ref.count, 'part')})",
            hint=DAMAGED_HINT,
        ) from None


async def _read_attachment(
    client: Instance, stack: str, record: LiveRecord, pointer: AttachmentPointer
) -> tuple[Inventory, LiveRecord, Attachment]:
    """An earlier version's large inventory: a JSON attachment on the head (one more round trip)."""
    direct = pointer.attachment_sys_id
    data: bytes | None = None
    if direct:
        # The pointer names the file: one round trip. Listing is the fallback (older pointers, a lost file).
        try:
            data = await client.download_attachment(direct)
        except RecordNotFound:
            data = None
    if data is not None and direct:
        found = Attachment(sys_id=direct, file_name=ATTACHMENT_NAME, size=len(data), content_type="application/json")
    else:
        attachments = [attachment_of(a) for a in await client.list_attachments(TABLE, [record.sys_id])]
        named = [a for a in attachments if a.file_name == ATTACHMENT_NAME]
        if not named:
            raise MtlsConfigError(
                f"the inventory of stack '{stack}' points to an attachment that is missing", hint=DAMAGED_HINT
            )
        found = named[-1]
        data = await client.download_attachment(found.sys_id)
    try:
        inventory = Inventory.from_json(data.decode("utf-8"))
    except ValueError as exc:
        raise BadResponse(f"the inventory attachment of stack '{stack}' is not valid JSON ({exc})") from None
    return inventory, record, found


# -- writing --------------------------------------------------------------------------------------------


async def store_inventory(client: Instance, stack: str, record: LiveRecord | None, inventory: Inventory) -> LiveRecord:
    """Write a stack's inventory; refuse when another writer moved it since ``record`` was read. One step after
    another; apply runs the same steps beside its other requests (``list_stored``, ``prepare``, ``write_head``,
    ``clear``)."""
    listing = await list_stored(client, stack, record)
    prepared = await prepare(client, stack, inventory, listing)
    record = await write_head(client, stack, record, listing, prepared)
    await clear(client, [listing], keep=prepared.tokens)
    return record


@dataclass(frozen=True)
class Listing:
    """What a write replaces: the head rows (for the conflict check), every part record, an earlier version's
    attachment (listed only when the head still points to one)."""

    heads: list[dict[str, Any]]
    parts: list[_Part]
    legacy: list[Attachment]


@dataclass(frozen=True)
class Prepared:
    """An inventory ready to point the head at: its text inline, or a pointer to the parts already created."""

    value: str
    tokens: frozenset[str]  # the part tokens it uses (none inline)
    part_ids: frozenset[str] = frozenset()  # the sys_ids of its parts


async def list_stored(client: Instance, stack: str, record: LiveRecord | None) -> Listing:
    """The conflict check's read and the listing of the records a write replaces: one query (and the earlier
    version's attachments alongside, only when the head still points to one)."""
    rows, legacy = await gather(
        client.list(
            TABLE, query=stack_query(stack), fields=["sys_id", "name", "sys_mod_count"], page_size=READ_PAGE_SIZE
        ),
        _legacy_attachments(client, record),
    )
    heads, parts = _split(stack, rows)
    return Listing(heads, parts, legacy)


async def prepare(
    client: Instance,
    stack: str,
    inventory: Inventory,
    listing: Listing | None = None,
    *,
    making_parts: Callable[[], None] | None = None,
) -> Prepared:
    """The head's value for ``inventory``: inline when it fits (as JSON, or packed), else its parts are created
    first (unreferenced until the head points at them, so they may be made before the conflict check; ``listing``
    None: before the listing, with a fresh random token that ``write_head`` then checks against it).
    ``making_parts`` is called just before the parts are sent (none are for an inventory that fits)."""
    text = inventory.to_json()
    if len(text) <= VALUE_LIMIT:
        return Prepared(text, frozenset())  # inline, readable by an admin; every part is then left over
    packed = pack(inventory, text)
    head = packed_head(inventory, packed)
    if head is not None:
        return Prepared(head, frozenset())  # inline too: no part record to write before the head
    if making_parts is not None:
        making_parts()
    taken = {p.token for p in listing.parts} if listing is not None else set()
    pointer, chunks = encode_parts(inventory, new_token(taken), packed)
    created = await _create_parts(client, stack, pointer, chunks)
    return Prepared(pointer.to_json(), frozenset({pointer.parts.id}), frozenset(created))


def check_listing(stack: str, record: LiveRecord | None, listing: Listing, prepared: Prepared | None = None) -> None:
    """Refuse to go on when another writer moved the inventory since ``record`` was read, or when the parts of
    ``prepared``, made before the listing, took a token already in use (a 128-bit random clash)."""
    _check_unmoved(stack, record, listing.heads)
    if prepared is not None and any(
        p.token in prepared.tokens and p.sys_id not in prepared.part_ids for p in listing.parts
    ):
        raise ConflictError(f"the inventory of stack '{stack}' holds parts of the same token; run apply again")


async def discard(client: Instance, prepared: Prepared) -> None:
    """Delete the parts of an inventory no head will point at (a write refused after they were made)."""
    await _delete_parts(client, sorted(prepared.part_ids))


async def write_head(
    client: Instance, stack: str, record: LiveRecord | None, listing: Listing, prepared: Prepared
) -> LiveRecord:
    """Point the head at a prepared inventory, after checking nobody moved it since ``record`` was read."""
    check_listing(stack, record, listing, prepared)
    return await _write_head(client, stack, record, prepared.value)


def _unnamed(listings: Sequence[Listing], keep: Collection[str]) -> tuple[set[str], set[str]]:
    """The sys_ids of the listed parts but those of the tokens in ``keep``, and of an earlier version's files."""
    parts = {p.sys_id for listing in listings for p in listing.parts if p.token not in keep}
    legacy = {a.sys_id for listing in listings for a in listing.legacy}
    return parts, legacy


def nothing_to_clear(listings: Sequence[Listing], keep: Collection[str] = ()) -> bool:
    """Whether ``clear`` would send nothing."""
    parts, legacy = _unnamed(listings, keep)
    return not parts and not legacy


async def clear(client: Instance, listings: Sequence[Listing], keep: Collection[str] = ()) -> None:
    """Delete what the head no longer names: the listed parts (a previous write's, a dead run's) but those of
    the tokens in ``keep``, and an earlier version's file."""
    parts, legacy = _unnamed(listings, keep)
    await gather(
        _delete_parts(client, sorted(parts)),
        gather_all(client.delete_attachment(sys_id, missing_ok=True) for sys_id in sorted(legacy)),
    )


async def remove_leftover_parts(client: Instance, stack: str, record: LiveRecord | None) -> int:
    """Delete the part records the head does not name (a write stopped before it removed them), checking first
    that the head is as ``record`` was read (not moved by another run meanwhile). How many were removed."""
    rows = await client.list(
        TABLE, query=stack_query(stack), fields=["sys_id", "name", "value", "sys_mod_count"], page_size=READ_PAGE_SIZE
    )
    heads, parts = _split(stack, rows)
    _check_unmoved(stack, record, heads)
    try:
        head = parse_head(live_record(TABLE, heads[0]).get("value")) if heads else None
    except ValueError:
        return 0  # a damaged head: which parts it names cannot be told, so none is removed
    named = head.parts.id if isinstance(head, PartsPointer) else None
    leftover = [p.sys_id for p in parts if p.token != named]
    await _delete_parts(client, leftover)
    return len(leftover)


def _check_unmoved(stack: str, record: LiveRecord | None, heads: Sequence[dict[str, Any]]) -> None:
    if record is None and heads:
        raise ConflictError(f"another run created the inventory of stack '{stack}' meanwhile")
    if record is not None:
        if not heads:
            raise ConflictError(f"the inventory of stack '{stack}' was deleted meanwhile")
        if live_record(TABLE, heads[0]).mod_count != record.mod_count:
            raise ConflictError(
                f"the inventory of stack '{stack}' was changed by another run meanwhile",
                hint="run 'mtls-config plan' again",
            )


async def _legacy_attachments(client: Instance, record: LiveRecord | None) -> list[Attachment]:
    """The attachments an earlier version's head points into (none for any other head: no request)."""
    if record is None:
        return []
    try:
        head = parse_head(record.get("value"))
    except ValueError:
        return []
    if not isinstance(head, AttachmentPointer):
        return []
    rows = await client.list_attachments(TABLE, [record.sys_id])
    return [a for a in map(attachment_of, rows) if a.file_name == ATTACHMENT_NAME]


async def _write_head(client: Instance, stack: str, record: LiveRecord | None, value: str) -> LiveRecord:
    if record is None:
        values = {
            "name": property_name(stack),
            "value": value,
            "type": "string",
            "description": f"mtls-config inventory of stack {stack}",
            **RECORD_FLAGS,
        }
        row = await client.create(TABLE, values, sys_id=uuid.uuid4().hex)
    else:
        row = await client.update(TABLE, record.sys_id, {"value": value, **RECORD_FLAGS})
    _check_stored(stack, row.get("value"), value)
    return live_record(TABLE, row)


def _check_stored(stack: str, stored: Any, sent: str) -> None:
    """An instance whose value column is shorter than we assume cuts values short without a word: say so
    before anything points at a cut value."""
    if isinstance(stored, str) and stored != sent:
        raise MtlsConfigError(
            f"the instance stored {len(stored)} of the {plural(len(sent), 'character')} written to an inventory record "
            f"of stack '{stack}'",
            hint=f"sys_properties.value must hold at least {VALUE_LIMIT} characters on this instance",
        )


async def _create_parts(client: Instance, stack: str, pointer: PartsPointer, chunks: Sequence[str]) -> list[str]:
    """Create the part records: one Batch API call (the client sends its groups of 50 at once). Whatever the
    batch did not confirm is looked up before it is created again, one by one with the client's idempotent
    creates: a batch whose answer was lost may have created them."""
    wanted = {
        uuid.uuid4().hex: {
            "name": part_name(stack, pointer.parts.id, index),
            "value": chunk,
            "type": "string",
            "description": f"mtls-config inventory of stack {stack}, part {index + 1} of {len(chunks)}",
            **RECORD_FLAGS,
        }
        for index, chunk in enumerate(chunks)
    }
    creates = [Create(TABLE, sys_id, values, fields=("sys_id", "value")) for sys_id, values in wanted.items()]
    stored: dict[str, Any] = {
        op.sys_id: result.record.get("value")
        for op, result in zip(creates, await _batch(client, creates), strict=True)
        if result is not None and result.record is not None
    }
    unsure = [sys_id for sys_id in wanted if sys_id not in stored]
    if unsure:
        for found in await read_in(client, TABLE, "sys_id", unsure, ["sys_id", "value"]):
            stored[found.sys_id] = found.get("value")
        rows = await gather_all(
            client.create(TABLE, wanted[sys_id], sys_id=sys_id) for sys_id in unsure if sys_id not in stored
        )
        stored.update({str(row.get("sys_id")): row.get("value") for row in rows})
    for sys_id, values in wanted.items():
        _check_stored(stack, stored.get(sys_id), values["value"])
    return list(wanted)


async def _delete_parts(client: Instance, sys_ids: Sequence[str]) -> None:
    """Delete part records: one Batch API call; what it did not confirm is deleted one by one (missing is fine)."""
    if not sys_ids:
        return
    deletes = [Delete(TABLE, s) for s in sys_ids]
    done = {op.sys_id for op, result in zip(deletes, await _batch(client, deletes), strict=True) if result is not None}
    await gather_all(client.delete(TABLE, s, missing_ok=True) for s in sys_ids if s not in done)


async def _batch(client: Instance, ops: Sequence[BatchableWrite]) -> list[WriteResult | None]:
    """The batch's results; none confirmed when it failed as a whole (the callers then check and redo one by one)."""
    if not ops:
        return []
    try:
        return list(await client.write_batch(ops))
    except InstanceError:
        return [None] * len(ops)
