"""The inventory's books around an apply: what it records before the first write, and after the last.

Before (``pending_inventory``): every record about to be created, with the sys_id chosen for it, and every field
about to be taken over, with the value it had, so that a run that dies half-way leaves records the next run
recognises as its own (and a binding it can restore). After (``final_inventory``): what each owned record is
now (its sys_mod_count, its file, the password set on it), for the resources this run wrote or confirmed.

Pure: the runner reads the records and writes the inventory (``mtls_config.inventory_store``).
Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence

from mtls_config.compile import Compiled, Task
from mtls_config.desired import Desired
from mtls_config.inventory import Inventory, OwnedRecord, OwnedResource
from mtls_config.live import Live
from mtls_config.resources.common import Attachment, LiveRecord
from mtls_config.resources.registry import kind_named


def pending_inventory(live: Live, compiled: Compiled) -> Inventory:
    inv = live.inventory.model_copy(deep=True)
    inv.generation += 1
    for t in compiled.tasks:
        c = t.change
        if c.action == "delete":
            continue
        kind = kind_named(c.kind)
        entry = inv.resources.get(c.address) or OwnedResource(address=c.address, pending=True)
        if c.action in ("create", "replace") and not kind.takes_over:
            # The record being replaced stays owned until it is gone: a run that stops before deleting it
            # (killed, or the delete refused) must not leave it looking like someone else's.
            current = live.resources.get(c.address)
            replaced = list(current.records.values()) if c.action == "replace" and current is not None else []
            entry.records = [
                OwnedRecord(table=c.table, sys_id=compiled.new_ids[c.address]),
                *(OwnedRecord(table=r.table, sys_id=r.sys_id) for r in replaced),
            ]
            entry.pending = True
            entry.password_digest = None
        elif c.importing or (kind.takes_over and c.action == "create"):
            current = live.resources[c.address]
            entry.records = [
                OwnedRecord(
                    table=rec.table, sys_id=rec.sys_id, part=part, original=kind.originals(rec, live.dictionary)
                )
                for part, rec in sorted(current.records.items())
            ]
        elif kind.takes_over:
            current = live.resources[c.address]
            known = {r.part for r in entry.records}
            for part, rec in sorted(current.records.items()):
                if part not in known:
                    entry.records.append(
                        OwnedRecord(
                            table=rec.table, sys_id=rec.sys_id, part=part, original=kind.originals(rec, live.dictionary)
                        )
                    )
        inv.resources[c.address] = entry
    return inv


def settled_inventory(inventory: Inventory, tasks: Sequence[Task]) -> Inventory:
    """The next generation, without the resources whose deletion was applied."""
    inv = inventory.model_copy(deep=True)
    inv.generation += 1
    for t in tasks:
        if t.change.action == "delete" and t.status == "applied":
            inv.resources.pop(t.change.address, None)
    return inv


def owned_ids(inventory: Inventory) -> dict[str, set[str]]:
    """Every owned record's sys_id, per table: what the runner re-reads before ``final_inventory``."""
    by_table: dict[str, set[str]] = {}
    for entry in inventory.resources.values():
        for rec in entry.records:
            by_table.setdefault(rec.table, set()).add(rec.sys_id)
    return by_table


def final_inventory(
    inv: Inventory,
    tasks: Sequence[Task],
    desired: Desired,
    live: Live,
    planned: Collection[str],
    rows: Mapping[str, LiveRecord],
    attachments: Mapping[str, Sequence[Attachment]],
) -> tuple[Inventory, list[str]]:
    """The settled inventory (``inv``, changed in place) with what the owned records are now, given ``rows`` (every
    owned record re-read, by sys_id) and their ``attachments`` (by record). Also: the addresses an earlier run
    wrote and died before confirming, which this one confirms."""
    status = {t.change.address: t for t in tasks}
    by_address = {d.address: d for d in reversed(desired.resources)}
    confirmed: list[str] = []
    for address, entry in list(inv.resources.items()):
        task = status.get(address)
        d = by_address.get(address)
        if d is not None and address not in planned:
            # Left out by --target/--exclude: this run neither wrote nor compared it, so it must not vouch
            # for its content, password or sys_mod_count (that would hide its pending change for good).
            continue
        for owned_rec in entry.records:
            seen = rows.get(owned_rec.sys_id)
            owned_rec.mod_count = seen.mod_count if seen is not None else None
        if all(rows.get(r.sys_id) is None for r in entry.records):
            # Pending and never begun (its name claimed by another stack, or skipped): nothing of it to recover.
            if task is None or task.status == "applied" or not entry.pending or not task.started:
                inv.resources.pop(address)
            continue
        ok = task is None or task.status == "applied"
        if ok:
            entry.records = [r for r in entry.records if r.sys_id in rows]  # e.g. the record a replace deleted
            if entry.pending and task is None:
                confirmed.append(address)  # written by an earlier run that died before it could journal it
            entry.pending = False
        current = live.resources.get(address)
        if ok and d is not None and current is not None:
            kept = kind_named(d.kind).kept_parts(d, current)
            if kept is not None:
                entry.records = [r for r in entry.records if r.part in kept]
        if d is not None and d.content is not None and ok:
            primary = entry.records[0].sys_id if entry.records else ""
            atts = attachments.get(primary, [])
            if len(atts) == 1:
                entry.content_attachment = atts[0].sys_id
                entry.content_size = atts[0].size
                entry.content_digest = d.content.digest
        kind = kind_named(d.kind) if d is not None else None
        if d is not None and kind is not None and d.password is not None and kind.password_field is not None and ok:
            changed = task is None or task.change.changed(kind.password_field)
            if changed or entry.password_digest is None:
                entry.password_digest = d.password.salted_digest(inv.salt)
            primary_row = rows.get(entry.records[0].sys_id) if entry.records else None
            opaque = primary_row.get(kind.opaque_column) if primary_row is not None and kind.opaque_column else ""
            entry.password_opaque = hashlib.sha256(opaque.encode()).hexdigest() if opaque else None
    return inv, confirmed
