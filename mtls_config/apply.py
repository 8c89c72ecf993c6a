"""Carry out a plan on the instance: the only module that writes.

Order: certificates -> protocol profiles -> message bindings, deletions in reverse. Each change is compiled
into steps grouped in phases (create inactive -> attach file -> set password and activate); within a
phase, steps of independent resources run concurrently up to ``parallelism``, and plain table writes go
through the Batch API when there are several. A resource whose step fails is marked failed, its later
steps and its dependants are skipped, and the rest carries on.

Crash safety: before the first write the inventory records every record about to be created (with the
sys_id chosen for it) and every message field about to be taken over (with its original value), so a
re-run after a crash recognises its own half-made records and converges, never duplicating one.
Every step's outcome is appended to the journal as it happens.

Never imports the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from mtls_config.concurrency import gather, gather_all
from mtls_config.desired import Desired
from mtls_config.diff import Change
from mtls_config.errors import InstanceError, MtlsConfigError, StalePlan
from mtls_config.instance import Instance
from mtls_config.inventory import (
    Inventory,
    OwnedRecord,
    OwnedResource,
)
from mtls_config.inventory_store import store_inventory
from mtls_config.observe import CERT_FIELDS, Live
from mtls_config.reads import attachment_of, read_in
from mtls_config.resources import key_store, message_binding, protocol_profile, trust_store_cert
from mtls_config.resources.common import KIND_ORDER, DesiredResource, LiveRecord, LiveResource, wire

Status = Literal["applied", "failed", "skipped"]
BATCH_SIZE = 50


@dataclass(frozen=True)
class TableOp:
    method: Literal["POST", "PATCH", "DELETE"]
    table: str
    sys_id: str
    values: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold the keystore password
    input_display_value: bool = False
    what: str = ""  # safe to journal and print


@dataclass(frozen=True)
class UploadOp:
    table: str
    sys_id: str
    file_name: str
    content: bytes = field(repr=False)
    content_type: str
    what: str = "attach file"
    replacing: tuple[str, ...] = ()  # attachments this upload replaces: never mistaken for it on a retry


@dataclass(frozen=True)
class DeleteAttachmentOp:
    sys_id: str
    what: str = "remove old file"


Op = TableOp | UploadOp | DeleteAttachmentOp


@dataclass
class Task:
    """One change, compiled into ordered phases of operations."""

    change: Change
    stage: int  # 0 certificates, 1 profiles, 2 bindings, 3+ deletions (reverse)
    phases: list[list[Op]]
    status: Status | None = None
    message: str = ""
    uploaded: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    address: str
    action: str
    status: Status
    message: str = ""


@dataclass(frozen=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]
    journal: Path | None

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0 and self.count("skipped") == 0


class Journal:
    """Append-only JSON lines: one per step outcome, written as it happens (never values, never secrets)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **entry: Any) -> None:
        entry = {"at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **entry}
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, sort_keys=True) + "\n")


ProgressFn = Callable[[str, str], None]


