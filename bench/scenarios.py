"""The scenarios at one size N, in the order a stack lives them, against one fresh emulator process:

  plan (all create)    first plan of an empty instance
  apply (all create)   apply of that plan (N creates, files uploaded)
  plan (no changes)    the same specs again
  plan (10% changed)   specs with every 10th resource edited
  apply (10% update)   apply of that plan
  drift (10% drifted)  the original specs against the edited instance: read, diff, drift report rendered
  baseline read        one GET per record the stack owns, 10 at a time (what per-resource providers do)
  floor read           one request per table the plan reads, all at once

plus the local CPU cost of diff + plan + render at N (no I/O), and of loading the specs.

Never imports the emulator (it runs in its own process, see ``bench.server``).
"""

from __future__ import annotations

import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

from bench.floor import ADMIN, CONCURRENCY, RawReader, Request, read_each, read_together
from bench.measure import Measurement, measure
from bench.probe import probe
from bench.server import EmulatorProcess
from bench.stacks import counts, write_stack
from mtls_config.access import GRANTS_FIELDS, GRANTS_QUERY, GRANTS_TABLE
from mtls_config.claims import CLAIMS_QUERY, CLAIMS_READ_FIELDS
from mtls_config.claims import TABLE as CLAIMS_TABLE
from mtls_config.client import InstanceClient
from mtls_config.compile import compile_changes
from mtls_config.dictionary import (
    DICTIONARY_FIELDS,
    DICTIONARY_QUERY,
    DICTIONARY_TABLE,
    OBJECT_FIELDS,
    OBJECTS_TABLE,
    tables_to_read,
)
from mtls_config.diff import diff
from mtls_config.engine import Planned, apply_planned, make_planned
from mtls_config.inventory import PartsPointer, parse_head
from mtls_config.inventory_store import PROPERTY_FIELDS, read_inventory, stack_query
from mtls_config.plan import make_plan
from mtls_config.render import drift_report, drift_text, plan_text
from mtls_config.resources.certificate import COLUMNS as CERT_FIELDS
from mtls_config.resources.protocol_profile import COLUMNS as PROFILE_FIELDS
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from mtls_config.spec.loader import SpecSet, load_specs

T = TypeVar("T")
STACK = "bench"


@dataclass
class SizeRun:
    n: int
    latency_ms: float
    measurements: list[Measurement] = field(default_factory=list)
    local: dict[str, Any] = field(default_factory=dict)  # CPU seconds of local-only work, the fresh-process probe
    checks: dict[str, Any] = field(default_factory=dict)  # what each scenario produced (counts), for assertions


def settings(url: str) -> InstanceSettings:
    return InstanceSettings(
        url=url, auth=BasicAuth(ADMIN[0], SecretValue(ADMIN[1].encode(), "bench")), max_concurrency=CONCURRENCY
    )


def baseline_requests(records: list[tuple[str, str]]) -> list[Request]:
    """One GET per owned record, as per-resource providers read."""
    return [
        (
            f"/api/now/table/{table}/{sys_id}",
            {"sysparm_exclude_reference_link": "true", "sysparm_fields": ",".join(_fields(table))},
        )
        for table, sys_id in records
    ]


