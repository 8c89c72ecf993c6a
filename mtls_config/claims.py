"""Names claimed across stacks: which stack a record's name belongs to on an instance, kept on the instance.

Two spec repositories (stacks) may declare a record of the same name, a keystore 'Acme client' in both. The
instance does not keep names unique, so two applies racing to create it would make two records of one name. A
*claim* says whose a name is: one ``sys_properties`` record per (table, name as the instance compares names),
named ``mtls_config.claim.<stack>.<digest>``, whose value names the stack and the resource, and whose sys_id is
derived from the table and the folded name alone, the same for every stack.

- A plan reads every claim on the instance in its first round (one query, names only, which does not grow
  with the specs); a name its specs hold that another stack claims is a plan error naming that stack.
- apply claims the names it is about to create under the stack's lock, before the first create: an insert with
  the derived sys_id. The instance refuses a second insert of one sys_id (as for the stack lock), so of two applies
  racing for a name exactly one claim is made; the other run's resource fails, naming the stack that has the name,
  before anything of it is written. The first name goes out with apply's first round (the lock's read-back, the
  inventory's check), the rest with the pending inventory's head: no round trip of their own (issue 18).
- A claim lasts as long as its stack's inventory lists the name: apply gives up the claims of names its
  inventory no longer lists once it has written it, and claims names its inventory lists without a claim (a
  stack an earlier version applied, a run killed between the two writes).

A run killed anywhere leaves at most claims its own stack's next apply recognises: a claim is made only under the
lock and before its name's record, and given up only after the inventory stopped listing the name. A claim of a
name the inventory does not list yet (a run killed beside its pending head) is the stack's own for a name its
specs still hold (the next apply uses it) and housekeeping for one they do not (given up). A run refused before
its first write gives up the claims its own inserts made (``Taken.made``), never one it found.

Never imports the client, the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtls_config.changes import DiffResult, Finding
from mtls_config.errors import InstanceError, UnknownKind
from mtls_config.frozen import slot_maker
from mtls_config.instance import Instance
from mtls_config.inventory import STACK_NAME, Inventory
from mtls_config.inventory_store import RECORD_FLAGS
from mtls_config.names import folded
from mtls_config.operations import BatchableWrite, Create, Delete, WriteResult
from mtls_config.reads import live_record, mod_count_of, read_in
from mtls_config.resources.registry import kind_named

CLAIM_PREFIX = "mtls_config.claim."
TABLE = "sys_properties"
FIELDS = ("sys_id", "name", "value", "sys_mod_count")
# The plan's one read of every claim (the benchmark's floor makes the same request).
CLAIMS_QUERY = f"nameSTARTSWITH{CLAIM_PREFIX}"
CLAIMS_READ_FIELDS = ("sys_id", "name", "sys_mod_count")
# The record's name: prefix (18) + the longest stack name (63) + "." + 16 hex = 98 characters, within 100.
NAME_DIGEST_HEX = 16


@dataclass(frozen=True, order=True, slots=True)
class ClaimKey:
    """A name of a table's records, compared as the instance compares names."""

    table: str
    name: str  # as a spec declares it; compared folded
    # The claim record's sys_id, derived from the table and the folded name: the same for every stack, so that two
    # inserts of it collide. Made with the key (a plan asks each key's sys_id two or three times, 20 000 keys at
    # N = 20000), as a plain attribute: a cached_property took a lock on every read (Python 3.11).
    sys_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sys_id", _claim_sys_id(self.table, self.name))

    def record_name(self, stack: str) -> str:
        return f"{CLAIM_PREFIX}{stack}.{self.sys_id[:NAME_DIGEST_HEX]}"  # the digest's start, as the sys_id's


def _claim_sys_id(table: str, name: str) -> str:
    return hashlib.sha256(f"{CLAIM_PREFIX}\0{table}\0{folded(name)}".encode()).hexdigest()[:32]


_new = object.__new__
_set_table, _set_name, _set_sys_id = (vars(ClaimKey)[name].__set__ for name in ("table", "name", "sys_id"))  # slots


def _new_key(table: str, name: str) -> ClaimKey:
    """``ClaimKey(table, name)`` with its slots filled directly, without the frozen class's ``__init__`` and
    ``__post_init__`` (one key a resource a plan holds: 20 000 at N = 20000)."""
    made = _new(ClaimKey)
    _set_table(made, table)
    _set_name(made, name)
    _set_sys_id(made, _claim_sys_id(table, name))
    return made


