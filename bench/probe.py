"""Peak memory of one plan as a user runs it: a fresh interpreter loads the specs and plans once against the
benchmark's emulator, then reports its peak resident set (the whole process: interpreter,
imports, specs, plan; VmHWM) and the import-only baseline. ``python -m bench.probe URL ROOT``; prints JSON.

The worker's own RSS figures accumulate over its scenarios (Python seldom hands memory back to the OS), so
this is the figure the memory target is judged on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import rss_bytes
from mtls_config.concurrency import run_coroutine
from mtls_config.runtime import tune_process


def probe(url: str, root: Path, stack: str) -> dict[str, Any]:
    """Run the probe in a fresh process and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.probe", url, str(root), "--stack", stack],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def high_water_kb() -> int:
    """This process's peak resident set since exec (VmHWM). Not ``ru_maxrss``: on Linux that also counts the
    parent's resident set at fork time, which here is the benchmark worker's."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("root", type=Path)
    parser.add_argument("--stack", default="bench")
    args = parser.parse_args()
    tune_process()  # the collector settings the mtls-config command runs with

    from bench.scenarios import settings
    from mtls_config.client import InstanceClient
    from mtls_config.engine import make_planned
    from mtls_config.spec.loader import load_specs

    imported_mb = rss_bytes() / 2**20

    async def plan() -> tuple[int, int]:
        specs = load_specs([args.root], root=args.root)
        async with InstanceClient(settings(args.url)) as client:
            planned = await make_planned(client, specs, instance_name="bench", stack=args.stack)
            return len(planned.plan.resource_changes), sum(
                1 for c in planned.plan.resource_changes if c.action != "no-op"
            )

    started = time.perf_counter()
    resources, changes = run_coroutine(plan())
    peak_kb = high_water_kb()
    print(
        json.dumps(
            {
                "imports_rss_mb": round(imported_mb, 1),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "wall_s": round(time.perf_counter() - started, 3),
                "resources": resources,
                "changes": changes,
            }
        )
    )


if __name__ == "__main__":
    main()
