"""The commands users run, as processes: each ``mtls-config`` command line in a fresh interpreter, against the
emulator served over a real socket on 127.0.0.1 with an injected latency per request, side by side with

  floor     a fresh Python process that makes the plan's reads (one request per table, all at once) with
            httpx and parses the answers, nothing else (``bench.floor``)
  baseline  a fresh process making one GET per owned record, 10 in flight (what per-resource providers do)

and the start-up of ``--version``, ``--help`` and ``validate`` of the example stack beside the import floor,
``python -c "import httpx, pydantic, cryptography, yaml"``.

For each process: wall time; CPU time (user + system) of the child from ``os.wait4``; peak resident set as
``/usr/bin/time`` reports it (its ``%M``, the "Maximum resident set size" of ``-v``) when that program exists,
else ``ru_maxrss`` from ``wait4`` (which on Linux also counts the parent's resident set at the child's start:
said in the results as ``rss_source``); requests as the instance counted them (its request log).

Read-only scenarios run ``repeat`` times, the fastest kept (the least disturbed by whatever else the machine
does), every run's figures in ``notes``. Never imports the emulator (``bench.server`` runs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.floor import ADMIN
from bench.measure import kind_of
from bench.server import REPO, EmulatorProcess
from bench.stacks import EXAMPLE, write_stack
from mtls_config.client import InstanceClient
from mtls_config.concurrency import run_coroutine
from mtls_config.inventory_store import read_inventory

STACK = "bench"
TIME = Path("/usr/bin/time")
IMPORT_FLOOR = "import httpx, pydantic, cryptography, yaml"


@dataclass
class ProcessMeasurement:
    scenario: str
    variant: str  # ours | floor | baseline | import floor
    n: int | None  # None: start-up, independent of the stack
    latency_ms: float | None
    command: str  # what ran, for the reader (paths shortened)
    exit_code: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system of the child (and of /usr/bin/time around it: about 1 ms)
    peak_rss_mb: float = 0.0
    requests: int = 0  # round trips the instance received (a Batch API call counts once)
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Spawned:
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_kb: int
    stdout: str
    stderr: str


def rss_source() -> str:
    return "/usr/bin/time %M" if TIME.exists() else "wait4 ru_maxrss"


def command_line() -> list[str]:
    """How to start ``mtls-config``: the console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "mtls-config"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from mtls_config.cli.main import run; run()"]


def spawn(argv: list[str], *, cwd: Path, env: dict[str, str]) -> Spawned:
    """Run ``argv`` to its end in a fresh process; its output goes to files (as a CI log would take it)."""
    with tempfile.TemporaryDirectory(prefix="mtls-bench-proc-") as tmp:
        out, err, rss = Path(tmp) / "out", Path(tmp) / "err", Path(tmp) / "rss"
        wrapped = [str(TIME), "-f", "%M", "-o", str(rss), *argv] if TIME.exists() else argv
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started = time.perf_counter()
            process = subprocess.Popen(
                wrapped, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
            )
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        peak_kb = usage.ru_maxrss
        if TIME.exists():
            # GNU time writes "Command exited with non-zero status N" before the format's line when it is so
            peak_kb = int(rss.read_text(encoding="ascii").split()[-1])
        return Spawned(
            exit_code=process.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            peak_rss_kb=peak_kb,
            stdout=out.read_text(encoding="utf-8", errors="replace"),
            stderr=err.read_text(encoding="utf-8", errors="replace"),
        )


