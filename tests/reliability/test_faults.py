"""Fault injection: apply a 200-resource stack while the emulator answers 5xx, 429 bursts with Retry-After,
drops connections, loses answers to writes it carried out and adds latency spikes; then a clean re-run.
The end state must equal the desired state with nothing duplicated, orphaned, half-made or unjournaled.

Time is virtual where waiting is the point: the client's sleep advances the emulator's rate-limit clock, so
a Retry-After of 1 s costs nothing real while the client still honours it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bench.stacks import mint_pems, write_stack
from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.engine import apply_planned, make_planned
from mtls_config.errors import MtlsConfigError
from mtls_config.spec.loader import load_specs
from tests.engine.conftest import local_settings
from tests.reliability.harness import FULL, assert_converged, count, fault_counts, seed_counts

pytestmark = pytest.mark.anyio

SEEDS = tuple(range(1, 21)) if FULL else (7, 8, 9)
SIZE = 400 if FULL else 200


class VirtualTime:
    """The client's sleep: records the waits and moves the emulator's clock forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


FAULTS = {"fail_rate": 0.2, "drop_rate": 0.05, "lost_response_rate": 0.05, "rate_limit": 8}
CLEAN = {"fail_rate": 0.0, "drop_rate": 0.0, "lost_response_rate": 0.0, "rate_limit": None}


@pytest.mark.parametrize("seed", SEEDS)
async def test_apply_under_faults_then_clean_rerun_converges(tmp_path: Path, seed: int) -> None:
    """Three faulted applies (create the stack; edit every 7th resource; edit again), then a clean re-run."""
    root = tmp_path / "specs"
    pems = mint_pems(SIZE)
    config = EmulatorConfig(
        random_seed=seed,
        fail_statuses=(502, 503, 504),  # gateway/availability errors; a 500 is an application error, not retried
        latency_ms=0.0,
        latency_jitter_ms=20.0,  # latency spikes up to 20 ms: concurrent writes interleave differently per seed
        rate_limit_window_s=1.0,  # bursts of 429 with Retry-After: 1
    )
    app = create_app(config)
    time = VirtualTime()
    app.state.faults.clock = time.clock
    journal = tmp_path / "journal"
    transport = httpx.ASGITransport(app=app)

    async with InstanceClient(local_settings(), transport=transport, sleep=time.sleep) as client:
        app.state.faults.update(CLEAN)
        seeded = await seed_counts(client)
        seen = {"5xx": 0, "429": 0, "dropped_or_lost": 0}
        for step, change_every in enumerate((0, 7, 5)):
            write_stack(root, SIZE, change_every=change_every, pems=pems)
            specs = load_specs([root], root=root)
            app.state.request_log.clear()
            app.state.faults.update(FAULTS)
            try:
                planned = await make_planned(client, specs, instance_name="test", stack="faults")
                await apply_planned(client, planned, parallelism=10, journal_path=journal / f"{step}.jsonl")
            except MtlsConfigError:
                pass  # a faulted run may stop early (e.g. its plan could not be read); the re-run must converge
            faults = fault_counts(app.state.request_log.snapshot())
            for kind in seen:
                seen[kind] += faults[kind]
            count("faults_injected", faults["5xx"] + faults["429"] + faults["dropped_or_lost"])
            count("faults_429", faults["429"])
            count("fault_run_requests", faults["requests"])
            count("fault_runs")
        assert all(seen.values()), f"a kind of fault was never injected: {seen}"
        assert any(w >= 1.0 for w in time.waits), "Retry-After was not honoured"

        # The clean re-run: finishes what the faulted runs left, and changes nothing they finished.
        app.state.faults.update(CLEAN)
        planned = await make_planned(client, specs, instance_name="test", stack="faults")
        if planned.plan.has_changes or planned.housekeeping:  # as 'mtls-config apply' does
            rerun = await apply_planned(client, planned, parallelism=10, journal_path=journal / "rerun.jsonl")
            assert rerun.ok, [o for o in rerun.outcomes if o.status != "applied"][:5]
        done = await assert_converged(client, specs, "faults", journal_dirs=[journal], seeded=seeded)
        assert done.certificates >= SIZE * 3 // 4
