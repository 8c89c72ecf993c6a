"""Changes -> operations: each change of a plan compiled by its kind into ordered phases of typed writes.

Pure: no I/O. The only thing chosen here is the sys_id of each record to create (``new_id``), so that the
inventory can name it before it exists and a re-run recognises its own half-made records.

Order: creates and updates run in their kind's stage (certificates, then protocol profiles, then bindings);
deletions after everything else, in reverse kind order (dependants first). Within a stage the runner runs the
independent resources' phases side by side.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mtls_config.changes import Change, Status
from mtls_config.desired import Desired
from mtls_config.live import Live
from mtls_config.operations import Operation
from mtls_config.resources.common import DesiredResource
from mtls_config.resources.kind import CompileContext
from mtls_config.resources.registry import KINDS, kind_named, position

# Deletions run after every kind's creates and updates.
DELETE_STAGES = max(k.stage for k in KINDS) + 1


@dataclass
class Task:
    """One change, compiled into ordered phases of operations; the runner records how it went."""

    change: Change
    stage: int
    phases: list[list[Operation]]
    status: Status | None = None
    message: str = ""
    hint: str = ""
    uploaded: dict[str, Any] = field(default_factory=dict)
    started: bool = False  # a write of it was sent (an interrupted run says which resources were in flight)


@dataclass(frozen=True)
class Compiled:
    tasks: list[Task]
    sys_ids: dict[str, str]  # address -> primary sys_id (existing, or chosen for a create)
    new_ids: dict[str, str]  # address -> the sys_id chosen for its new record


def new_sys_id() -> str:
    return uuid.uuid4().hex


def delete_stage(kind_name: str) -> int:
    return DELETE_STAGES + (len(KINDS) - 1 - position(kind_name))


def compile_changes(
    changes: Sequence[Change], desired: Desired, live: Live, *, new_id: Callable[[], str] = new_sys_id
) -> Compiled:
    by_address: dict[str, DesiredResource] = {}
    for r in desired.resources:
        by_address.setdefault(r.address, r)
    pending = [c for c in changes if c.action != "no-op"]
    sys_ids = {address: res.primary.sys_id for address, res in live.resources.items() if res.primary is not None}
    new_ids: dict[str, str] = {}
    for c in pending:
        if c.action in ("create", "replace") and not kind_named(c.kind).takes_over:
            new_ids[c.address] = sys_ids[c.address] = new_id()
    ctx = CompileContext(sys_ids, new_ids, live.dictionary)
    tasks = []
    for c in pending:
        kind = kind_named(c.kind)
        current = live.resources.get(c.address)
        owned = live.owned(c.address)
        if c.action == "delete":
            phases = kind.compile_delete(c, current, owned, ctx) if current is not None else []
            tasks.append(Task(c, delete_stage(c.kind), phases))
            continue
        d = by_address.get(c.address)
        assert d is not None
        tasks.append(Task(c, kind.stage, kind.compile(c, d, current, owned, ctx)))
    return Compiled(tasks, sys_ids, new_ids)