def claim_key(kind_name: str, name: str) -> ClaimKey | None:
    """The claim a resource of ``kind_name`` needs: every kind whose records the stack creates, by its natural key
    (a kind that takes fields of existing records over creates no name, and claims none)."""
    kind = kind_named(kind_name)
    return None if kind.takes_over else _new_key(kind.table, name)


def address_key(address: str) -> ClaimKey | None:
    kind_name, _, name = address.partition("/")
    try:
        return claim_key(kind_name, name)
    except UnknownKind:
        return None


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim record as read. ``stack`` is "" when its name is not a claim's as this version writes it (the
    record still holds the name: the instance refuses another insert of its sys_id)."""

    sys_id: str
    record_name: str
    stack: str
    mod_count: int = 0


def _claim(row: Mapping[str, Any]) -> Claim:
    """The stack is read from the record's name (``mtls_config.claim.<stack>.<digest>``), whose digest must be the
    start of the sys_id's: a plan reads every claim of the instance, so it reads names and no values. A row of
    text (what the reads get) is read as it is; any other goes through ``live_record`` (its checks, its conversions)."""
    sys_id, name, count = row.get("sys_id"), row.get("name"), row.get("sys_mod_count")
    if type(sys_id) is str and sys_id and type(name) is str and (count is None or type(count) is str):
        mod_count = mod_count_of(count)
    else:
        record = live_record(TABLE, row)
        sys_id, name, mod_count = record.sys_id, record.get("name"), record.mod_count
    stack, _, digest = name[len(CLAIM_PREFIX) :].rpartition(".") if name.startswith(CLAIM_PREFIX) else ("", "", "")
    if digest != sys_id[:NAME_DIGEST_HEX] or not _is_stack_name(stack):
        stack = ""
    return _new_claim(sys_id, name, stack, mod_count)


# ``Claim(...)`` given every field in order, its slots filled directly: a plan reads every claim of the instance.
_new_claim = slot_maker(Claim)


@functools.lru_cache(maxsize=256)
def _is_stack_name(text: str) -> bool:
    """``STACK_NAME`` matches ``text``: asked once per claim read, of a few stacks' names (a plan reads them all)."""
    return STACK_NAME.fullmatch(text) is not None


@dataclass(frozen=True)
class Claims:
    """Every claim on the instance, as a plan read them, for ``stack``."""

    stack: str
    found: Mapping[str, Claim] = field(default_factory=dict)  # sys_id -> claim

    def holder(self, key: ClaimKey) -> Claim | None:
        return self.found.get(key.sys_id)

    def held_by_others(self, key: ClaimKey) -> Claim | None:
        found = self.holder(key)
        return found if found is not None and found.stack != self.stack else None

    @property
    def own(self) -> tuple[Claim, ...]:
        return tuple(c for c in self.found.values() if c.stack == self.stack)

    def own_ids(self) -> set[str]:
        return {c.sys_id for c in self.own}


async def read_claims(client: Instance, stack: str) -> Claims:
    """Every claim on the instance: one query (paginated past 10 000), which does not grow with the specs. Names
    are checked exactly here: the instance's STARTSWITH ignores case and may take '_' for any character."""
    rows = await client.list(TABLE, query=CLAIMS_QUERY, fields=list(CLAIMS_READ_FIELDS), page_size=10000)
    claims = (_claim(row) for row in rows if str(row.get("name", "")).startswith(CLAIM_PREFIX))
    return Claims(stack, {c.sys_id: c for c in claims})


# -- the plan ----------------------------------------------------------------------------------------------


def resource_keys(resources: Iterable[tuple[str, str, str]]) -> dict[str, ClaimKey | None]:
    """The claim key of each resource (address, kind, name), by address (None: its kind claims no name); made once
    for the plan's checks of claims and its housekeeping."""
    return {address: claim_key(kind_name, name) for address, kind_name, name in resources}


def claimed_elsewhere(keys: Mapping[str, ClaimKey | None], claims: Claims) -> dict[str, Finding]:
    """Plan errors for the resources whose names another stack claims (``keys``: ``resource_keys``), by address."""
    out: dict[str, Finding] = {}
    for address, key in keys.items():
        other = claims.held_by_others(key) if key is not None else None
        if key is None or other is None:
            continue
        out[address] = Finding(address, "error", *conflict(key, other, claims.stack), kind="conflict")
    return out


