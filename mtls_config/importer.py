"""Adopt an existing hand-made set-up: write specs for the instance's live mTLS records and own them.

Lists what every kind asks for (keystores, trust-store certificates, protocol profiles, messages with mutual
auth enabled), lets each kind choose its records (and the records they bring along: a profile's keystore),
downloads their files, and lets each kind write its spec documents (with secret references for passwords, never
values), files and inventory entries, so that the written specs plan as no-op right away. Passwords cannot be
read back from the instance: they are recorded as "as found" and set again only when the spec's value changes
or the record is edited elsewhere. ``import_to`` is the whole procedure: files written, inventory stored under
the stack's lock.

Never imports the emulator or the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mtls_config.access import check_roles, needs, read_grants
from mtls_config.claims import address_key, claim_key, conflict, give_up_claims, read_claims, take_claims
from mtls_config.concurrency import gather, gather_all
from mtls_config.errors import Interrupted, PlanError
from mtls_config.files import SPEC, write_private
from mtls_config.instance import Instance
from mtls_config.inventory import Inventory
from mtls_config.inventory_store import read_inventory, store_inventory
from mtls_config.lock import stack_lock
from mtls_config.observe import read_dictionary
from mtls_config.reads import attachments_by_record, live_record
from mtls_config.resources.common import LiveRecord
from mtls_config.resources.importing import ImportContext
from mtls_config.resources.kind import ImportRead, Kind
from mtls_config.resources.registry import KINDS
from mtls_config.wording import plural

HEADER = "# Written by 'mtls-config import'. Passwords are secret references: set the variables before planning.\n"
# The most one spec file written holds: half the loader's cap (files.SPEC), room left for a person's edits.
FILE_BUDGET = SPEC.cap // 2


@dataclass
class ImportResult:
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    inventory: Inventory | None = None
    inventory_record: LiveRecord | None = None
    imported: list[str] = field(default_factory=list)  # addresses
    skipped: list[str] = field(default_factory=list)  # why some records were left out
    variables: list[str] = field(default_factory=list)  # environment variables the written specs read secrets from


async def import_live(client: Instance, stack: str, *, patterns: Sequence[str] = ()) -> ImportResult:
    # First the account's roles (a user without them would list empty tables and import nothing, silently), the
    # inventory and the columns of every table import lists: which column says "mutual auth is on" is the
    # instance's (a query on a column it lacks would return every record). And whose each name is (claims).
    tables = sorted({table for kind in KINDS for table in kind.reads()})
    grants, (inventory, inv_record, _), dictionary, claims = await gather(
        read_grants(client), read_inventory(client, stack), read_dictionary(client, tables), read_claims(client, stack)
    )
    check_roles(grants, needs(tables))
    owned_ids = {r.sys_id for entry in inventory.resources.values() for r in entry.records}
    reads: list[ImportRead] = list(dict.fromkeys(read for kind in KINDS for read in kind.import_reads(dictionary)))
    listed = await gather_all(
        client.list(read.table, query=read.query, fields=list(read.columns), page_size=10000) for read in reads
    )
    listings = {read: [live_record(read.table, row) for row in rows] for read, rows in zip(reads, listed, strict=True)}
    ctx = ImportContext(patterns, owned_ids, listings, dictionary=dictionary)

    def take(kind: Kind, record: LiveRecord) -> bool:
        """Select a record, unless its name belongs to another stack: that one is never adopted here."""
        key = claim_key(kind.name, record.get(kind.natural_key)) if not kind.takes_over else None
        other = claims.held_by_others(key) if key is not None else None
        if key is not None and other is not None:
            ctx.skip(kind, (key.name,), f"{kind.address(key.name)}: {conflict(key, other, stack)[0]}")
            return False
        ctx.select(record)
        return True

    chosen: list[tuple[int, LiveRecord]] = []
    for position, kind in enumerate(KINDS):
        for record in kind.import_select(ctx):
            if take(kind, record):
                chosen.append((position, record))
    for position, record in chosen:
        for pulled in KINDS[position].import_pulls(record, ctx):
            take(_kind_of_table(pulled.table), pulled)

    await _fetch_files(client, ctx)
    for kind in KINDS:
        kind.import_records(ctx)

    result = ImportResult(files=ctx.files, inventory_record=inv_record, skipped=ctx.skipped())
    for kind in KINDS:
        for name, text in spec_files(kind.import_group, ctx.docs.get(kind.import_group, [])):
            result.files[name] = text.encode()
    updated = inventory.model_copy(deep=True)
    updated.resources.update(ctx.entries)
    result.inventory = updated
    result.imported = sorted(ctx.entries)
    result.variables = sorted(ctx.variables)
    return result


def spec_files(group: str, docs: Sequence[object], budget: int = FILE_BUDGET) -> list[tuple[str, str]]:
    """The spec files of one group of documents: ``<group>.yaml``, then ``<group>-2.yaml``, ``-3`` ... when the
    documents take more than ``budget`` bytes, so that every file the tool writes its own loader reads (a spec
    file may be at most 1 MiB)."""
    files: list[str] = []
    chunk: list[str] = []
    size = len(HEADER.encode())
    for doc in docs:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, explicit_start=True)
        length = len(text.encode())
        if chunk and size + length > budget:
            files.append("".join([HEADER, *chunk]))
            chunk, size = [], len(HEADER.encode())
        chunk.append(text)
        size += length
    if chunk:
        files.append("".join([HEADER, *chunk]))
    return [(f"{group}.yaml" if n == 1 else f"{group}-{n}.yaml", text) for n, text in enumerate(files, 1)]


async def _fetch_files(client: Instance, ctx: ImportContext) -> None:
    """The attachments of the chosen records that carry files, and the one file of each that has exactly one."""
    for table in dict.fromkeys(k.attachment_table for k in KINDS if k.attachment_table is not None):
        ids = sorted(ctx.selected.get(table, {}))
        if not ids:
            continue
        ctx.attachments.update(attachments_by_record(await client.list_attachments(table, ids)))
    singles = [(sys_id, atts[0]) for sys_id, atts in ctx.attachments.items() if len(atts) == 1]
    contents = await gather_all(client.download_attachment(a.sys_id) for _, a in singles)
    for (sys_id, attachment), data in zip(singles, contents, strict=True):
        ctx.downloads[sys_id] = (attachment, data)


async def import_to(
    client: Instance,
    stack: str,
    out: Path,
    *,
    patterns: Sequence[str] = (),
    force: bool = False,
    notify: Callable[[str], None] | None = None,
) -> ImportResult:
    """Import, write the specs and files under ``out`` and take ownership: the whole 'import' command. Refuses to
    overwrite files unless ``force``; keystore files are written owner-only. ``notify`` hears what a person should
    know on the way (a dead run's lock taken over)."""
    result = await import_live(client, stack, patterns=patterns)
    existing = [p for p in result.files if (out / p).exists()]
    if existing and not force:
        raise PlanError(
            f"{out} already holds {plural(len(existing), 'file')} that import would write (e.g. {existing[0]})",
            hint="choose another --out, or pass --force to overwrite",
        )
    if not result.imported or result.inventory is None:
        _write_files(out, result)
        return result
    wanted = {key: address for address in result.imported if (key := address_key(address)) is not None}
    doing = "before claiming the names of the imported records"
    try:
        async with stack_lock(client, stack, notify=notify):  # an apply rewriting the inventory would lose it
            try:
                doing = "while claiming the names of the imported records"
                refused = await take_claims(client, stack, wanted)
                if refused:  # another stack took names meanwhile: adopt nothing rather than part of a set-up
                    await give_up_claims(client, {k.sys_id for k in wanted if k not in refused})
                    key, other = min(refused.items())
                    raise PlanError(
                        f"could not import: {len(refused)} of the names are claimed by another stack meanwhile "
                        f"(e.g. {conflict(key, other, stack)[0]}); nothing was written",
                        hint="run 'mtls-config plan' to see whose they are, then import again",
                    )
                _write_files(out, result)
                doing = "while recording the imported records in the stack's inventory"
                await store_inventory(client, stack, result.inventory_record, result.inventory)
            except asyncio.CancelledError:
                raise _interrupted(out, doing) from None
    except asyncio.CancelledError:
        raise _interrupted(out, doing) from None
    return result


def _write_files(out: Path, result: ImportResult) -> None:
    for rel, data in sorted(result.files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix not in (".yaml", ".yml"):
            # Keystore files hold private keys: owner-only from their creation, as 'keystore assemble' writes them.
            write_private(path, data)
        else:
            path.write_bytes(data)


def _kind_of_table(table: str) -> Kind:
    return next(k for k in KINDS if k.table == table)


def _interrupted(out: Path, when: str) -> Interrupted:
    """A signal stopped the import once its files were written (``Interrupted`` says so; the cancellation is
    handled here)."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    written = "the specs and files were written to" if "recording" in when else "nothing was written to"
    error = Interrupted(f"import stopped {when}; {written} {out}")
    error.stage = when
    return error
