"""Carry out a plan on the instance: the only module that writes.

The changes are compiled into operations first (``mtls_config.compile``, pure); this is the runner. Stage by stage
(certificates -> protocol profiles -> message bindings, deletions in reverse), phase by phase (create inactive ->
attach file -> set password and activate), the steps of independent resources run concurrently up to
``parallelism``, and the writes of a phase go through the Batch API when there are several. A resource whose step
fails is marked failed, its later steps and its dependants are skipped, and the rest carries on.

Every create and update is read back: the record the instance returned (or, when a batch answer carries none,
the record read after the batch) must hold each owned field as it was sent (``mtls_config.readback``). A field the
instance did not keep fails the resource, naming the field, the value sent and the value kept; the inventory
then vouches for nothing the failed resource wrote, so the next plan shows the change again.

Crash safety: before the first write the inventory records every record about to be created (with the sys_id
chosen for it) and every field about to be taken over (with its original value), so a re-run after a crash
recognises its own half-made records and converges, never duplicating one (``mtls_config.inventory_books``).
Every step's outcome is appended to the journal as it happens.

Never imports the emulator or the CLI; talks to the instance only through ``Instance``, in typed operations.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mtls_config.changes import ApplyResult, Change, Outcome, Status
from mtls_config.claims import (
    ClaimKey,
    Claims,
    Taken,
    claim_each,
    claim_first,
    claim_key,
    claim_rest,
    conflict,
    give_up_claims,
    inventory_keys,
    refusals,
)
from mtls_config.compile import Compiled, Task, compile_changes
from mtls_config.concurrency import gather, gather_all, settle
from mtls_config.desired import Desired
from mtls_config.errors import InstanceError, Interrupted, MtlsConfigError, StalePlan, WriteNotKept
from mtls_config.files import open_private_append
from mtls_config.housekeeping import Housekeeping
from mtls_config.instance import Instance
from mtls_config.inventory import Inventory
from mtls_config.inventory_books import final_inventory, owned_ids, pending_inventory, settled_inventory
from mtls_config.inventory_store import (
    Listing,
    Prepared,
    check_listing,
    clear,
    discard,
    list_stored,
    nothing_to_clear,
    prepare,
    write_head,
)
from mtls_config.live import Live
from mtls_config.lock import HeldLock, LockInfo, confirm_held, read_lock, release_seen
from mtls_config.operations import BatchableWrite, Create, DeleteAttachment, Operation, Update, Upload
from mtls_config.readback import HINT, unkept, unkept_message
from mtls_config.reads import attachments_by_record, mod_count_of, read_in
from mtls_config.redaction import redact
from mtls_config.resources.common import Attachment, LiveRecord
from mtls_config.resources.registry import attachment_tables, kind_named, opaque_columns

logger = logging.getLogger("mtls_config.apply")

BATCH_SIZE = 50
IN_FLIGHT = "was being written when the run stopped: a re-run recognises what was written and finishes it"
ProgressFn = Callable[[str, str], None]


class Journal:
    """Append-only JSON lines: one per step outcome, written as it happens (never values, never secrets)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def write(self, **entry: Any) -> None:
        entry = {"at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **entry}
        if self.path is not None:
            # Owner-only from its creation, and masked: a message may quote what the instance echoed back.
            line = redact(json.dumps(entry, sort_keys=True)) + "\n"
            fd = open_private_append(self.path)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line)