def floor_requests(stack: str) -> list[Request]:
    """One request per table the plan reads, each returning every row in one page: the inventory, the names'
    claims, certificates, profiles and certificate attachments, and the checks made before anything is compared
    (the account's role grants; the data dictionary of the stack's tables and of those they are known to
    extend)."""
    big = {"sysparm_limit": "100000", "sysparm_exclude_reference_link": "true"}
    tables = ",".join(tables_to_read(("sys_certificate", "sys_protocol_profile")))
    return [
        (
            "/api/now/table/sys_properties",
            {**big, "sysparm_query": stack_query(stack), "sysparm_fields": ",".join(PROPERTY_FIELDS)},
        ),
        (
            f"/api/now/table/{CLAIMS_TABLE}",
            {**big, "sysparm_query": CLAIMS_QUERY, "sysparm_fields": ",".join(CLAIMS_READ_FIELDS)},
        ),
        ("/api/now/table/sys_certificate", {**big, "sysparm_fields": ",".join(CERT_FIELDS)}),
        ("/api/now/table/sys_protocol_profile", {**big, "sysparm_fields": ",".join(PROFILE_FIELDS)}),
        ("/api/now/attachment", {"sysparm_limit": "100000", "sysparm_query": "table_name=sys_certificate"}),
        (
            f"/api/now/table/{GRANTS_TABLE}",
            {**big, "sysparm_query": GRANTS_QUERY, "sysparm_fields": ",".join(GRANTS_FIELDS)},
        ),
        (
            f"/api/now/table/{DICTIONARY_TABLE}",
            {**big, "sysparm_query": DICTIONARY_QUERY + tables, "sysparm_fields": ",".join(DICTIONARY_FIELDS)},
        ),
        (
            f"/api/now/table/{OBJECTS_TABLE}",
            {**big, "sysparm_query": f"nameIN{tables}", "sysparm_fields": ",".join(OBJECT_FIELDS)},
        ),
    ]


async def baseline_read(reader: RawReader, records: list[tuple[str, str]]) -> int:
    """One GET per record, at most 10 in flight."""
    return await read_each(reader, baseline_requests(records), CONCURRENCY)


async def floor_read(reader: RawReader, stack: str) -> int:
    """The plan's reads, all at once, each returning every row in one page."""
    return await read_together(reader, floor_requests(stack))


def _fields(table: str) -> tuple[str, ...]:
    return CERT_FIELDS if table == "sys_certificate" else PROFILE_FIELDS


def render_all(planned: Planned) -> str:
    """What the CLI prints for a plan and a drift report, rendered to plain text."""
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None, force_terminal=False)
    console.print(plan_text(planned.plan))
    console.print(drift_text(drift_report(planned.plan)))
    return out.getvalue()


