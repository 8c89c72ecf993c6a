"""``python -m bench``: the commands users run, as processes, beside the whole-process floor and the per-record
baseline (issue 18, ``bench.commands``); ``python -m bench --engine``: the engine in-process (issue 8), each
size in its own process (``bench.worker``). Both against a fresh emulator process per size and latency;
results go to ``bench/results/<name>.json`` and a plot beside it.

    python -m bench                      # commands: N = 100, 1000, 5000, 20000 at 100 and 250 ms per request
    python -m bench --quick              # commands: N = 40 at 5 ms, a smoke run (CI)
    python -m bench --sizes 1000 --latency-ms 100,250 --name n1000
    python -m bench --engine             # engine: N = 10, 100, 1000, 5000 at 100 ms
    python -m bench --engine --quick     # engine: N = 40, 120 at 5 ms (CI)
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
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.commands import compile_bytecode, measure_size, measure_startup, rss_source
from bench.keystore import measure_keystore
from bench.report import commands_plot, commands_table, commands_targets, plot, table, targets, targets_text
from bench.stacks import counts, mint_pems

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (10, 100, 1000, 5000)
QUICK_SIZES = (40, 120)
COMMAND_SIZES = (100, 1000, 5000, 20000)
COMMAND_LATENCIES_MS = (100.0, 250.0)
QUICK_COMMAND_SIZES = (40,)


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
    parser.add_argument("--engine", action="store_true", help="the engine in-process (issue 8), not the commands")
    parser.add_argument("--sizes", help="comma-separated stack sizes (commands: 100,1000,5000,20000; engine: 10..5000)")
    parser.add_argument(
        "--latency-ms", help="injected latency per request, comma-separated for the commands (default 100,250; "
        "engine 100; quick 5)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small sizes, low latency: a smoke run for CI")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each read-only scenario, the fastest kept (default 3)"
    )
    parser.add_argument("--startup-repeat", type=int, help="runs of each start-up command, the least CPU kept (9)")
    parser.add_argument("--no-memory", action="store_true", help="engine: skip the tracemalloc pass")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-GET-per-record baseline")
    parser.add_argument("--no-keystore", action="store_true", help="engine: skip the keystore inspect/lint timing")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", help="result file name (default: commands[-quick], or quick/full plus the latency)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    return engine_main(args, command) if args.engine else commands_main(args, command)


def commands_main(args: argparse.Namespace, command: str) -> int:
    sizes = _ints(args.sizes) or (QUICK_COMMAND_SIZES if args.quick else COMMAND_SIZES)
    latencies = _floats(args.latency_ms) or ((5.0,) if args.quick else COMMAND_LATENCIES_MS)
    startup_repeat = args.startup_repeat or (3 if args.quick else 9)
    repeat = args.repeat
    name = args.name or ("commands-quick" if args.quick else "commands")

    def say(text: str) -> None:
        if not args.quiet:
            print(f"  {text}", flush=True)

    started = time.perf_counter()
    bytecode = "as the environment has it (--quick)" if args.quick else compile_bytecode()
    meta = _meta(
        "commands",
        command,
        latencies_ms=list(latencies),
        sizes=list(sizes),
        repeat=repeat,
        startup_repeat=startup_repeat,
        rss_source=rss_source(),
        bytecode=bytecode,
    )
    startup = measure_startup(startup_repeat, say)
    pems = mint_pems(counts(max(sizes))[2])
    runs = []
    with tempfile.TemporaryDirectory(prefix="mtls-bench-") as tmp:
        for latency in latencies:
            for n in sizes:
                if not args.quiet:
                    print(f"N={n}: {latency:g} ms per request (load average {os.getloadavg()[0]:.2f})", flush=True)
                load = os.getloadavg()
                run_started = time.perf_counter()
                run = measure_size(
                    n, latency, workdir=Path(tmp), pems=pems, repeat=repeat, baseline=not args.no_baseline, progress=say
                )
                run["load_average_at_start"] = load
                run["duration_s"] = round(time.perf_counter() - run_started, 1)
                runs.append(run)
    results: dict[str, Any] = {"meta": meta, "startup": [asdict(m) for m in startup], "runs": runs}
    return _finish(results, started, args, name, commands_table, commands_targets, commands_plot)


def engine_main(args: argparse.Namespace, command: str) -> int:
    sizes = _ints(args.sizes) or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    latencies = _floats(args.latency_ms) or ((5.0,) if args.quick else (100.0,))
    if len(latencies) != 1:
        raise SystemExit("python -m bench --engine: one --latency-ms at a time")
    args.latency_ms = latencies[0]
    name = args.name or f"{'quick' if args.quick else 'full'}-{args.latency_ms:g}ms"

    started = time.perf_counter()
    meta = _meta("engine", command, latency_ms=args.latency_ms, repeat=args.repeat, sizes=list(sizes))
    runs = []
    with tempfile.TemporaryDirectory(prefix="mtls-bench-") as tmp:
        for n in sizes:
            if not args.quiet:
                print(f"N={n}: {args.latency_ms:g} ms per request", flush=True)
            runs.append(run_worker(n, args, Path(tmp) / f"n{n}.json"))
    results: dict[str, Any] = {"meta": meta, "runs": runs}
    if not args.no_keystore:
        results["keystore"] = measure_keystore()
    return _finish(results, started, args, name, table, targets, plot)


def _meta(kind: str, command: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "started_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **fields,
        "machine": machine(),
        "load_average_before": os.getloadavg(),
        "command": command,
    }


def _finish(
    results: dict[str, Any],
    started: float,
    args: argparse.Namespace,
    name: str,
    table_of: Callable[[dict[str, Any]], str],
    targets_of: Callable[[dict[str, Any]], list[dict[str, Any]]],
    plot_of: Callable[[dict[str, Any], Path], str],
) -> int:
    """Close the run's figures (load after, duration, targets), write the JSON, print the table and plot."""
    meta = results["meta"]
    meta["load_average_after"] = os.getloadavg()
    meta["duration_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = targets_of(results)
    out = args.out_dir / f"{name}.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(table_of(results))
    print()
    print(targets_text(results["targets"]))
    print(f"\nresults written to {out} ({meta['duration_s']} s in all)")
    if not args.no_plot:
        print(plot_of(results, args.out_dir / f"{name}.png"))
    return 0


def _ints(text: str | None) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",")) if text else ()


def _floats(text: str | None) -> tuple[float, ...]:
    return tuple(float(s) for s in text.split(",")) if text else ()


if __name__ == "__main__":
    raise SystemExit(main())