def measure_process(
    scenario: str,
    variant: str,
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    expect: int,
    n: int | None = None,
    latency_ms: float | None = None,
    emulator: EmulatorProcess | None = None,
    repeat: int = 1,
    shown: str = "",
) -> tuple[ProcessMeasurement, str]:
    """Run a command ``repeat`` times, keep the fastest; each run's exit code must be ``expect``.
    Returns the measurement and the kept run's stdout."""
    best: tuple[ProcessMeasurement, str] | None = None
    walls, cpus = [], []
    for _ in range(repeat):
        if emulator is not None:
            emulator.clear_log()
        done = spawn(argv, cwd=cwd, env=env)
        if done.exit_code != expect:
            raise RuntimeError(
                f"{scenario}: {shown or ' '.join(argv)} exited {done.exit_code}, expected {expect}:\n"
                f"{done.stderr[-2000:] or done.stdout[-2000:]}"
            )
        log = emulator.log() if emulator is not None else []
        m = ProcessMeasurement(
            scenario,
            variant,
            n,
            latency_ms,
            shown or " ".join(argv),
            exit_code=done.exit_code,
            wall_s=round(done.wall_s, 4),
            cpu_s=round(done.cpu_s, 4),
            peak_rss_mb=round(done.peak_rss_kb / 1024, 1),
            requests=len(log),
            requests_by_kind=dict(sorted(Counter(kind_of(e) for e in log).items())),
        )
        walls.append(m.wall_s)
        cpus.append(m.cpu_s)
        if best is None or m.wall_s < best[0].wall_s:
            best = (m, done.stdout)
    assert best is not None
    if repeat > 1:
        best[0].notes.update(walls_s=walls, cpus_s=cpus)
    return best


# Not passed on: colours, the instance, and PYTHONDONTWRITEBYTECODE (a user's Python keeps its bytecode; with
# it set beside PYTHONPYCACHEPREFIX every process compiled every module it imported, stdlib included: the
# import floor measured 0.65 s of CPU instead of 0.15 s).
NOT_PASSED = {"NO_COLOR", "FORCE_COLOR", "SN_INSTANCE", "PYTHONDONTWRITEBYTECODE"}


def python_env() -> dict[str, str]:
    """The environment of every measured process: the repository importable (bench.floor), no colours, a
    fixed width, the instance's credentials (the emulator's default user), and bytecode kept as a user's
    Python keeps it (``compile_bytecode`` writes it all first)."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["COLUMNS"] = "120"
    env["SN_USERNAME"], env["SN_PASSWORD"] = ADMIN
    return env


def compile_bytecode() -> str:
    """Compile the standard library, the installed packages, the tool and the bench where the measured processes
    look for bytecode (``PYTHONPYCACHEPREFIX`` when set, else beside the sources), so that no measured process
    compiles a module: what a user's installed tool does after its first run. Returns where it went."""
    env = python_env()
    paths = {sysconfig.get_path(key) for key in ("stdlib", "purelib", "platlib")} | {
        str(REPO / "mtls_config"),
        str(REPO / "bench"),
    }
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *sorted(paths)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    prefix = env.get("PYTHONPYCACHEPREFIX")
    return (
        f"compiled before measuring into {prefix} (PYTHONPYCACHEPREFIX)"
        if prefix
        else "compiled before measuring, beside the sources"
    )


def measure_startup(repeat: int, progress: Callable[[str], None] = lambda _: None) -> list[ProcessMeasurement]:
    """CPU of start-up: the import floor, ``--version``, ``--help``, ``validate`` of the example stack (best of
    ``repeat``: the least disturbed run; start-up is short enough for one busy moment to double it)."""
    env = python_env()
    mtls = command_line()
    runs = [
        ("import floor", "import floor", [sys.executable, "-c", IMPORT_FLOOR], f'python -c "{IMPORT_FLOOR}"'),
        ("--version", "ours", [*mtls, "--version"], "mtls-config --version"),
        ("--help", "ours", [*mtls, "--help"], "mtls-config --help"),
        ("validate (example)", "ours", [*mtls, "validate", str(EXAMPLE)], "mtls-config validate <example>"),
    ]
    out = []
    for scenario, variant, argv, shown in runs:
        progress(f"start-up: {shown}")
        best: ProcessMeasurement | None = None
        cpus = []
        for _ in range(repeat):
            m, _ = measure_process(scenario, variant, argv, cwd=REPO, env=env, expect=0, shown=shown)
            cpus.append(m.cpu_s)
            if best is None or m.cpu_s < best.cpu_s:  # judged on CPU: keep the run with the least
                best = m
        assert best is not None
        best.notes["cpus_s"] = cpus
        out.append(best)
    return out


def write_project(root: Path, n: int, pems: list[str], *, change_every: int = 0) -> int:
    edited = write_stack(root, n, change_every=change_every, pems=pems)
    (root / "mtls-config.yaml").write_text(f"stack: {STACK}\n", encoding="utf-8")
    return edited