def claimed_here_unrecorded(
    keys: Mapping[str, ClaimKey | None], claims: Claims, conflicted: Collection[str]
) -> dict[str, Finding]:
    """Plan errors for the resources (``keys``: ``resource_keys``) found on the instance but not owned (``conflicted``:
    the diff's conflicts) although this stack claims their names: a run of this stack made the record and has not
    recorded it yet. Most often an apply of the same stack running now (a plan's reads are not one snapshot: the
    record may be read after its write and the inventory before it), so the error says that, not "not owned"."""
    out: dict[str, Finding] = {}
    for address, key in keys.items() if conflicted else ():
        found = claims.holder(key) if key is not None and address in conflicted else None
        if found is None or found.stack != claims.stack:
            continue
        out[address] = Finding(
            address,
            "error",
            f"exists on the instance and stack '{claims.stack}' claims its name, but the stack's inventory does not "
            "record it: another apply of this stack is probably writing it right now",
            "plan again once that apply has finished ('mtls-config lock status' shows it); if no apply is running, "
            "set 'metadata.adopt: true' on the resource or run 'mtls-config import' to take the record over",
            kind="conflict",
        )
    return out


def without_claimed(result: DiffResult, blocked: Mapping[str, Finding]) -> DiffResult:
    """``result`` without a change for the resources in ``blocked`` (names another stack claims, or this stack's
    records not recorded yet), each with its finding in place of the diff's own conflicts (which could not say
    which stack holds the name)."""
    if not blocked:
        return result
    kept = [f for f in result.findings if not (f.address in blocked and f.kind == "conflict")]
    findings = sorted([*kept, *blocked.values()], key=lambda f: (f.address, f.severity, f.message))
    return DiffResult(tuple(c for c in result.changes if c.address not in blocked), tuple(findings))


def conflict(key: ClaimKey, other: Claim, stack: str) -> tuple[str, str]:
    """The message and hint of a name that another stack claims."""
    if not other.stack:
        return (
            f"the name '{key.name}' is claimed on this instance by the record {TABLE} {other.record_name}, "
            "which cannot be read",
            f"if no stack owns that name, delete that {TABLE} record; then plan again",
        )
    return (
        f"the name '{key.name}' belongs to stack '{other.stack}' on this instance: a {key.table} name belongs to "
        f"one stack only",
        f"remove it from the specs of one of the two stacks, or rename it; to hand it over, remove it from the specs "
        f"of stack '{other.stack}' and apply there with --prune (which deletes its record)",
    )


# -- apply: taking and giving up claims ---------------------------------------------------------------------


def _values(stack: str, key: ClaimKey, address: str) -> dict[str, str]:
    value = json.dumps({"stack": stack, "address": address, "table": key.table, "name": key.name}, sort_keys=True)
    return {
        "name": key.record_name(stack),
        "value": value,
        "type": "string",
        "description": f"mtls-config: the name of {address} belongs to stack {stack}",
        **RECORD_FLAGS,
    }


@dataclass(frozen=True)
class Taken:
    """What inserting claims found: the claim each name's record holds now, and the names whose record this run's
    own insert made (the only claims a run may give up when it stops before writing anything)."""

    seen: Mapping[ClaimKey, Claim] = field(default_factory=dict)
    made: frozenset[ClaimKey] = frozenset()

    def refused(self, stack: str) -> dict[ClaimKey, Claim]:
        """The names that are not ``stack``'s, each with the claim that stands in the way."""
        return {k: claim for k, claim in self.seen.items() if not _ours(claim, stack)}


async def take_claims(
    client: Instance, stack: str, wanted: Mapping[ClaimKey, str], *, all_or_none: bool = True
) -> dict[ClaimKey, Claim]:
    """Claim the names ``wanted`` (key -> the address that needs it) for ``stack``; returns those that are not its,
    each with the claim that stands in the way.

    ``all_or_none`` (the names a run is about to create): the first name (in sys_id order, the same for every run)
    is claimed alone (``claim_first``). When it is not this stack's, nothing more is claimed and every name is
    refused in that claim's name: of two runs racing for the same names one takes them all and the other none
    (claimed in one batch, the two would split them). Then the rest, in one batch (``claim_rest``). apply sends
    the two steps with its own requests (``mtls_config.apply``)."""
    if not all_or_none:
        return (await claim_each(client, stack, wanted)).refused(stack)
    first = await claim_first(client, stack, wanted)
    return refusals(stack, wanted, first, await claim_rest(client, stack, wanted, first))


async def claim_first(client: Instance, stack: str, wanted: Mapping[ClaimKey, str]) -> Taken:
    """The first step of an all-or-none claim: the first name in sys_id order, alone."""
    if not wanted:
        return Taken()
    key = min(wanted)
    return await _claim_all(client, stack, {key: wanted[key]})


