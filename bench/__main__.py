"""``python -m bench``: the benchmark of issue 8. Each size runs in its own process (``bench.worker``) against
a fresh emulator process; results go to ``bench/results/<name>.json`` and a plot beside it.

    python -m bench                      # N = 10, 100, 1000, 5000 at 100 ms per request
    python -m bench --quick              # N = 40, 120 at 5 ms: a smoke run (CI)
    python -m bench --sizes 1000 --latency-ms 250 --name n1000-250ms
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.keystore import measure_keystore
from bench.report import plot, table, targets, targets_text

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (10, 100, 1000, 5000)
QUICK_SIZES = (40, 120)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "git_commit": commit,
    }


def run_worker(n: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.worker", str(n), "--latency-ms", str(args.latency_ms), "--out", str(out)]
    command += ["--repeat", str(args.repeat)]
    if not args.no_memory:
        command.append("--memory")
    if args.no_baseline:
        command.append("--no-baseline")
    if not args.quiet:
        command.append("--progress")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    subprocess.run(command, cwd=REPO, env=env, check=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated stack sizes (default 10,100,1000,5000)")
    parser.add_argument("--latency-ms", type=float, help="injected latency per request (default 100; quick: 5)")
    parser.add_argument("--quick", action="store_true", help="small sizes, low latency: a smoke run for CI")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each read-only scenario, the fastest kept (default 3)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-GET-per-record baseline")
    parser.add_argument("--no-keystore", action="store_true", help="skip the keystore inspect/lint timing")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default: quick or full, plus the latency)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.latency_ms is None:
        args.latency_ms = 5.0 if args.quick else 100.0
    name = args.name or f"{'quick' if args.quick else 'full'}-{args.latency_ms:g}ms"
    args.out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    meta: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "latency_ms": args.latency_ms,
        "repeat": args.repeat,
        "sizes": list(sizes),
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
    }
    runs = []
    with tempfile.TemporaryDirectory(prefix="mtls-bench-") as tmp:
        for n in sizes:
            if not args.quiet:
                print(f"N={n}: {args.latency_ms:g} ms per request", flush=True)
            runs.append(run_worker(n, args, Path(tmp) / f"n{n}.json"))
    results: dict[str, Any] = {"meta": meta, "runs": runs}
    if not args.no_keystore:
        results["keystore"] = measure_keystore()
    meta["load_average_after"] = os.getloadavg()
    meta["duration_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = targets(results)

    out = args.out_dir / f"{name}.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(table(results))
    print()
    print(targets_text(results["targets"]))
    print(f"\nresults written to {out} ({meta['duration_s']} s in all)")
    if not args.no_plot:
        print(plot(results, args.out_dir / f"{name}.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