def local_cpu(planned: Planned) -> float:
    """CPU seconds of diff + plan + render for an observed state, no I/O (best of 3)."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        result = diff(planned.desired, planned.live)
        plan = make_plan(
            result,
            instance="bench",
            stack=STACK,
            spec_digest=planned.desired.spec_digest,
            inventory_sys_id=None,
            inventory_mod_count=None,
            inventory_generation=planned.live.inventory.generation,
            prune=False,
        )
        render_all(Planned(planned.desired, planned.live, result, plan))
        best = min(best, time.process_time() - start)
    return best


async def run_size(
    n: int,
    *,
    workdir: Path,
    pems: list[str],
    latency_ms: float,
    trace_memory: bool,
    baseline: bool = True,
    repeat: int = 3,
    fresh_process_probe: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> SizeRun:
    run = SizeRun(n, latency_ms)
    root, edited_root = workdir / f"n{n}", workdir / f"n{n}-edited"
    write_stack(root, n, pems=pems)
    run.checks["edited"] = write_stack(edited_root, n, change_every=10, pems=pems)
    start = time.process_time()
    specs = load_specs([root], root=root)
    run.local["load_specs_cpu_s"] = time.process_time() - start
    edited = load_specs([edited_root], root=edited_root)

    with EmulatorProcess(latency_ms=latency_ms) as emu:
        async with InstanceClient(settings(emu.url)) as client:

            def ours_bytes() -> tuple[int, int]:
                total = client.stats.total
                return total.bytes_sent, total.bytes_received

            async def step(
                scenario: str,
                variant: str,
                work: Callable[[], Awaitable[T]],
                counter: Callable[[], tuple[int, int]] = ours_bytes,
                repeat: int = 1,
            ) -> T:
                """Measure ``work``; a read-only one ``repeat`` times, keeping the fastest (the least disturbed
                by whatever else the machine does), with every wall time in its notes."""
                progress(f"N={n} {scenario} ({variant})")
                best: Measurement | None = None
                walls = []
                for _ in range(repeat):
                    m, result = await measure(
                        scenario,
                        variant,
                        n,
                        work,
                        server_log=emu.log,
                        clear_server_log=emu.clear_log,
                        byte_counter=counter,
                        trace_memory=trace_memory,
                    )
                    walls.append(round(m.wall_s, 4))
                    if best is None or m.wall_s < best.wall_s:
                        best = m
                assert best is not None
                if repeat > 1:
                    best.notes["walls_s"] = walls
                run.measurements.append(best)
                return result

            def plan_of(spec_set: SpecSet) -> Callable[[], Awaitable[Planned]]:
                return lambda: make_planned(client, spec_set, instance_name="bench", stack=STACK)

            first = await step("plan (all create)", "ours", plan_of(specs))
            run.checks["plan (all create)"] = _actions(first)
            applied = await step("apply (all create)", "ours", lambda: apply_planned(client, first))
            run.measurements[-1].notes["write_phases"] = write_phases(client, first)
            run.measurements[-1].notes["inventory_parts"] = await inventory_parts(client)
            run.checks["apply (all create)"] = applied.count("applied")
            again = await step("plan (no changes)", "ours", plan_of(specs), repeat=repeat)
            run.checks["plan (no changes)"] = _actions(again)
            changed = await step("plan (10% changed)", "ours", plan_of(edited), repeat=repeat)
            run.checks["plan (10% changed)"] = _actions(changed)
            updated = await step("apply (10% update)", "ours", lambda: apply_planned(client, changed))
            run.checks["apply (10% update)"] = updated.count("applied")

            async def drift() -> Planned:
                planned = await make_planned(client, specs, instance_name="bench", stack=STACK)
                render_all(planned)
                return planned

            drifted = await step("drift (10% drifted)", "ours", drift, repeat=repeat)
            run.checks["drift (10% drifted)"] = _actions(drifted)
            run.local["diff_plan_render_cpu_s"] = local_cpu(drifted)
            if fresh_process_probe:
                progress(f"N={n} plan in a fresh process (peak RSS)")
                run.local["fresh_plan"] = probe(emu.url, edited_root, STACK)

            owned = sorted(
                (rec.table, rec.sys_id) for entry in drifted.live.inventory.resources.values() for rec in entry.records
            )
            reader = RawReader(emu.url)
            try:
                if baseline:
                    got = await step(
                        "plan read", "baseline", lambda: baseline_read(reader, owned), counter=reader.counter
                    )
                    run.checks["baseline records"] = got
                got = await step(
                    "plan read", "floor", lambda: floor_read(reader, STACK), counter=reader.counter, repeat=repeat
                )
                run.checks["floor rows"] = got
            finally:
                await reader.aclose()
    keystores, profiles, certs = counts(n)
    run.checks["kinds"] = {"KeyStore": keystores, "ProtocolProfile": profiles, "TrustStoreCert": certs}
    return run


def write_phases(client: InstanceClient, planned: Planned) -> list[int]:
    """Writes per (stage, phase) the executor makes of a plan, in the order it runs them."""
    per: dict[tuple[int, int], int] = {}
    for task in compile_changes(planned.result.changes, planned.desired, planned.live).tasks:
        for index, ops in enumerate(task.phases):
            per[(task.stage, index)] = per.get((task.stage, index), 0) + len(ops)
    return [count for _, count in sorted(per.items()) if count]


async def inventory_parts(client: InstanceClient) -> int:
    """How many part records the stack's inventory takes (0: inline in its head)."""
    _, head, _ = await read_inventory(client, STACK)
    pointer = parse_head(head.get("value")) if head is not None else None
    return pointer.parts.count if isinstance(pointer, PartsPointer) else 0


def _actions(planned: Planned) -> dict[str, int]:
    found: dict[str, int] = {}
    for c in planned.plan.resource_changes:
        found[c.action] = found.get(c.action, 0) + 1
    return dict(sorted(found.items()))