class Runner:
    """Runs compiled changes against the instance and keeps the inventory's books around them."""

    def __init__(
        self,
        client: Instance,
        desired: Desired,
        live: Live,
        changes: Sequence[Change],
        compiled: Compiled,
        *,
        parallelism: int = 10,
        journal: Journal | None = None,
        progress: ProgressFn | None = None,
        claims: Claims | None = None,
        housekeeping: Housekeeping | None = None,
    ) -> None:
        self.client = client
        self.desired = desired
        self.live = live
        self.changes = [c for c in changes if c.action != "no-op"]
        self.all_changes = list(changes)
        self.compiled = compiled
        self.semaphore = asyncio.Semaphore(max(1, parallelism))
        self.journal = journal or Journal(None)
        self.progress = progress
        self.inventory_record = live.inventory_record
        self.doing = "starting"  # what the run is doing, for the report of an interrupted one
        self.claims = claims or Claims(live.stack)
        self.housekeeping = housekeeping or Housekeeping()
        self.claimed: set[str] = set()  # sys_ids of the claims this run holds (made or found its stack's)
        self.pending = pending_inventory(live, compiled)  # the books before the first write
        self.wanted, self.needing = self._names_to_claim()
        self.first_claim = Taken()  # the first name of ``wanted``, claimed in the first round
        # sys_id -> what the books need of the record as the instance answered its last write (its sys_mod_count and
        # opaque columns): the final inventory reads again only the records not known from these.
        self.answered: dict[str, LiveRecord] = {}
        self.final_reads: asyncio.Future[tuple[Listing, LockInfo | None]] | None = None

    async def first_round(self, lock: HeldLock | None = None) -> tuple[Listing, Prepared | None]:
        """What must go out before the first write, all at once: the read-back confirming ``lock`` (taken without
        it), every record about to change re-read, the inventory's conflict check and listing, the pending
        inventory's parts (unreferenced until its head is written) and the first name about to be created claimed
        alone (``claims.claim_first``). When the apply is refused here, the parts and a claim this run's insert
        made are deleted again: nothing is left half-written. No pending inventory when it records nothing new
        (updates only): the books stay as they are until the final write."""
        changed = self.pending.resources != self.live.inventory.resources

        def making_parts() -> None:
            self.doing = "recording the changes about to be made in the stack's inventory"

        if self.wanted:
            self.doing = "claiming the names of the records about to be created"
        outcome: tuple[Any, ...] = await asyncio.gather(
            confirm_held(self.client, lock) if lock is not None else _nothing(),
            self._preflight(),
            list_stored(self.client, self.live.stack, self.inventory_record),
            prepare(self.client, self.live.stack, self.pending, making_parts=making_parts) if changed else _nothing(),
            claim_first(self.client, self.live.stack, self.wanted),
            return_exceptions=True,
        )
        listing, prepared, first = outcome[2], outcome[3], outcome[4]
        refused = next((o for o in outcome if isinstance(o, BaseException)), None)
        if refused is None:
            try:  # the inventory unmoved since the plan, whether or not a pending one is written
                check_listing(self.live.stack, self.inventory_record, listing, prepared)
            except MtlsConfigError as exc:
                refused = exc
        if refused is not None:
            await gather(
                discard(self.client, prepared) if isinstance(prepared, Prepared) else _nothing(),
                self._give_up_claims(_sys_ids(first.made if isinstance(first, Taken) else ()), warn=False),
            )
            raise refused
        self.first_claim = first
        return listing, prepared

    async def write_pending(self, listing: Listing, prepared: Prepared | None) -> Inventory:
        """Record what is about to be created, before the first write (``first_round`` made its parts)."""
        if prepared is not None:
            self.inventory_record = await write_head(
                self.client, self.live.stack, self.inventory_record, listing, prepared
            )
            self.journal.write(address="inventory", step=f"write generation {self.pending.generation}", status="ok")
        return self.pending

    async def run(
        self, first: tuple[Listing, Prepared | None] | None = None, lock: HeldLock | None = None
    ) -> ApplyResult:
        """Carry the changes out. Cancelled (a signal the CLI caught), it raises ``Interrupted`` saying what was done:
        the writes in flight are abandoned, which is safe for the reason a crash is (the pending inventory).
        ``first``: ``first_round``'s result when it went out already; ``lock``: the
        stack's lock, read with the last reads and given back with the last writes (issue 18)."""
        try:
            return await self._run(first, lock)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # handled here: the caller sees Interrupted, not a cancellation
            raise self._interrupted() from None

    def _interrupted(self) -> Interrupted:
        outcomes = []
        for t in self.compiled.tasks:
            if t.status is not None:
                outcomes.append(Outcome(t.change.address, t.change.action, t.status, t.message, t.hint))
            elif t.started:
                outcomes.append(Outcome(t.change.address, t.change.action, "interrupted", IN_FLIGHT))
            else:
                outcomes.append(Outcome(t.change.address, t.change.action, "not applied", "not started"))
        self.journal.write(address="apply", step=f"interrupted while {self.doing}", status="interrupted")
        error = Interrupted(f"apply stopped while {self.doing}")
        error.stage = self.doing
        error.result = ApplyResult(tuple(outcomes), self.journal.path)
        return error

    async def _run(self, first: tuple[Listing, Prepared | None] | None, lock: HeldLock | None) -> ApplyResult:
        try:
            return await self._run_all(first, lock)
        finally:
            if self.final_reads is not None:  # the run stopped before its final write: nobody will wait for them
                await settle(self.final_reads)

    async def _run_all(self, first: tuple[Listing, Prepared | None] | None, lock: HeldLock | None) -> ApplyResult:
        tasks = self.compiled.tasks
        self.doing = "checking the records about to change"
        listing, prepared = first if first is not None else await self.first_round(lock)
        self.doing = "recording the changes about to be made in the stack's inventory"
        inventory = await self._pending_and_claims(listing, prepared)
        self.doing = "writing the changes"
        by_address: dict[str, list[Task]] = {}
        for t in tasks:
            by_address.setdefault(t.change.address, []).append(t)
        stages = sorted({t.stage for t in tasks})
        for stage, following in zip(stages, [*stages[1:], None], strict=True):
            stage_tasks = [t for t in tasks if t.stage == stage and t.status is None]
            for t in stage_tasks:
                blocked = _failed_deps(t, by_address)
                # Left out by --exclude and not on the instance: writing would point the record at nothing.
                absent = [dep for dep in t.change.depends_on if dep not in self.compiled.sys_ids]
                if blocked:
                    self._finish(t, "skipped", f"depends on {', '.join(blocked)}, which failed")
                elif absent and t.change.action != "delete":
                    self._finish(t, "skipped", f"depends on {', '.join(absent)}, which is not on the instance")
            depth = max((len(t.phases) for t in stage_tasks if t.status is None), default=0)
            riders: list[Task] = []
            for phase in range(depth):
                steps = [(t, phase) for t in stage_tasks if t.status is None and phase < len(t.phases)]
                if phase == depth - 1 and following is not None:
                    riders = self._riders(tasks, following, by_address)
                    steps += [(t, 0) for t in riders]
                if self.final_reads is None and not _more_writes(tasks, stage, phase, steps):
                    # The last round of writes: the final reads of the inventory's listing and the lock go beside it
                    self.final_reads = asyncio.ensure_future(self._final_reads(lock))
                await self._run_phase(steps)
            for t in stage_tasks:
                if t.status is None:
                    self._finish(t, "applied")
            await self._settle_riders(riders, by_address)
        self.doing = "recording what was done in the stack's inventory"
        await self._write_final(inventory, tasks, listing, lock)
        outcomes = tuple(
            Outcome(t.change.address, t.change.action, t.status or "skipped", t.message, t.hint) for t in tasks
        )
        return ApplyResult(outcomes, self.journal.path)

    def _names_to_claim(self) -> tuple[dict[ClaimKey, str], dict[ClaimKey, list[Task]]]:
        """The names of the records about to be created, re-made or adopted (importing), which become the stack's:
        key -> the address that needs it, and key -> the tasks that wait for it. Names the stack claims already are
        not claimed again."""
        own = self.claims.own_ids()
        wanted: dict[ClaimKey, str] = {}
        needing: dict[ClaimKey, list[Task]] = {}
        for t in self.compiled.tasks:
            makes = t.change.action in ("create", "replace") or t.change.importing
            key = claim_key(t.change.kind, t.change.name) if makes else None
            if key is not None and key.sys_id not in own:
                wanted.setdefault(key, t.change.address)
                needing.setdefault(key, []).append(t)
        return wanted, needing

    async def _pending_and_claims(self, listing: Listing, prepared: Prepared | None) -> Inventory:
        """One round: the pending inventory's head, the rest of the names about to be created (when the first name,
        claimed in the first round, is the stack's), and the names the inventory owns without a claim (each on its
        own: one another stack holds blocks nothing here). A name another stack holds fails its resource before
        anything of it is written; its dependants are skipped. Failing here, the run gives back the claims its
        own inserts made (a claim left behind is one its stack's next apply recognises)."""
        stack = self.live.stack
        owned = {
            k: a
            for k, a in self.housekeeping.claims_to_make.items()
            if k.sys_id not in self.claims.own_ids() and k not in self.wanted
        }
        outcome: tuple[Any, ...] = await asyncio.gather(
            self.write_pending(listing, prepared),
            claim_rest(self.client, stack, self.wanted, self.first_claim),
            claim_each(self.client, stack, owned),
            return_exceptions=True,
        )
        failure = next((o for o in outcome if isinstance(o, BaseException)), None)
        rest, each = outcome[1], outcome[2]
        if failure is not None:
            made = [key for t in (self.first_claim, rest, each) if isinstance(t, Taken) for key in t.made]
            await self._give_up_claims(_sys_ids(made), warn=False)
            raise failure
        refused = refusals(stack, self.wanted, self.first_claim, rest)
        kept_out = each.refused(stack)
        self.claimed = {key.sys_id for key in [*self.wanted, *owned] if key not in refused and key not in kept_out}
        for key, other in refused.items():
            if other.stack == stack:
                why = f"the claim of its name '{key.name}' was written by two runs at once: it is left to neither"
            elif other.stack and other.sys_id == key.sys_id:
                why = f"its name '{key.name}' was claimed meanwhile by stack '{other.stack}', which is creating it"
            elif other.stack:
                why = f"stack '{other.stack}' claimed meanwhile a name this run was creating too, so it claimed none"
            else:
                why = conflict(key, other, stack)[0]
            for t in self.needing.get(key, []):
                verb = "adopted" if t.change.importing else "created"
                self._finish(t, "failed", f"not {verb}: {why}; nothing of it was written")
        return self.pending

    def _finish(
        self, task: Task, status: Status, message: str = "", *, hint: str = "", journaled: str | None = None
    ) -> None:
        """``journaled``: the message as the journal keeps it, when ``message`` holds values (never journaled)."""
        task.status = status
        task.message = message
        task.hint = hint
        entry = message if journaled is None else journaled
        self.journal.write(address=task.change.address, action=task.change.action, status=status, message=entry)
        if self.progress is not None:
            self.progress(task.change.address, status)

    def _riders(self, tasks: list[Task], stage: int, by_address: Mapping[str, list[Task]]) -> list[Task]:
        """The creates of ``stage`` (the next) that go out beside the current stage's last phase instead of a round
        of their own (issue 18: a protocol profile beside its new keystore's activation): one phase of creates
        only, everything they depend on either in this run and not failed so far, or on the instance already. A
        rider whose dependency then fails in that phase has its record deleted again (``_settle_riders``)."""
        riders = []
        for t in tasks:
            if t.stage != stage or t.status is not None or t.change.action != "create" or t.change.importing:
                continue
            if len(t.phases) != 1 or not all(isinstance(op, Create) for op in t.phases[0]):
                continue
            deps = t.change.depends_on
            if all(d in self.compiled.sys_ids for d in deps) and not _failed_deps(t, by_address):
                riders.append(t)
        return riders

    async def _settle_riders(self, riders: list[Task], by_address: Mapping[str, list[Task]]) -> None:
        """Riders whose write went through: applied when what they depend on was, else their record deleted again
        (nothing is left pointing at a record that failed) and the rider skipped, or failed when the deletion
        fails (its record then stays in the pending inventory, which the next run recognises)."""
        undo: list[tuple[Task, list[str]]] = []
        for t in riders:
            if t.status is not None:
                continue
            failed = _failed_deps(t, by_address)
            if failed:
                undo.append((t, failed))
            else:
                self._finish(t, "applied")

        async def one(t: Task, failed: list[str]) -> None:
            why = f"depends on {', '.join(failed)}, which failed"
            try:
                await gather_all(
                    self.client.delete(op.table, op.sys_id, missing_ok=True)
                    for op in t.phases[0]
                    if isinstance(op, Create)
                )
            except MtlsConfigError as exc:
                self._finish(t, "failed", f"{why}; its record, created beside it, could not be deleted: {exc.message}")
                return
            self._finish(t, "skipped", f"{why}; its record, created beside it, was deleted again")

        await gather_all(one(t, failed) for t, failed in undo)

    async def _run_phase(self, steps: list[tuple[Task, int]]) -> None:
        """One round of writes: each task's operations of its given phase."""
        batched: list[tuple[Task, BatchableWrite]] = []
        other: list[tuple[Task, Operation]] = []
        for t, phase in steps:
            for op in t.phases[phase]:
                if isinstance(op, DeleteAttachment):
                    other.append((t, op))
                else:
                    batched.append((t, op))
        await asyncio.gather(self._batched_ops(batched), *(self._guarded(t, op) for t, op in other))

    async def _batched_ops(self, ops: list[tuple[Task, BatchableWrite]]) -> None:
        if len(ops) < 2:
            await asyncio.gather(*(self._guarded(t, op) for t, op in ops))
            return
        # The chunks are independent (one phase of one stage): send them all at once, each a round trip,
        # up to ``parallelism`` in flight.
        await asyncio.gather(
            *(self._batch_chunk(ops[start : start + BATCH_SIZE]) for start in range(0, len(ops), BATCH_SIZE))
        )

    async def _batch_chunk(self, chunk: list[tuple[Task, BatchableWrite]]) -> None:
        try:
            async with self.semaphore:
                for task, _ in chunk:
                    task.started = True
                results = await self.client.write_batch([op for _, op in chunk])
        except InstanceError:
            results = [None] * len(chunk)
        retry: list[tuple[Task, BatchableWrite]] = []
        unread: list[tuple[Task, Create | Update]] = []
        for (task, op), result in zip(chunk, results, strict=True):
            if result is None:
                retry.append((task, op))
                continue
            if isinstance(op, Upload) and result.record is not None:
                task.uploaded = {"sys_id": str(result.record["sys_id"]), "size": len(op.content)}
            if isinstance(op, Create | Update) and result.record is None:
                unread.append((task, op))  # done, but the answer carries no record to compare: read it
                continue
            self._settle(task, op, result.record)
        # Anything the batch did not do is done one by one, with the client's idempotent retries.
        await asyncio.gather(self._read_back(unread), *(self._guarded(t, op, check_first=True) for t, op in retry))

    async def _read_back(self, written: list[tuple[Task, Create | Update]]) -> None:
        """The records of writes whose answers carried none, read in one query per table, then compared."""
        by_table: dict[str, list[tuple[Task, Create | Update]]] = {}
        for task, op in written:
            by_table.setdefault(op.table, []).append((task, op))
        tables = sorted(by_table)
        try:
            found = await gather_all(
                read_in(
                    self.client,
                    table,
                    "sys_id",
                    [op.sys_id for _, op in by_table[table]],
                    sorted({"sys_id", *(c for _, op in by_table[table] for c in op.values)}),
                )
                for table in tables
            )
        except MtlsConfigError as exc:
            for task, op in written:
                self._fail(task, op, exc)
            return
        rows = {r.sys_id: r for listed in found for r in listed}
        for task, op in written:
            row = rows.get(op.sys_id)
            if row is None:
                gone = MtlsConfigError(
                    f"the instance did not return {op.table}/{op.sys_id} when read after the write",
                    hint="it was deleted meanwhile, or an ACL hides it from this user",
                )
                self._fail(task, op, gone)
                continue
            self._settle(task, op, row.values)

    def _settle(self, task: Task, op: Operation, record: Mapping[str, Any] | None) -> None:
        """A write the instance answered as done: the step is ok when the record holds what was sent."""
        try:
            self._check_kept(task, op, record)
        except WriteNotKept as exc:
            self._fail(task, op, exc)
            return
        self._step(task, op, "ok")

    def _check_kept(self, task: Task, op: Operation, record: Mapping[str, Any] | None) -> None:
        if not isinstance(op, Create | Update):
            return
        self.answered.pop(op.sys_id, None)  # an earlier answer no longer says what the record holds
        if record is None:
            return
        kind = kind_named(task.change.kind)
        found = unkept(op, record, write_only=kind.write_only(), form=kind.stored_form)
        if found:
            columns = tuple(f"{u.table}.{u.column}" for u in found)
            raise WriteNotKept(unkept_message(found), columns=columns, hint=HINT)
        books = ("sys_id", "sys_mod_count", *opaque_columns(op.table))
        if all(isinstance(record.get(c), str) for c in books):
            self.answered[op.sys_id] = LiveRecord(
                op.table, op.sys_id, mod_count_of(record["sys_mod_count"]), {c: record[c] for c in books}
            )

    def _fail(self, task: Task, op: Operation, exc: MtlsConfigError) -> None:
        journaled = exc.message
        if isinstance(exc, WriteNotKept):
            journaled = "the instance did not keep " + ", ".join(exc.columns)  # the journal keeps no values
        self._step(task, op, "failed", journaled)
        if task.status is None:
            self._finish(task, "failed", f"{op.what}: {exc.message}", hint=exc.hint or "", journaled=journaled)

    async def _guarded(self, task: Task, op: Operation, *, check_first: bool = False) -> None:
        if task.status is not None:
            return
        async with self.semaphore:
            try:
                # The batch may have created it before failing to answer: never create twice.
                if check_first and isinstance(op, Create):
                    made = await self.client.get(op.table, op.sys_id)
                    if made is not None:
                        self._check_kept(task, op, made)
                        self._step(task, op, "ok")
                        return
                if check_first and isinstance(op, Upload) and await self._uploaded_already(task, op):
                    self._step(task, op, "ok")
                    return
                task.started = True
                await self.do(task, op)
            except MtlsConfigError as exc:
                self._fail(task, op, exc)
                return
        self._step(task, op, "ok")

    async def _uploaded_already(self, task: Task, op: Upload) -> bool:
        """Whether a batch that failed to answer attached the file anyway: a new attachment (not one it
        replaces) with this name, size and content."""
        for meta in await self.client.list_attachments(op.table, [op.sys_id]):
            attachment_id = str(meta.get("sys_id", ""))
            if (
                attachment_id not in op.replacing
                and meta.get("file_name") == op.file_name
                and str(meta.get("size_bytes")) == str(len(op.content))
                and await self.client.download_attachment(attachment_id) == op.content
            ):
                task.uploaded = {"sys_id": attachment_id, "size": len(op.content)}
                return True
        return False

    def _step(self, task: Task, op: Operation, status: str, message: str = "") -> None:
        self.journal.write(address=task.change.address, step=op.what, status=status, message=message)

    async def do(self, task: Task, op: Operation) -> None:
        """One operation of a task, on its own."""
        if isinstance(op, DeleteAttachment) and task.uploaded.get("sys_id") == op.sys_id:
            return  # the file just uploaded is never the old one to remove
        result = await self.client.write(op)
        if isinstance(op, Upload):
            meta = result.record or {}
            task.uploaded = {"sys_id": str(meta.get("sys_id", "")), "size": len(op.content)}
        self._check_kept(task, op, result.record)

    # -- safety ------------------------------------------------------------------------------------

    async def _preflight(self) -> None:
        """Re-read every record about to be changed; refuse if one moved since it was observed."""
        by_table: dict[str, dict[str, int]] = {}
        for c in self.changes:
            for fp in c.live:
                by_table.setdefault(fp.table, {})[fp.sys_id] = fp.mod_count
        results = await gather_all(
            read_in(self.client, t, "sys_id", ids, ["sys_id", "sys_mod_count"]) for t, ids in sorted(by_table.items())
        )
        moved = []
        for (table, expected), rows in zip(sorted(by_table.items()), results, strict=True):
            seen = {r.sys_id: r.mod_count for r in rows}
            for sys_id, count in sorted(expected.items()):
                if seen.get(sys_id) != count:
                    moved.append(f"{table}/{sys_id} (sys_mod_count {count} -> {seen.get(sys_id, 'gone')})")
        if moved:
            raise StalePlan(
                "records changed on the instance since they were read:\n  " + "\n  ".join(moved),
                hint="run 'mtls-config plan' again; nothing was written",
            )

    # -- the inventory's books ---------------------------------------------------------------------

    def _known_final_state(self, tasks: list[Task]) -> tuple[dict[str, LiveRecord], dict[str, list[Attachment]]]:
        """What the books need of the records this run wrote, known without reading them again (issue 18: a
        creating apply's final reads are then none): the records of applied resources as the instance answered
        their last write, and the files of a record this run created (the one it attached, or none). A resource that
        failed, a write answered without the record, or a record the run did not write is read."""
        rows: dict[str, LiveRecord] = {}
        attachments: dict[str, list[Attachment]] = {}
        for t in tasks:
            if t.status != "applied":
                continue
            ops = [op for phase in t.phases for op in phase]
            written = {op.sys_id for op in ops if isinstance(op, Create | Update)}
            rows.update((sys_id, self.answered[sys_id]) for sys_id in written if sys_id in self.answered)
            uploads = [op for op in ops if isinstance(op, Upload)]
            for created in (op.sys_id for op in ops if isinstance(op, Create)):
                # A record this run created holds the files it attached, and none other.
                files = [op for op in uploads if op.sys_id == created]
                if not files:
                    attachments[created] = []
                elif len(files) == 1 and t.uploaded.get("sys_id"):
                    up = files[0]
                    attachments[created] = [
                        Attachment(str(t.uploaded["sys_id"]), up.file_name, len(up.content), up.content_type)
                    ]
        return rows, attachments

    async def _final_inventory(self, inventory: Inventory, tasks: list[Task]) -> Inventory:
        inv = settled_inventory(inventory, tasks)
        # One read per table of every owned record not known from this run's answers, and the attachments of
        # those that carry files, at once: the ids are known from the inventory. Their final sys_mod_count, file
        # and password state go in the books.
        rows, attachments = self._known_final_state(tasks)
        owned = owned_ids(inv)
        by_table = {t: sorted(ids - rows.keys()) for t, ids in owned.items() if ids - rows.keys()}
        files = {t: sorted(owned[t] - attachments.keys()) for t in attachment_tables() if t in owned}
        reads, attachment_rows = await gather(
            gather_all(
                read_in(self.client, t, "sys_id", by_table[t], ("sys_id", "sys_mod_count", *opaque_columns(t)))
                for t in sorted(by_table)
            ),
            gather_all(self.client.list_attachments(t, ids) for t, ids in sorted(files.items()) if ids),
        )
        rows.update((r.sys_id, r) for found in reads for r in found)
        attachments.update(attachments_by_record(row for listed in attachment_rows for row in listed))
        planned = {c.address for c in self.all_changes}
        inv, confirmed = final_inventory(inv, tasks, self.desired, self.live, planned, rows, attachments)
        for address in confirmed:
            self.journal.write(address=address, step="confirm: finished by an earlier run", status="ok")
        return inv

    async def _write_final(
        self, inventory: Inventory, tasks: list[Task], pending: Listing, lock: HeldLock | None
    ) -> None:
        """The books after the writes: one round of reads (the owned records, the inventory's listing, the
        lock), the parts, the head, then one round clearing what the head no longer names, giving up the claims
        of names the stack no longer owns and giving the lock back.

        When nothing is left to clear or give up, the lock goes back beside the head's write (one round less, issue
        18). Should that write fail, the instance holds the pending inventory without a lock, as after a crash
        whose lock expired: the next run recognises the records this one made from it, and one that read the
        inventory before the head moved finds it moved when it checks (``check_listing``) and stops. Clearing and
        giving up claims stay under the lock: a run of the same stack could otherwise count on a claim this one is
        about to delete."""
        early, self.final_reads = self.final_reads, None
        final, (listing, seen) = await gather(
            self._final_inventory(inventory, tasks), early if early is not None else self._final_reads(lock)
        )
        prepared = await prepare(self.client, self.live.stack, final, listing)
        owned = {key.sys_id for key in inventory_keys(final)}
        given_up = (self.claims.own_ids() | self.claimed) - owned
        if lock is not None and not given_up and nothing_to_clear([pending, listing], keep=prepared.tokens):
            await self._write_head_releasing(final, listing, prepared, lock, seen)
            return
        await self._write_head(final, listing, prepared)
        self.doing = "giving up the claims of names the stack no longer owns"
        await gather(
            clear(self.client, [pending, listing], keep=prepared.tokens),
            self._give_up_claims(given_up),
            release_seen(self.client, lock, seen) if lock is not None else _nothing(),
        )

    async def _final_reads(self, lock: HeldLock | None) -> tuple[Listing, LockInfo | None]:
        """The inventory's listing (its head unmoved since the pending write) and the lock (still this run's), read
        for the final write: beside the last round of writes when the runner knows which it is."""
        return await gather(
            list_stored(self.client, self.live.stack, self.inventory_record),
            read_lock(self.client, lock.stack) if lock is not None else _nothing(),
        )

    async def _write_head(self, final: Inventory, listing: Listing, prepared: Prepared) -> None:
        self.inventory_record = await write_head(self.client, self.live.stack, self.inventory_record, listing, prepared)
        self.journal.write(address="inventory", step=f"write generation {final.generation}", status="ok")

    async def _write_head_releasing(
        self, final: Inventory, listing: Listing, prepared: Prepared, lock: HeldLock, seen: LockInfo | None
    ) -> None:
        """The head's write and the lock's release side by side; neither cancels the other (a release failing
        first must not stop the head's write in flight). The head's failure is the one reported."""
        head, released = await asyncio.gather(
            self._write_head(final, listing, prepared), release_seen(self.client, lock, seen), return_exceptions=True
        )
        for outcome in (head, released):
            if isinstance(outcome, BaseException):
                raise outcome

    async def _give_up_claims(self, sys_ids: Collection[str], *, warn: bool = True) -> None:
        """Give up claims; never raises, the failure journaled (and logged with ``warn``). After the final write
        every change is made and recorded, so the next apply gives them up; on the way out of a refused or failed
        start (``warn`` False) the run's own error is the one to report, and a claim left behind is its stack's to
        recognise."""
        try:
            await give_up_claims(self.client, sys_ids)
        except MtlsConfigError as exc:
            self.journal.write(address="claims", step="give up claims", status="failed", message=exc.message)
            if warn:
                logger.warning("could not give up the claims of names stack %s no longer owns (%s)",
                               self.live.stack, exc.message)  # fmt: skip


