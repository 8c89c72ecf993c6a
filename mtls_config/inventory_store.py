"""Where a stack's inventory lives on the instance, and how it is read and written.

``mtls_config.inventory`` is the inventory's data model; this module is its storage: one ``sys_properties``
record per stack holding the JSON, or (once it outgrows a property value) a pointer to a JSON attachment on
that record. The reader and the writer of that format live side by side so that they cannot drift apart.

Never imports the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

import uuid

from mtls_config.concurrency import gather, gather_all
from mtls_config.errors import BadResponse, ConflictError, MtlsConfigError, RecordNotFound
from mtls_config.instance import Instance
from mtls_config.inventory import (
    ATTACHMENT_NAME,
    VALUE_LIMIT,
    Inventory,
    parse_value,
    pointer_value,
    property_name,
)
from mtls_config.reads import attachment_of, list_attachments, live_record
from mtls_config.resources.common import Attachment, LiveRecord

PROPERTY_FIELDS = ("sys_id", "name", "value", "sys_mod_count")


async def read_inventory(client: Instance, stack: str) -> tuple[Inventory, LiveRecord | None, Attachment | None]:
    """The stack's inventory (a fresh, empty one when the stack owns nothing yet)."""
    rows = await client.list(
        "sys_properties", query=f"name={property_name(stack)}", fields=list(PROPERTY_FIELDS), page_size=10
    )
    if not rows:
        return Inventory(stack=stack), None, None
    record = live_record("sys_properties", rows[0])
    try:
        inventory, _pointer = parse_value(record.get("value"))
    except ValueError as exc:
        raise BadResponse(f"the inventory property {property_name(stack)} is not valid JSON ({exc})") from None
    if inventory is not None:
        return inventory, record, None
    direct = _pointer.get("attachment_sys_id") if _pointer else None
    data: bytes | None = None
    if isinstance(direct, str) and direct:
        # The pointer names the file: one round trip. Listing is the fallback (older pointers, a lost file).
        try:
            data = await client.download_attachment(direct)
        except RecordNotFound:
            data = None
    if data is not None:
        found = Attachment(
            sys_id=str(direct), file_name=ATTACHMENT_NAME, size=len(data), content_type="application/json"
        )
    else:
        attachments = [attachment_of(a) for a in await client.list_attachments("sys_properties", [record.sys_id])]
        named = [a for a in attachments if a.file_name == ATTACHMENT_NAME]
        if not named:
            raise MtlsConfigError(
                f"the inventory of stack '{stack}' points to an attachment that is missing",
                hint="restore it, or delete the property and adopt the records again with 'mtls-config import'",
            )
        found = named[-1]
        data = await client.download_attachment(found.sys_id)
    try:
        inventory = Inventory.from_json(data.decode("utf-8"))
    except ValueError as exc:
        raise BadResponse(f"the inventory attachment of stack '{stack}' is not valid JSON ({exc})") from None
    return inventory, record, found


async def store_inventory(client: Instance, stack: str, record: LiveRecord | None, inventory: Inventory) -> LiveRecord:
    """Write a stack's inventory; refuse when another writer moved it since ``record`` was read."""
    name = property_name(stack)
    text = inventory.to_json()
    small = len(text) <= VALUE_LIMIT
    # The files to replace are listed with the conflict check, not after it: one round trip fewer.
    rows, old = await gather(
        client.list("sys_properties", query=f"name={name}", fields=["sys_id", "sys_mod_count"]),
        list_attachments(client, "sys_properties", [record.sys_id] if record is not None else []),
    )
    if record is None and rows:
        raise ConflictError(f"another run created the inventory of stack '{stack}' meanwhile")
    if record is not None:
        if not rows:
            raise ConflictError(f"the inventory of stack '{stack}' was deleted meanwhile")
        if live_record("sys_properties", rows[0]).mod_count != record.mod_count:
            raise ConflictError(
                f"the inventory of stack '{stack}' was changed by another run meanwhile",
                hint="run 'mtls-config plan' again",
            )
    if record is None:
        # A large inventory's file needs the record first; until the pointer names the uploaded file, the
        # record holds an empty inventory (nothing was written yet), never a pointer to a missing file.
        values = {
            "name": name,
            "value": text if small else Inventory(stack=stack).to_json(),
            "type": "string",
            "description": f"mtls-config inventory of stack {stack}",
        }
        record = live_record("sys_properties", await client.create("sys_properties", values, sys_id=uuid.uuid4().hex))
    elif small:
        record = live_record("sys_properties", await client.update("sys_properties", record.sys_id, {"value": text}))
        # shrunk back inline: the file of a bigger past is no longer named by anything
        await gather_all(client.delete_attachment(str(row.get("sys_id")), missing_ok=True) for row in old)
    if not small:
        # Upload first, then point the property at the new file by sys_id (a reader fetches it in one round
        # trip), then drop the old files: at every moment the property names a file that exists.
        meta = await client.upload_attachment(
            "sys_properties",
            record.sys_id,
            ATTACHMENT_NAME,
            text.encode(),
            "application/json",
            replacing=[str(row.get("sys_id")) for row in old],
        )
        pointer = pointer_value(inventory.generation, str(meta.get("sys_id") or "") or None)
        record = live_record("sys_properties", await client.update("sys_properties", record.sys_id, {"value": pointer}))
        await gather_all(client.delete_attachment(str(row.get("sys_id")), missing_ok=True) for row in old)
    return record