class Executor:
    def __init__(
        self,
        client: Instance,
        desired: Desired,
        live: Live,
        changes: Sequence[Change],
        *,
        parallelism: int = 10,
        journal: Journal | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.client = client
        self.desired_by_address: dict[str, DesiredResource] = {}
        for r in desired.resources:
            self.desired_by_address.setdefault(r.address, r)  # as Desired.get, without its scan per call
        self.live = live
        self.changes = [c for c in changes if c.action != "no-op"]
        self.all_changes = list(changes)
        self.semaphore = asyncio.Semaphore(max(1, parallelism))
        self.journal = journal or Journal(None)
        self.progress = progress
        self.inventory_record = live.inventory_record
        self.sys_ids: dict[str, str] = {}  # address -> primary sys_id (existing or allocated)
        self.new_ids: dict[str, str] = {}
        for address, res in live.resources.items():
            if res.primary is not None:
                self.sys_ids[address] = res.primary.sys_id
        for c in self.changes:
            if c.action in ("create", "replace") and c.kind != "MessageBinding":
                self.new_ids[c.address] = uuid.uuid4().hex
                self.sys_ids[c.address] = self.new_ids[c.address]

    # -- compile -----------------------------------------------------------------------------------

    def compile(self) -> list[Task]:
        tasks = []
        for c in self.changes:
            if c.action == "delete":
                # Deletions after everything else, dependants first: bindings, profiles, certificates.
                tasks.append(Task(c, 3 + (len(KIND_ORDER) - 1 - KIND_ORDER.index(c.kind)), self._delete_ops(c)))
                continue
            d = self.desired_by_address.get(c.address)
            assert d is not None
            current = self.live.resources.get(c.address)
            if c.kind in ("KeyStore", "TrustStoreCert"):
                tasks.append(Task(c, 0, self._certificate_ops(c, d, current)))
            elif c.kind == "ProtocolProfile":
                tasks.append(Task(c, 1, self._profile_ops(c, d)))
            else:
                tasks.append(Task(c, 2, self._binding_ops(d, current)))
        return tasks

    def _certificate_ops(self, c: Change, d: DesiredResource, current: LiveResource | None) -> list[list[Op]]:
        table = d.table
        is_key = d.kind == "KeyStore"
        changed = {f.field for f in c.fields}
        content_changed = bool(changed & {key_store.FILE_FIELD, trust_store_cert.CERT_FIELD, "attachment"})
        # A trust certificate moving between PEM text and a DER attachment moves its content too.
        content_changed = content_changed or (not is_key and "format" in changed)
        password_changed = key_store.PASSWORD_FIELD in changed
        pem_text = d.info.get("pem_text") if not is_key else None
        fields = dict(d.fields)

        def record_values(active: bool) -> dict[str, str]:
            base = (
                key_store.payload(d)
                if is_key
                else trust_store_cert.payload(d, pem_text=pem_text if isinstance(pem_text, str) else None)
            )
            base["active"] = wire(active)
            return base

        def finish() -> TableOp:
            values = record_values(bool(fields["active"]))
            if is_key and d.password is not None:
                values["key_store_password"] = d.password.reveal_text()
            return TableOp(
                "PATCH", table, sys_id, values, input_display_value=True, what="set fields, password, activate"
            )

        phases: list[list[Op]] = []
        if c.action in ("create", "replace"):
            sys_id = self.new_ids[c.address]
            if c.action == "replace" and current is not None and current.primary is not None:
                phases.append([TableOp("DELETE", table, current.primary.sys_id, what="delete the record to replace")])
            needs_file = d.content is not None
            if not needs_file and not is_key:
                phases.append([TableOp("POST", table, sys_id, record_values(bool(fields["active"])), what="create")])
                return phases
            phases.append([TableOp("POST", table, sys_id, record_values(False), what="create inactive")])
            if d.content is not None:
                phases.append([UploadOp(table, sys_id, d.content.file_name, d.content.data, d.content.content_type)])
            phases.append([finish()])
            return phases

        assert current is not None and current.primary is not None
        sys_id = current.primary.sys_id
        was_active = bool(current.fields.get("active"))
        risky = content_changed or password_changed
        if risky and was_active and is_key:
            # Never leave an active keystore whose file and password disagree: the instance walks all
            # active keystores and one broken entry can break TLS for others (KB0824494).
            phases.append([TableOp("PATCH", table, sys_id, {"active": "false"}, what="deactivate while changing")])
        if content_changed and d.content is not None:
            old = tuple(a.sys_id for a in current.attachments)
            phases.append(
                [UploadOp(table, sys_id, d.content.file_name, d.content.data, d.content.content_type, replacing=old)]
            )
            phases.append([DeleteAttachmentOp(a.sys_id) for a in current.attachments])
        elif content_changed and current.attachments and d.content is None:
            phases.append([DeleteAttachmentOp(a.sys_id) for a in current.attachments])
        if is_key and (password_changed or risky or changed - {key_store.PASSWORD_FIELD}):
            op = finish()
            if not password_changed:
                values = dict(op.values)
                values.pop("key_store_password", None)
                op = TableOp("PATCH", table, sys_id, values, what="set fields")
            phases.append([op])
        elif not is_key:
            phases.append([TableOp("PATCH", table, sys_id, record_values(bool(fields["active"])), what="set fields")])
        return phases

    def _profile_ops(self, c: Change, d: DesiredResource) -> list[list[Op]]:
        keystore_address = f"KeyStore/{d.fields['keystore']}"
        keystore_id = self.sys_ids.get(keystore_address, "")
        values = protocol_profile.payload(d, keystore_id)
        if c.action in ("create", "replace"):
            return [[TableOp("POST", protocol_profile.TABLE, self.new_ids[c.address], values, what="create")]]
        sys_id = self.sys_ids[c.address]
        values.pop("protocol", None)
        return [[TableOp("PATCH", protocol_profile.TABLE, sys_id, values, what="set fields")]]

    def _binding_ops(self, d: DesiredResource, current: LiveResource | None) -> list[list[Op]]:
        assert current is not None
        profile_id = self.sys_ids.get(f"ProtocolProfile/{d.fields['message']['protocol_name']}", "")
        values = {"use_mutual_auth": "true", "protocol_name": profile_id}
        ops: list[Op] = []
        wanted = self._wanted_parts(d, current)
        owned = self.live.owned(d.address)
        originals = {r.part: r.original for r in owned.records if r.original is not None} if owned else {}
        for part, rec in sorted(current.records.items()):
            if part not in wanted:
                # taken over earlier, no longer listed: give the fields back as they were found
                original = originals.get(part) or {"use_mutual_auth": "false", "protocol_name": ""}
                ops.append(TableOp("PATCH", rec.table, rec.sys_id, dict(original), what=f"release {part}"))
                continue
            have = current.fields["message"] if part == "message" else current.fields["functions"].get(part[3:], {})
            want = (
                d.fields["message"]
                if part == "message"
                else message_binding.part_fields(d.fields["message"]["protocol_name"])
            )
            if have != want or rec.get("protocol_name") != profile_id:
                ops.append(TableOp("PATCH", rec.table, rec.sys_id, values, what=f"enable mutual auth on {part}"))
        return [ops] if ops else []

    @staticmethod
    def _wanted_parts(d: DesiredResource, current: LiveResource) -> set[str]:
        parts = {"message"}
        fns = d.target.get("functions")
        if fns == "all":
            parts |= {p for p in current.records if p.startswith("fn:")}
        elif isinstance(fns, list):
            parts |= {f"fn:{n}" for n in fns}
        return parts

    def _delete_ops(self, c: Change) -> list[list[Op]]:
        current = self.live.resources.get(c.address)
        if current is None:
            return []
        if c.kind == "MessageBinding":
            owned = self.live.owned(c.address)
            originals = {r.part: r.original for r in owned.records if r.original is not None} if owned else {}
            ops: list[Op] = []
            for part, rec in sorted(current.records.items()):
                original = originals.get(part) or {"use_mutual_auth": "false", "protocol_name": ""}
                ops.append(TableOp("PATCH", rec.table, rec.sys_id, dict(original), what=f"restore {part}"))
            return [ops]
        primary = current.primary
        assert primary is not None
        return [[TableOp("DELETE", primary.table, primary.sys_id, what="delete")]]

    # -- run ---------------------------------------------------------------------------------------

    async def run(self) -> ApplyResult:
        tasks = self.compile()
        await self._preflight()
        inventory = await self._write_inventory(self._pending_inventory(tasks))
        stages = sorted({t.stage for t in tasks})
        by_address: dict[str, list[Task]] = {}
        for t in tasks:
            by_address.setdefault(t.change.address, []).append(t)
        for stage in stages:
            stage_tasks = [t for t in tasks if t.stage == stage]
            for t in stage_tasks:
                blocked = [dep for dep in t.change.depends_on if self._failed(by_address.get(dep, []))]
                # Left out by --exclude and not on the instance: writing would point the record at nothing.
                absent = [dep for dep in t.change.depends_on if dep not in self.sys_ids]
                if blocked:
                    self._finish(t, "skipped", f"depends on {', '.join(blocked)}, which failed")
                elif absent and t.change.action != "delete":
                    self._finish(t, "skipped", f"depends on {', '.join(absent)}, which is not on the instance")
            depth = max((len(t.phases) for t in stage_tasks), default=0)
            for phase in range(depth):
                await self._run_phase([t for t in stage_tasks if t.status is None and phase < len(t.phases)], phase)
            for t in stage_tasks:
                if t.status is None:
                    self._finish(t, "applied")
        await self._write_inventory(await self._final_inventory(inventory, tasks))
        outcomes = tuple(Outcome(t.change.address, t.change.action, t.status or "skipped", t.message) for t in tasks)
        return ApplyResult(outcomes, self.journal.path)

    @staticmethod
    def _failed(tasks: list[Task]) -> bool:
        """Whether one of an address's tasks failed or was skipped (indexed by address: a scan of every task
        per dependency made a 5000-resource apply quadratic)."""
        return any(t.status in ("failed", "skipped") for t in tasks)

    def _finish(self, task: Task, status: Status, message: str = "") -> None:
        task.status = status
        task.message = message
        self.journal.write(address=task.change.address, action=task.change.action, status=status, message=message)
        if self.progress is not None:
            self.progress(task.change.address, status)

    async def _run_phase(self, tasks: list[Task], phase: int) -> None:
        batched: list[tuple[Task, TableOp | UploadOp]] = []
        other: list[tuple[Task, Op]] = []
        for t in tasks:
            for op in t.phases[phase]:
                if isinstance(op, TableOp | UploadOp):
                    batched.append((t, op))
                else:
                    other.append((t, op))
        await asyncio.gather(self._batched_ops(batched), *(self._guarded(t, op) for t, op in other))

    async def _batched_ops(self, ops: list[tuple[Task, TableOp | UploadOp]]) -> None:
        batch = self.client.batch
        if len(ops) < 2:
            await asyncio.gather(*(self._guarded(t, op) for t, op in ops))
            return
        # The chunks are independent (one phase of one stage): send them all at once, each a round trip,
        # up to ``parallelism`` in flight.
        await asyncio.gather(
            *(self._batch_chunk(batch, ops[start : start + BATCH_SIZE]) for start in range(0, len(ops), BATCH_SIZE))
        )

    async def _batch_chunk(self, batch: Any, chunk: list[tuple[Task, TableOp | UploadOp]]) -> None:
        from mtls_config.client import BatchRequest

        requests = [
            BatchRequest(id=str(i), method=op.method, url=_url(op), body=_body(op))
            if isinstance(op, TableOp)
            else BatchRequest(
                id=str(i), method="POST", url=_upload_url(op), content=op.content, content_type=op.content_type
            )
            for i, (_, op) in enumerate(chunk)
        ]
        try:
            async with self.semaphore:
                responses = {r.id: r for r in await batch(requests)}
        except InstanceError:
            responses = {}
        retry: list[tuple[Task, TableOp | UploadOp]] = []
        for i, (task, op) in enumerate(chunk):
            resp = responses.get(str(i))
            if isinstance(op, UploadOp):
                meta = resp.body.get("result") if resp is not None and isinstance(resp.body, dict) else None
                if resp is not None and resp.ok and isinstance(meta, dict) and meta.get("sys_id"):
                    task.uploaded = {"sys_id": str(meta["sys_id"]), "size": len(op.content)}
                    self._step(task, op, "ok")
                else:
                    retry.append((task, op))
            elif resp is not None and resp.done(op.method):
                self._step(task, op, "ok")
            else:
                retry.append((task, op))
        # Anything the batch did not do is done one by one, with the client's idempotent retries.
        await asyncio.gather(*(self._guarded(t, op, check_first=True) for t, op in retry))

    async def _guarded(self, task: Task, op: Op, *, check_first: bool = False) -> None:
        if task.status is not None:
            return
        async with self.semaphore:
            try:
                # The batch may have created it before failing to answer: never create twice.
                if (
                    check_first
                    and isinstance(op, TableOp)
                    and op.method == "POST"
                    and await self.client.get(op.table, op.sys_id, fields=["sys_id"]) is not None
                ):
                    self._step(task, op, "ok")
                    return
                if check_first and isinstance(op, UploadOp) and await self._uploaded_already(task, op):
                    self._step(task, op, "ok")
                    return
                await self._do(task, op)
            except MtlsConfigError as exc:
                self._step(task, op, "failed", exc.message)
                if task.status is None:
                    self._finish(task, "failed", f"{op.what}: {exc.message}")
                return
        self._step(task, op, "ok")

    async def _uploaded_already(self, task: Task, op: UploadOp) -> bool:
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

    def _step(self, task: Task, op: Op, status: str, message: str = "") -> None:
        self.journal.write(address=task.change.address, step=op.what, status=status, message=message)

    async def _do(self, task: Task, op: Op) -> None:
        if isinstance(op, TableOp):
            if op.method == "POST":
                await self.client.create(
                    op.table, op.values, sys_id=op.sys_id, input_display_value=op.input_display_value
                )
            elif op.method == "PATCH":
                await self.client.update(op.table, op.sys_id, op.values, input_display_value=op.input_display_value)
            else:
                await self.client.delete(op.table, op.sys_id, missing_ok=True)
        elif isinstance(op, UploadOp):
            meta = await self.client.upload_attachment(
                op.table, op.sys_id, op.file_name, op.content, op.content_type, replacing=op.replacing
            )
            task.uploaded = {"sys_id": str(meta.get("sys_id", "")), "size": len(op.content)}
        else:
            if task.uploaded.get("sys_id") == op.sys_id:
                return
            await self.client.delete_attachment(op.sys_id, missing_ok=True)

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

    def _pending_inventory(self, tasks: list[Task]) -> Inventory:
        inv = self.live.inventory.model_copy(deep=True)
        inv.generation += 1
        for t in tasks:
            c = t.change
            if c.action == "delete":
                continue
            entry = inv.resources.get(c.address) or OwnedResource(address=c.address, pending=True)
            if c.action in ("create", "replace") and c.kind != "MessageBinding":
                # The record being replaced stays owned until it is gone: a run that stops before deleting it
                # (killed, or the delete refused) must not leave it looking like someone else's.
                current = self.live.resources.get(c.address)
                replaced = list(current.records.values()) if c.action == "replace" and current is not None else []
                entry.records = [
                    OwnedRecord(table=c.table, sys_id=self.new_ids[c.address]),
                    *(OwnedRecord(table=r.table, sys_id=r.sys_id) for r in replaced),
                ]
                entry.pending = True
                entry.password_digest = None
            elif c.importing or (c.kind == "MessageBinding" and c.action == "create"):
                current = self.live.resources[c.address]
                entry.records = [
                    OwnedRecord(
                        table=rec.table,
                        sys_id=rec.sys_id,
                        part=part,
                        original=message_binding.originals(rec) if c.kind == "MessageBinding" else None,
                    )
                    for part, rec in sorted(current.records.items())
                ]
            elif c.kind == "MessageBinding":
                current = self.live.resources[c.address]
                known = {r.part: r for r in entry.records}
                for part, rec in sorted(current.records.items()):
                    if part not in known:
                        entry.records.append(
                            OwnedRecord(
                                table=rec.table, sys_id=rec.sys_id, part=part, original=message_binding.originals(rec)
                            )
                        )
            inv.resources[c.address] = entry
        return inv

    async def _final_inventory(self, inventory: Inventory, tasks: list[Task]) -> Inventory:
        inv = inventory.model_copy(deep=True)
        inv.generation += 1
        status = {t.change.address: t for t in tasks}
        for t in tasks:
            if t.change.action == "delete" and t.status == "applied":
                inv.resources.pop(t.change.address, None)
        # One read per table of every owned record: their final sys_mod_count and password state.
        by_table: dict[str, set[str]] = {}
        for entry in inv.resources.values():
            for rec in entry.records:
                by_table.setdefault(rec.table, set()).add(rec.sys_id)
        tables = sorted(by_table)
        cert_ids = sorted(by_table.get("sys_certificate", set()))
        # The records and the certificates' attachments at once: the ids are known from the inventory.
        reads, attachment_rows = await gather(
            gather_all(
                read_in(
                    self.client,
                    t,
                    "sys_id",
                    by_table[t],
                    CERT_FIELDS if t == "sys_certificate" else ("sys_id", "sys_mod_count"),
                )
                for t in tables
            ),
            self.client.list_attachments("sys_certificate", cert_ids),
        )
        rows: dict[str, LiveRecord] = {r.sys_id: r for found in reads for r in found}
        attachments: dict[str, list[Any]] = {}
        for row in attachment_rows:
            attachments.setdefault(str(row.get("table_sys_id", "")), []).append(attachment_of(row))
        planned = {c.address for c in self.all_changes}
        for address, entry in list(inv.resources.items()):
            task = status.get(address)
            d = self.desired_by_address.get(address)
            if d is not None and address not in planned:
                # Left out by --target/--exclude: this run neither wrote nor compared it, so it must not vouch
                # for its content, password or sys_mod_count (that would hide its pending change for good).
                continue
            for owned_rec in entry.records:
                seen = rows.get(owned_rec.sys_id)
                owned_rec.mod_count = seen.mod_count if seen is not None else None
            if all(rows.get(r.sys_id) is None for r in entry.records):
                if task is None or task.status == "applied" or not entry.pending:
                    inv.resources.pop(address)
                continue
            ok = task is None or task.status == "applied"
            if ok:
                entry.records = [r for r in entry.records if r.sys_id in rows]  # e.g. the record a replace deleted
                if entry.pending and task is None:
                    # Written by an earlier run that died before it could journal it: account for it here.
                    self.journal.write(address=address, step="confirm: finished by an earlier run", status="ok")
                entry.pending = False
            current = self.live.resources.get(address)
            if ok and d is not None and d.kind == "MessageBinding" and current is not None:
                wanted = self._wanted_parts(d, current)
                entry.records = [r for r in entry.records if r.part in wanted]
            if d is not None and d.content is not None and ok:
                primary = entry.records[0].sys_id if entry.records else ""
                atts = attachments.get(primary, [])
                if len(atts) == 1:
                    entry.content_attachment = atts[0].sys_id
                    entry.content_size = atts[0].size
                    entry.content_digest = d.content.digest
            if d is not None and d.password is not None and ok:
                changed = task is None or any(f.field == key_store.PASSWORD_FIELD for f in task.change.fields)
                if changed or entry.password_digest is None:
                    entry.password_digest = d.password.salted_digest(inv.salt)
                primary_row = rows.get(entry.records[0].sys_id) if entry.records else None
                opaque = primary_row.get("key_store_password") if primary_row is not None else ""
                entry.password_opaque = hashlib.sha256(opaque.encode()).hexdigest() if opaque else None
        return inv

    async def _write_inventory(self, inventory: Inventory) -> Inventory:
        self.inventory_record = await store_inventory(self.client, self.live.stack, self.inventory_record, inventory)
        self.journal.write(address="inventory", step=f"write generation {inventory.generation}", status="ok")
        return inventory


def _url(op: TableOp) -> str:
    path = f"/api/now/table/{op.table}" + (f"/{op.sys_id}" if op.method != "POST" else "")
    return path + ("?sysparm_input_display_value=true" if op.input_display_value else "")


def _upload_url(op: UploadOp) -> str:
    query = urlencode({"table_name": op.table, "table_sys_id": op.sys_id, "file_name": op.file_name})
    return f"/api/now/attachment/file?{query}"


def _body(op: TableOp) -> dict[str, str] | None:
    if op.method == "DELETE":
        return None
    body = dict(op.values)
    if op.method == "POST":
        body["sys_id"] = op.sys_id
    return body


async def apply_changes(
    client: Instance,
    desired: Desired,
    live: Live,
    changes: Sequence[Change],
    *,
    parallelism: int = 10,
    journal_path: Path | None = None,
    progress: ProgressFn | None = None,
) -> ApplyResult:
    executor = Executor(
        client, desired, live, changes, parallelism=parallelism, journal=Journal(journal_path), progress=progress
    )
    return await executor.run()