async def claim_rest(client: Instance, stack: str, wanted: Mapping[ClaimKey, str], first: Taken) -> Taken:
    """The second step: every other name in one batch, only when the first step made the first name this stack's."""
    if not wanted or first.refused(stack):
        return Taken()
    key = min(wanted)
    return await _claim_all(client, stack, {k: a for k, a in wanted.items() if k != key})


async def claim_each(client: Instance, stack: str, wanted: Mapping[ClaimKey, str]) -> Taken:
    """Claim each name on its own account, in one batch (names the stack owns already: one another stack holds
    blocks nothing else)."""
    return await _claim_all(client, stack, wanted)


def refusals(stack: str, wanted: Mapping[ClaimKey, str], first: Taken, rest: Taken) -> dict[ClaimKey, Claim]:
    """The names of an all-or-none claim that are not ``stack``'s: every name, in the first claim's name, when the
    first is not; else those of the rest that are not."""
    stopped = first.refused(stack)
    if stopped:
        claim = next(iter(stopped.values()))
        return dict.fromkeys(sorted(wanted), claim)
    return rest.refused(stack)


def _ours(claim: Claim, stack: str) -> bool:
    return claim.stack == stack and claim.mod_count == 0


async def _claim_all(client: Instance, stack: str, wanted: Mapping[ClaimKey, str]) -> Taken:
    """Insert the claims (one batch). A claim is this stack's when its record is named for it and was written once
    (a claim is never updated: a ``sys_mod_count`` above 0 means two runs wrote it, and the name is left to
    neither). An insert the instance answered with that record made it (the answer is the record as stored, as
    for the stack lock's insert); any other (refused as a duplicate, answered without the record, answer lost) is
    read back: what each name's record says now."""
    if not wanted:
        return Taken()
    keys = sorted(wanted)
    results = await _batch(client, [Create(TABLE, k.sys_id, _values(stack, k, wanted[k]), fields=FIELDS) for k in keys])
    seen: dict[ClaimKey, Claim] = {}
    made: set[ClaimKey] = set()
    for key, result in zip(keys, results, strict=True):
        record = result.record if result is not None else None
        if record is not None and str(record.get("sys_id", "")) == key.sys_id:
            claim = _claim(record)
            if _ours(claim, stack):
                seen[key] = claim
                made.add(key)
    unsure = [k for k in keys if k not in seen]
    if unsure:
        found = {
            r.sys_id: _claim(r.values)
            for r in await read_in(client, TABLE, "sys_id", [k.sys_id for k in unsure], FIELDS)
        }
        for key in unsure:
            if key.sys_id in found:
                seen[key] = found[key.sys_id]
                continue
            # the batch failed before this insert: once more, on its own (idempotent)
            try:
                row = await client.create(TABLE, _values(stack, key, wanted[key]), sys_id=key.sys_id)
            except InstanceError:
                got = await client.get(TABLE, key.sys_id, fields=list(FIELDS))
                if got is None:
                    raise
                row = got
            seen[key] = _claim(row)
    return Taken(seen, frozenset(made))


async def give_up_claims(client: Instance, sys_ids: Collection[str]) -> None:
    """Delete claim records (one gone already counts as done): one batch, and one by one what it did not confirm."""
    if not sys_ids:
        return
    deletes = [Delete(TABLE, s) for s in sorted(sys_ids)]
    done = {op.sys_id for op, result in zip(deletes, await _batch(client, deletes), strict=True) if result is not None}
    for op in deletes:
        if op.sys_id not in done:
            await client.delete(TABLE, op.sys_id, missing_ok=True)


async def _batch(client: Instance, ops: Sequence[BatchableWrite]) -> list[WriteResult | None]:
    try:
        return list(await client.write_batch(ops))
    except InstanceError:
        return [None] * len(ops)


def inventory_keys(inventory: Inventory, known: Mapping[str, ClaimKey | None] | None = None) -> dict[ClaimKey, str]:
    """The claim of every name an inventory lists (key -> address); ``known``: keys made already, by address
    (``resource_keys``)."""
    known = known or {}
    out: dict[ClaimKey, str] = {}
    for address in inventory.resources:
        key = listed_key(address, known)
        if key is not None:
            out.setdefault(key, address)
    return out


def listed_key(address: str, known: Mapping[str, ClaimKey | None]) -> ClaimKey | None:
    """The claim of an address an inventory lists: the key made already (``known``, by address), or its own."""
    return known[address] if address in known else address_key(address)
