"""One size N, in a process of its own (``python -m bench.worker``), so that each size's memory figures start
from a fresh interpreter and nothing one size allocated inflates the next one's RSS.

Pass 1 measures time, requests and RSS against the emulator with the requested latency. Pass 2 (``--memory``)
runs the same scenarios again on a fresh emulator without latency and with tracemalloc on (it slows Python
down about fourfold, so it never runs during pass 1) and adds each scenario's peak traced memory.
Writes one JSON document to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.scenarios import SizeRun, run_size
from bench.stacks import counts, mint_pems
from mtls_config.concurrency import run_coroutine
from mtls_config.runtime import tune_process


def measure_size(
    n: int, *, latency_ms: float, memory: bool, baseline: bool, repeat: int = 3, progress: bool = False
) -> dict[str, object]:
    def say(text: str) -> None:
        if progress:
            print(f"  {text}", flush=True)

    pems = mint_pems(counts(n)[2])
    with tempfile.TemporaryDirectory(prefix="mtls-bench-") as tmp:
        timed: SizeRun = run_coroutine(
            run_size(
                n,
                workdir=Path(tmp) / "timed",
                pems=pems,
                latency_ms=latency_ms,
                trace_memory=False,
                baseline=baseline,
                repeat=repeat,
                progress=say,
            )
        )
        if memory:
            traced = run_coroutine(
                run_size(
                    n,
                    workdir=Path(tmp) / "traced",
                    pems=pems,
                    latency_ms=0,
                    trace_memory=True,
                    baseline=False,
                    repeat=1,
                    fresh_process_probe=False,
                    progress=lambda text: say(text + " [tracemalloc]"),
                )
            )
            peaks = {(m.scenario, m.variant): m.peak_traced_mb for m in traced.measurements}
            for m in timed.measurements:
                m.peak_traced_mb = peaks.get((m.scenario, m.variant))
    return {
        "n": timed.n,
        "latency_ms": timed.latency_ms,
        "measurements": [asdict(m) for m in timed.measurements],
        "local": timed.local,
        "checks": timed.checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark one stack size (used by python -m bench).")
    parser.add_argument("n", type=int)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tune_process()  # the collector settings the mtls-config command runs with
    result = measure_size(
        args.n,
        latency_ms=args.latency_ms,
        memory=args.memory,
        baseline=not args.no_baseline,
        repeat=args.repeat,
        progress=args.progress,
    )
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
