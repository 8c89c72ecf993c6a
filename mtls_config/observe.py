"""Read the instance's live state for a stack, in one round trip when nothing was deleted from the specs.

Reading. Round 1 (concurrent, ``read_first``): the account's roles (``mtls_config.access``: a user without them
reads empty tables, so missing roles stop the run before anything is compared); the data dictionary of the tables
the stack touches and of the tables they are known to extend (``mtls_config.dictionary``; a parent it did not
expect is read in a follow-up); the stack's inventory; per table, one query for every natural key
the kinds look up (``nameIN…``, chunked by the client for URL length, paginated with large pages, only the columns
the kinds read, or every column of a table whose columns are known only by label until the dictionary names them:
an HTTP connection's); what the kinds of the specs list (``Kind.listings``: the ``glide.httpclient.protocol.*``
properties of protocol profiles); the metadata of every attachment on the tables whose records carry files. It
needs only the specs' names, so a plan starts it before building the desired state. Round 2, only when needed:
records the inventory owns that the specs no longer name, and records that references point to outside what was
read (those of an ``on_demand`` reference only when the specs look records of its table up themselves).
The number of requests does not grow with the number of resources except by pagination and chunking (and by one
query per name holding a comma, which an IN list cannot carry).

Indexing. The answers become an ``Index`` (rows by table and natural key, names of referenced records,
attachments by record) and every kind finds its resources' records in it (``Kind.match``); owned resources the
specs no longer name get their live view from the inventory's sys_ids.

The files' digests are not here: the content checks (``mtls_config.contents``) need the desired side's
passwords, which observing never sees.

Only reads. Never imports the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from mtls_config.access import Grants, check_roles, needs, read_grants
from mtls_config.claims import Claims, read_claims
from mtls_config.concurrency import gather, gather_all
from mtls_config.desired import Desired
from mtls_config.dictionary import (
    DICTIONARY_FIELDS,
    DICTIONARY_QUERY,
    DICTIONARY_TABLE,
    MAX_DEPTH,
    OBJECT_FIELDS,
    OBJECTS_TABLE,
    Dictionary,
    dictionary_of,
    tables_to_read,
)
from mtls_config.errors import PermissionDenied
from mtls_config.instance import Instance
from mtls_config.inventory import Inventory
from mtls_config.inventory_store import read_stored
from mtls_config.live import Live
from mtls_config.reads import attachments_by_record, live_record, read_in
from mtls_config.resources import registry
from mtls_config.resources.common import Attachment, LiveRecord, LiveResource
from mtls_config.resources.kind import Ambiguous, ImportRead, Index, Lookup, Unresolved
from mtls_config.spec.loader import SpecSet

if TYPE_CHECKING:
    from mtls_config.spec.models import AnyResource

T = TypeVar("T")

# Columns read of a table no kind reads (an owned record's table, known from an inventory only).
BARE_COLUMNS = ("sys_id", "sys_mod_count")


@dataclass(frozen=True)
class NaturalKeys:
    """What the first round of reads looks records up by. The specs alone say it, so the reads can go out
    before the desired state is built (files read, keystores parsed, secrets resolved)."""

    # Not sorted: two sets of 20 000 are compared (the specs' and the desired state's) without sorting either;
    # ``by_column`` gives them in order.
    lookups: frozenset[Lookup]

    kinds: tuple[str, ...] = ()  # the kinds of the specs, sorted

    @classmethod
    def of(cls, lookups: Iterable[Lookup], kinds: Iterable[str] = ()) -> NaturalKeys:
        return cls(frozenset(lookups), tuple(sorted(set(kinds))))

    @classmethod
    def of_specs(cls, specs: SpecSet) -> NaturalKeys:
        lookups: set[Lookup] = set()
        of_kind: dict[str, Callable[[AnyResource], tuple[Lookup, ...]]] = {}  # each kind's lookups, asked once
        for r in specs.resources:  # a set filled a resource at a time: no generator step per lookup (20 000 a plan)
            kind = r.kind
            lookups_of = of_kind.get(kind)
            if lookups_of is None:
                lookups_of = of_kind[kind] = registry.kind_named(kind).lookups
            lookups.update(lookups_of(r))
        return cls.of(lookups, of_kind)

    @classmethod
    def of_desired(cls, desired: Desired) -> NaturalKeys:
        lookups: set[Lookup] = set()
        for r in desired.resources:
            lookups.update(registry.kind_named(r.kind).desired_lookups(r))
        return cls.of(lookups, {r.kind for r in desired.resources})

    def listings(self) -> tuple[ImportRead, ...]:
        """What the kinds of the specs list in the first round."""
        return tuple(dict.fromkeys(read for kind in self.kinds for read in registry.kind_named(kind).listings))

    def tables(self) -> tuple[str, ...]:
        """The tables the stack's specs touch."""
        return tuple(sorted({lookup.table for lookup in self.lookups}))

    def by_column(self) -> dict[tuple[str, str], list[str]]:
        """The values looked up, by (table, column), in sorted order of both."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for lookup in self.lookups:
            grouped.setdefault((lookup.table, lookup.column), []).append(lookup.value)
        return {column: sorted(grouped[column]) for column in sorted(grouped)}


@dataclass(frozen=True)
class FirstRead:
    """The first round of reads: the inventory, every table by natural key, every attachment of the tables
    whose records carry files."""

    keys: NaturalKeys
    inventory: Inventory
    inventory_record: LiveRecord | None
    inventory_attachment: Attachment | None
    rows: dict[str, list[LiveRecord]]  # table -> records found by natural key, in the instance's order
    # The metadata of every attachment, by the record it is on (``attachments_by_record``): made as the answers
    # arrive, so their rows (about 20 columns each, the API takes no column list) are not kept for the whole plan.
    attachments: dict[str, list[Attachment]]
    grants: Grants | None = None
    dictionary: Dictionary | None = None
    leftover_parts: tuple[str, ...] = ()  # inventory part records the head does not name (a stopped write's)
    claims: Claims | None = None  # every claim of a name on the instance (mtls_config.claims)
    listed: dict[ImportRead, list[LiveRecord]] | None = None  # what the kinds of the specs list (Kind.listings)


async def read_first(
    client: Instance, keys: NaturalKeys, stack: str, *, roles_sent: asyncio.Future[Grants] | None = None
) -> FirstRead:
    """Round 1, all at once. Attachments are listed for the whole table: listing them by record would have to
    wait for the records' sys_ids, one more round trip on every plan. The roles are checked as soon as they
    arrive: missing ones stop the run with ``MissingRoles`` (also when another read was refused for them).
    ``roles_sent``: the read of the roles, sent already (``access.load_while_reading``)."""
    groups = keys.by_column()
    wanted = needs(keys.tables())
    # The roles read sent already proves the credentials: the other reads would wait for it at the client's gate
    # anyway. Awaited here, its failure (or missing roles) stops the plan before any other read is sent.
    early = await roles_sent if roles_sent is not None else None
    if early is not None:
        check_roles(early, wanted)

    async def checked_roles() -> Grants:
        if early is not None:
            return early  # checked above
        got = await read_grants(client)
        check_roles(got, wanted)
        return got

    roles = asyncio.ensure_future(checked_roles())

    async def or_roles(read: Callable[[], Awaitable[T]]) -> T:
        """A read refused for want of a role: the roles' error says which, and how to grant it. ``read`` is made
        here, not by the caller: a read made and then cancelled before this wrapper ran (a plan stopped while its
        reads go out) would be left never awaited."""
        try:
            return await read()
        except PermissionDenied:
            await roles
            raise

    listings = keys.listings()
    grants, stored, found, attachments, dictionary, claims, listed = await gather(
        roles,
        or_roles(partial(read_stored, client, stack)),
        or_roles(
            lambda: gather_all(
                read_in(client, table, column, values, registry.fields_to_read(table))
                for (table, column), values in groups.items()
            )
        ),
        or_roles(lambda: gather_all(client.list_table_attachments(t) for t in registry.attachment_tables())),
        read_dictionary(client, keys.tables()),
        or_roles(partial(read_claims, client, stack)),
        or_roles(
            lambda: gather_all(
                client.list(read.table, query=read.query, fields=list(read.columns), page_size=10000)
                for read in listings
            )
        ),
    )
    rows: dict[str, list[LiveRecord]] = {}
    for (table, _), records in zip(groups, found, strict=True):
        rows.setdefault(table, []).extend(records)
    lists = {read: [live_record(read.table, row) for row in got] for read, got in zip(listings, listed, strict=True)}
    return FirstRead(
        keys,
        stored.inventory,
        stored.record,
        stored.attachment,
        rows,
        attachments_by_record(a for got in attachments for a in got),
        grants,
        dictionary,
        stored.leftover_parts,
        claims,
        lists,
    )


async def read_dictionary(client: Instance, tables: Sequence[str]) -> Dictionary:
    """The columns of ``tables`` and of the tables they extend: one query of ``sys_dictionary`` and one of
    ``sys_db_object`` for them and their known parents, then one more pair per level of parents no one expected.
    A dictionary the user may not read (filtered, or refused with 403) is an unread one: nothing is said lacking."""
    wanted = tables_to_read(tables)
    if not wanted:
        return Dictionary()
    try:
        dictionary = await _dictionary_round(client, wanted, None)
        for _ in range(MAX_DEPTH):
            more = sorted(dictionary.unread_parents())
            if not more:
                break
            dictionary = await _dictionary_round(client, more, dictionary)
    except PermissionDenied:
        return Dictionary()
    return dictionary


async def _dictionary_round(client: Instance, tables: Sequence[str], base: Dictionary | None) -> Dictionary:
    names = ",".join(tables)
    column_rows, object_rows = await gather(
        client.list(DICTIONARY_TABLE, query=DICTIONARY_QUERY + names, fields=list(DICTIONARY_FIELDS), page_size=10000),
        client.list(OBJECTS_TABLE, query=f"nameIN{names}", fields=list(OBJECT_FIELDS), page_size=1000),
    )
    return dictionary_of(column_rows, object_rows, base)


async def observe(client: Instance, desired: Desired, stack: str, *, first: FirstRead | None = None) -> Live:
    """The live state for ``desired`` (without the digests of files: see ``mtls_config.contents``); ``first`` is
    round 1 when the caller started it early (it must have been read for the same natural keys)."""
    keys = NaturalKeys.of_desired(desired)
    if first is None or first.keys != keys:
        first = await read_first(client, keys, stack)
    desired_addresses = {r.address for r in desired.resources}
    extra = await _read_second(client, first, desired_addresses)
    return index_live(first, extra, desired, stack)


async def _read_second(client: Instance, first: FirstRead, desired: set[str]) -> dict[str, list[LiveRecord]]:
    """Round 2: owned records the specs no longer name, and referenced records read nowhere else. Their
    attachments were listed in round 1, with all others."""
    wanted: dict[str, set[str]] = {}
    for address, owned in first.inventory.resources.items():
        if address in desired:
            continue
        for owned_rec in owned.records:
            wanted.setdefault(owned_rec.table, set()).add(owned_rec.sys_id)
    looked_up = set(first.keys.tables())
    for ref in registry.references(first.dictionary):
        if ref.on_demand and ref.target not in looked_up:
            continue
        targets = {r.sys_id for r in first.rows.get(ref.target, [])}
        for rec in first.rows.get(ref.table, []):
            for sys_id in ref.sys_ids(rec):
                if sys_id not in targets:
                    wanted.setdefault(ref.target, set()).add(sys_id)
    # Every record read already, by sys_id: made only when there is something to look for (most plans have not).
    known = {r.sys_id for group in first.rows.values() for r in group} if wanted else set()
    tables = sorted(t for t, ids in wanted.items() if ids - known)
    found = await gather_all(read_in(client, t, "sys_id", sorted(wanted[t] - known), _fields(t)) for t in tables)
    return dict(zip(tables, found, strict=True))


def _fields(table: str) -> list[str] | None:
    """What round 2 reads of ``table``: what the kinds read, or only the identity of a table no kind reads."""
    if registry.kinds_of_table(table):
        return registry.fields_to_read(table)
    return list(BARE_COLUMNS)


def index_live(first: FirstRead, extra: dict[str, list[LiveRecord]], desired: Desired, stack: str) -> Live:
    """The live view of every desired resource and of every owned one the specs no longer name."""
    inventory = first.inventory
    every: dict[str, list[LiveRecord]] = {t: list(rows) for t, rows in first.rows.items()}
    for table, rows in extra.items():
        every.setdefault(table, []).extend(rows)
    # The names of every referenced table's records, by sys_id: made once per table (several references may point
    # to one; the last one's name column counts, as when each made it again).
    by_target = {ref.target: ref for ref in registry.references(first.dictionary)}
    names = {
        target: {r.sys_id: r.values.get(ref.target_key, "") for r in every.get(target, [])}
        for target, ref in by_target.items()
    }
    index = Index(first.rows, names, first.attachments, first.dictionary)

    live: dict[str, LiveResource] = {}
    unresolved: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    opaque: dict[str, str] = {}
    for d in desired.resources:
        kind = registry.kind_named(d.kind)
        found = kind.match(d, index, inventory.resources.get(d.address))
        if isinstance(found, LiveResource):  # most resources: asked first
            live[d.address] = found
            column = kind.opaque_column
            primary = found.primary if column else None
            secret = primary.get(column) if column and primary is not None else ""
            if secret:
                opaque[d.address] = hashlib.sha256(secret.encode()).hexdigest()
        elif isinstance(found, Unresolved):
            unresolved[d.address] = found.message
        elif isinstance(found, Ambiguous):
            duplicates[d.address] = found.message

    # Owned resources the specs no longer name (candidates for prune).
    desired_addresses = {r.address for r in desired.resources}
    gone = [(address, owned) for address, owned in inventory.resources.items() if address not in desired_addresses]
    # Every record by sys_id: made only when some owned resource is no longer in the specs (most plans have none).
    by_id: dict[str, LiveRecord] = {r.sys_id: r for group in every.values() for r in group} if gone else {}
    for address, owned in gone:
        kind = registry.kind_of_address(address)
        records = {o.part: by_id[o.sys_id] for o in owned.records if o.sys_id in by_id}
        if kind.primary_part not in records:
            continue
        live[address] = kind.live(address, address.partition("/")[2], records, index)

    return Live(
        stack,
        inventory,
        first.inventory_record,
        first.inventory_attachment,
        live,
        unresolved,
        opaque,
        duplicates,
        first.dictionary,
        first.leftover_parts,
        names,
        {read: tuple(rows) for read, rows in (first.listed or {}).items()},
    )
