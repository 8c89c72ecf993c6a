"""Orchestration of the stages: specs -> desired -> observe -> diff -> plan -> apply.

The CLI calls these; they take an open ``Instance`` and return values. Nothing prints here.

Never imports the emulator or the CLI.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mtls_config.access import Grants
from mtls_config.apply import ProgressFn, runner_for
from mtls_config.changes import ApplyResult, DiffResult, Finding
from mtls_config.claims import (
    Claims,
    claimed_elsewhere,
    claimed_here_unrecorded,
    conflict,
    give_up_claims,
    read_claims,
    resource_keys,
    take_claims,
    without_claimed,
)
from mtls_config.concurrency import settle
from mtls_config.contents import check_contents
from mtls_config.desired import Desired, build_desired
from mtls_config.diff import diff_found
from mtls_config.errors import PlanError
from mtls_config.housekeeping import Housekeeping, housekeeping
from mtls_config.instance import Instance
from mtls_config.inventory_store import remove_leftover_parts
from mtls_config.keystore.certs import parsed_once
from mtls_config.keystore.speclint import lint_specs
from mtls_config.live import Live
from mtls_config.lock import stack_lock, unrecorded_while_applying
from mtls_config.observe import FirstRead, NaturalKeys, observe, read_first
from mtls_config.plan import Plan, check_still_true, make_plan, raise_if_unsafe
from mtls_config.resources.registry import kind_named
from mtls_config.spec.inputs import RunInputs
from mtls_config.spec.loader import SpecSet
from mtls_config.wording import did_you_mean, plural


@dataclass(frozen=True)
class Planned:
    desired: Desired
    live: Live
    result: DiffResult
    plan: Plan
    claims: Claims | None = None  # the claims of the specs' names and the stack's own (None: not read)
    housekeeping: Housekeeping = field(default_factory=Housekeeping)  # what apply tidies, changes or not


def scope_addresses(specs: SpecSet, targets: Sequence[str], excludes: Sequence[str]) -> set[str] | None:
    """Addresses a --target/--exclude run may touch: the targets and what they depend on."""
    if not targets and not excludes:
        return None
    known = {r.address for r in specs.resources}
    deps = {r.address: kind_named(r.kind).depends_on(r) for r in specs.resources}
    unknown = [t for t in [*targets, *excludes] if t not in known]
    if unknown:
        example = f", e.g. '{min(known)}'" if known else ""
        raise PlanError(
            f"unknown address {', '.join(f'{u!r}{did_you_mean(u, known)}' for u in unknown)}",
            hint=f"an address is KIND/NAME as the specs name the resource{example}; "
            "'mtls-config validate --verbose' lists them all",
        )
    chosen: set[str] = set()
    todo = list(targets) if targets else sorted(known)
    while todo:
        address = todo.pop()
        if address in chosen:
            continue
        chosen.add(address)
        todo.extend(deps.get(address, []))
    return chosen - set(excludes)


def _scoped(result: DiffResult, scope: set[str] | None) -> DiffResult:
    if scope is None:
        return result
    return DiffResult(
        tuple(c for c in result.changes if c.address in scope),
        tuple(f for f in result.findings if f.address in scope),
    )


async def make_planned(
    client: Instance,
    specs: SpecSet,
    *,
    instance_name: str,
    stack: str,
    prune: bool = False,
    targets: Sequence[str] = (),
    excludes: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
    seal: bool = True,
    grants: asyncio.Future[Grants] | None = None,
) -> Planned:
    """Plan ``specs`` against the instance; ``targets``/``excludes`` (KIND/NAME) narrow it, and are recorded in
    the plan so that applying it later covers the same resources. ``seal=False``: no checksum and no spec digest
    (a plan only printed as text, which can then not be sealed; ``Plan.sealed``)."""
    reads: asyncio.Future[FirstRead] | None = None
    try:
        scope = scope_addresses(specs, targets, excludes)
        # The first round of reads needs only the specs' names: it goes out now, and the local work (files read,
        # keystores parsed, secrets resolved, lint) runs in a thread while the instance answers.
        reads = asyncio.ensure_future(read_first(client, NaturalKeys.of_specs(specs), stack, roles_sent=grants))
        desired, linted = await asyncio.to_thread(_local_work, specs, environ, now)
        first = await reads
    finally:
        if reads is not None:
            await settle(reads)
        if grants is not None:  # taken over by the reads, or (stopped before them) answered into nothing
            await settle(grants)
    live = await check_contents(client, desired, await observe(client, desired, stack, first=first))
    claims = first.claims if first.claims is not None else await read_claims(client, stack)
    result, conflicted = diff_found(desired, live, prune=prune, now=now)
    keys = resource_keys((r.address, r.kind, r.name) for r in desired.resources)
    unrecorded = claimed_here_unrecorded(keys, claims, conflicted)
    elsewhere = claimed_elsewhere(keys, claims)
    running = await unrecorded_while_applying(client, stack, conflicted - unrecorded.keys() - elsewhere.keys(), now)
    blocked = {**running, **unrecorded, **elsewhere}
    result = _scoped(without_claimed(DiffResult(result.changes, result.findings + linted), blocked), scope)
    tidy = housekeeping(live.inventory, keys, claims, live.leftover_parts)
    del keys  # not held while the plan is made (a key per resource)
    record = live.inventory_record
    plan = make_plan(
        result,
        instance=instance_name,
        stack=stack,
        spec_digest=desired.spec_digest if seal else "",  # made only for a plan that is saved or shown
        inventory_sys_id=record.sys_id if record else None,
        inventory_mod_count=record.mod_count if record else None,
        inventory_generation=live.inventory.generation,
        prune=prune,
        targets=targets,
        excludes=excludes,
        now=now,
        seal=seal,
    )
    return Planned(desired, live, result, plan, claims, tidy)


def _local_work(
    specs: SpecSet, environ: Mapping[str, str] | None, now: dt.datetime | None
) -> tuple[Desired, tuple[Finding, ...]]:
    """Run in a thread while the first reads are out. A file, secret or certificate the desired state reads is
    not read again for lint, and none is kept after the run."""
    try:
        with parsed_once():
            inputs = RunInputs.of(environ)  # each secret and file read once for both stages
            return build_desired(specs, inputs=inputs), lint_findings(specs, environ, now, inputs=inputs)
    except StopIteration as exc:  # a future cannot carry StopIteration: the plan would wait for it forever
        raise RuntimeError("StopIteration escaped while building the desired state") from exc


async def apply_planned(
    client: Instance,
    planned: Planned,
    *,
    saved: Plan | None = None,
    parallelism: int = 10,
    allow_delete_all: bool = False,
    max_delete_fraction: float = 0.5,
    journal_path: Path | None = None,
    progress: ProgressFn | None = None,
    notify: Callable[[str], None] | None = None,
) -> ApplyResult:
    """Apply a fresh plan (``planned``), after checking a saved one still holds when given. ``notify`` hears what
    a person should know on the way (a dead run's lock taken over). A plan with no change writes nothing but its
    housekeeping (``ApplyResult.tidied``)."""
    plan = planned.plan
    if plan.errors:
        raise PlanError(
            f"the plan has {plural(len(plan.errors), 'error')}; nothing was applied:\n  "
            + "\n  ".join(f"{f.address}: {f.message}" for f in plan.errors),
            hint=plan.errors[0].hint or None,
        )
    if saved is not None:
        check_still_true(saved, plan)
    raise_if_unsafe(
        plan,
        len(planned.live.inventory.resources),
        allow_delete_all=allow_delete_all,
        max_delete_fraction=max_delete_fraction,
    )
    if not plan.has_changes:
        # Nothing to change: at most what a stopped run left to tidy (under the lock); the inventory is not written.
        tidied = tuple(await tidy_up(client, planned, notify=notify)) if planned.housekeeping else ()
        return ApplyResult((), None, tidied)
    runner = runner_for(
        client,
        planned.desired,
        planned.live,
        planned.result.changes,
        parallelism=parallelism,
        journal_path=journal_path,
        progress=progress,
        claims=planned.claims,
        housekeeping=planned.housekeeping,
    )
    stack = planned.live.stack
    # The runner holds what the writes need; the plan (its entries, the diff's findings) and the caller's specs are
    # not kept through them (issue 18: an apply's peak memory). A caller that let go of ``planned`` frees it here.
    del planned, plan, saved
    # The runner sends the lock's read-back with its first reads, and gives the lock back with its last writes.
    async with stack_lock(client, stack, notify=notify, confirm=False) as held:
        return await runner.run(lock=held)


async def tidy_up(client: Instance, planned: Planned, *, notify: Callable[[str], None] | None = None) -> list[str]:
    """The housekeeping of a plan with no change (``Planned.housekeeping``), under the stack's lock; what was done,
    one sentence each. Refused (ConflictError) when another run moved the stack's inventory since the plan."""
    tidy = planned.housekeeping
    stack = planned.live.stack
    done = []
    async with stack_lock(client, stack, notify=notify):
        # First, and always: the check that the inventory is as planned makes the claims below safe to change.
        removed = await remove_leftover_parts(client, stack, planned.live.inventory_record)
        if removed:
            done.append(f"removed {plural(removed, 'inventory part record')} a stopped write left behind")
        refused = await take_claims(client, stack, tidy.claims_to_make, all_or_none=False)
        if len(tidy.claims_to_make) > len(refused):
            done.append(f"claimed {plural(len(tidy.claims_to_make) - len(refused), 'name')} the stack owns")
        for key, other in sorted(refused.items()):
            done.append(f"could not claim '{key.name}': {conflict(key, other, stack)[0]}")
        await give_up_claims(client, {c.sys_id for c in tidy.claims_to_drop})
        if tidy.claims_to_drop:
            done.append(f"gave up {plural(len(tidy.claims_to_drop), 'claim')} of names the stack no longer owns")
    return done


def lint_findings(
    specs: SpecSet, environ: Mapping[str, str] | None, now: dt.datetime | None, *, inputs: RunInputs | None = None
) -> tuple[Finding, ...]:
    """The keystore and trust-certificate lint rules as plan findings: an error blocks apply."""
    addresses: dict[str, str] = {}  # by spec location: made for the first finding shown (most plans have none)
    out = []
    for f in lint_specs(specs, now=now, environ=environ, inputs=inputs):
        if f.severity == "info":
            continue
        if not addresses:
            for address, origin in specs.origins.items():
                for line, column in origin.marks.values():
                    addresses[f"{origin.path}:{line}:{column}"] = address
        address = addresses.get(f.source, f.source)
        alias = f" [{f.alias}]" if f.alias else ""
        out.append(Finding(address, f.severity, f"{f.rule}{alias}: {f.message}", f.fix, "lint"))
    return tuple(out)


def journal_file(state_dir: Path, stack: str, now: dt.datetime | None = None) -> Path:
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return state_dir / "journal" / f"{stack}-{stamp}.jsonl"