def _more_writes(tasks: Sequence[Task], stage: int, phase: int, steps: Sequence[tuple[Task, int]]) -> bool:
    """Whether writes may follow the round of ``steps`` (phase ``phase`` of ``stage``): a later phase of this
    stage, or a task of a later stage not in this round and not settled yet."""
    in_round = {id(t) for t, _ in steps}
    for t in tasks:
        if t.status is not None or (id(t) in in_round and t.stage != stage):
            continue
        if (t.stage == stage and len(t.phases) > phase + 1) or (t.stage > stage and t.phases):
            return True
    return False


def _failed_deps(task: Task, by_address: Mapping[str, list[Task]]) -> list[str]:
    """The addresses ``task`` depends on whose tasks failed or were skipped."""
    return [dep for dep in task.change.depends_on if _failed(by_address.get(dep, []))]


def _failed(tasks: list[Task]) -> bool:
    """Whether one of an address's tasks failed or was skipped (indexed by address: a scan of every task per
    dependency made a 5000-resource apply quadratic)."""
    return any(t.status in ("failed", "skipped") for t in tasks)


def runner_for(
    client: Instance,
    desired: Desired,
    live: Live,
    changes: Sequence[Change],
    *,
    parallelism: int = 10,
    journal_path: Path | None = None,
    progress: ProgressFn | None = None,
    claims: Claims | None = None,
    housekeeping: Housekeeping | None = None,
) -> Runner:
    """``claims``: what the plan read of the names' claims (None: none read; every name is claimed as new);
    ``housekeeping``: what to tidy on the way."""
    compiled = compile_changes(changes, desired, live)
    return Runner(
        client, desired, live, changes, compiled, parallelism=parallelism, journal=Journal(journal_path),
        progress=progress, claims=claims, housekeeping=housekeeping,
    )  # fmt: skip


async def _nothing() -> None:
    """In a gather, in place of a request that is not needed this run."""
    return None


def _sys_ids(keys: Iterable[ClaimKey]) -> set[str]:
    return {key.sys_id for key in keys}