def owned_records(url: str) -> list[tuple[str, str]]:
    """(table, sys_id) of every record the stack's inventory owns: what the baseline GETs one by one."""
    from bench.scenarios import settings

    async def read() -> list[tuple[str, str]]:
        async with InstanceClient(settings(url)) as client:
            inventory, _, _ = await read_inventory(client, STACK)
        return sorted((rec.table, rec.sys_id) for entry in inventory.resources.values() for rec in entry.records)

    return run_coroutine(read())


def measure_size(
    n: int,
    latency_ms: float,
    *,
    workdir: Path,
    pems: list[str],
    repeat: int,
    baseline: bool,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Every command at one size and latency, against a fresh emulator process."""
    from bench.scenarios import baseline_requests, floor_requests

    root, edited_root = workdir / f"n{n}-{latency_ms:g}ms", workdir / f"n{n}-{latency_ms:g}ms-edited"
    write_project(root, n, pems)
    edited = write_project(edited_root, n, pems, change_every=10)
    env = python_env()
    mtls = command_line()
    measurements: list[ProcessMeasurement] = []
    checks: dict[str, Any] = {"edited": edited}
    with EmulatorProcess(latency_ms=latency_ms) as emu:
        env["SN_INSTANCE"] = emu.url

        def step(
            scenario: str, variant: str, argv: list[str], *, cwd: Path, expect: int, times: int, shown: str
        ) -> str:
            progress(f"N={n} {latency_ms:g} ms: {scenario} ({variant})")
            m, stdout = measure_process(
                scenario, variant, argv, cwd=cwd, env=env, expect=expect, n=n, latency_ms=latency_ms,
                emulator=emu, repeat=times, shown=shown,
            )  # fmt: skip
            measurements.append(m)
            return stdout

        def summary(stdout: str) -> str:
            """The command's last line of substance (apply ends with where its journal is)."""
            lines = [line.strip() for line in stdout.splitlines() if line.strip() and not line.startswith("Journal:")]
            return lines[-1] if lines else ""

        for scenario, argv, cwd, expect, times in (
            ("validate", ["validate"], root, 0, repeat),
            ("plan (all create)", ["plan"], root, 2, repeat),
            ("apply (all create)", ["apply", "--auto-approve"], root, 0, 1),
            ("plan (no changes)", ["plan"], root, 0, repeat),
            ("plan (10% changed)", ["plan"], edited_root, 2, repeat),
            ("apply (10% update)", ["apply", "--auto-approve"], edited_root, 0, 1),
            # the original specs against the edited instance: every edited resource has drifted
            ("drift (10% drifted)", ["drift"], root, 2, repeat),
        ):
            shown = "mtls-config " + " ".join(argv)
            checks[scenario] = summary(
                step(scenario, "ours", [*mtls, *argv], cwd=cwd, expect=expect, times=times, shown=shown)
            )

        jobs = workdir / "jobs"
        jobs.mkdir(exist_ok=True)
        floor_job = jobs / f"floor-{n}-{latency_ms:g}.json"
        floor_job.write_text(json.dumps({"mode": "floor", "requests": floor_requests(STACK)}), encoding="utf-8")
        reader = [sys.executable, "-m", "bench.floor", emu.url]
        out = step(
            "plan read", "floor", [*reader, str(floor_job)], cwd=REPO, expect=0, times=repeat,
            shown="python -m bench.floor (the plan's GETs at once)",
        )  # fmt: skip
        checks["floor rows"] = json.loads(out)["rows"]
        if baseline:
            records = owned_records(emu.url)
            base_job = jobs / f"baseline-{n}-{latency_ms:g}.json"
            base_job.write_text(
                json.dumps({"mode": "baseline", "requests": baseline_requests(records)}), encoding="utf-8"
            )
            out = step(
                "plan read", "baseline", [*reader, str(base_job)], cwd=REPO, expect=0, times=1,
                shown="python -m bench.floor (a GET per record, 10 in flight)",
            )  # fmt: skip
            checks["baseline records"] = json.loads(out)["rows"]
    for folder in (root, edited_root):
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "n": n,
        "latency_ms": latency_ms,
        "measurements": [asdict(m) for m in measurements],
        "checks": checks,
    }
