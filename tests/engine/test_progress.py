"""An apply without a terminal (a CI log, a pipe) says what it is doing as it goes: one line per phase, with counts,
and a line every few seconds while a phase runs; on a terminal it keeps the progress bar.

The end-to-end case runs the console script against an emulated instance with latency on a real socket and reads
its stderr as the lines come: their order, their counts, and that they arrive while the apply is still running (not
how long anything takes)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from mtls_config.cli.progress import ApplyProgress
from mtls_config.plan import ResourceChange
from tests.conftest import copy_example
from tests.engine.conftest import ADMIN, serve


def change(kind: str, name: str, action: str = "create") -> ResourceChange:
    return ResourceChange(address=f"{kind}/{name}", kind=kind, name=name, table="t", action=action)  # type: ignore[arg-type]


CHANGES = [
    change("KeyStore", "a"),
    change("TrustStoreCert", "b", "update"),
    change("ProtocolProfile", "p"),
    change("MessageBinding", "m", "no-op"),
    change("MessageBinding", "gone", "delete"),
    change("KeyStore", "old", "delete"),
]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def without_terminal() -> tuple[ApplyProgress, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    progress = ApplyProgress(
        terminal=False, console=Console(file=io.StringIO()), say=lines.append, clock=clock, every=5.0
    )
    return progress, lines, clock


def test_a_line_per_phase_with_counts_in_the_order_apply_runs_them() -> None:
    progress, lines, clock = without_terminal()
    progress.reading(6)
    clock.now += 7
    progress.tick()
    progress.writing(CHANGES)
    for address, status in [
        ("KeyStore/a", "applied"),
        ("TrustStoreCert/b", "failed"),
        ("ProtocolProfile/p", "skipped"),
        ("MessageBinding/gone", "applied"),
        ("KeyStore/old", "applied"),
    ]:
        clock.now += 1
        progress.advance(address, status)
    assert lines == [
        "apply: reading the instance (6 resources in the specs)",
        "apply: reading the instance (7 s)",
        # the no-op is no change; the stages in their order, the deletions last
        "apply: writing 5 changes (certificates 2, protocol profiles 1, deletions 2)",
        "apply: certificates 2/2 done, 1 failed (9 s)",
        "apply: protocol profiles 1/1 done, 1 failed (10 s)",
        "apply: deletions 2/2 done, 0 failed (12 s)",
    ]


def test_a_tick_says_the_phase_under_way() -> None:
    progress, lines, clock = without_terminal()
    progress.reading(6)
    progress.writing(CHANGES)
    progress.advance("KeyStore/a", "applied")
    clock.now += 5
    progress.tick()
    progress.advance("TrustStoreCert/b", "applied")
    clock.now += 5
    progress.tick()
    assert lines[-3:] == [
        "apply: certificates 1/2 done, 0 failed (5 s)",
        "apply: certificates 2/2 done, 0 failed (5 s)",
        "apply: protocol profiles 0/1 done, 0 failed (10 s)",
    ]


def test_ticking_says_it_every_interval_while_the_apply_runs() -> None:
    lines: list[str] = []
    progress = ApplyProgress(terminal=False, console=Console(file=io.StringIO()), say=lines.append, every=0.01)

    async def apply() -> None:
        async with progress.ticking():
            progress.reading(1)
            progress.writing([change("KeyStore", "a")])
            while len(lines) < 5:
                await asyncio.sleep(0.01)

    asyncio.run(apply())
    ticks = lines[2:]
    assert ticks and all(line.startswith("apply: certificates 0/1 done, 0 failed (") for line in ticks)
    count = len(lines)
    asyncio.run(asyncio.sleep(0.05))
    assert len(lines) == count  # the ticker stopped with the apply


def test_on_a_terminal_a_bar_and_no_lines() -> None:
    lines: list[str] = []
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    progress = ApplyProgress(terminal=True, console=console, say=lines.append)
    progress.reading(8)
    progress.writing([change("KeyStore", str(i)) for i in range(8)])
    assert progress.bar is not None
    for i in range(8):
        progress.advance(f"KeyStore/{i}", "applied")
    progress.stop()
    progress.tick()
    assert lines == [] and "8/8" in screen.getvalue()


# --- end to end: the console script in a pipe ----------------------------------------------------------------------


@pytest.fixture
def slow_instance() -> Iterator[str]:
    with serve(latency_ms=150) as server:
        yield server.url


def _console_script() -> list[str]:
    script = Path(sys.executable).parent / "mtls-config"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from mtls_config.cli.main import run; run()"]


def test_an_apply_in_a_pipe_says_each_phase_while_it_runs(tmp_path: Path, slow_instance: str) -> None:
    stack = copy_example(tmp_path / "two-partners")
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "TTY_COMPATIBLE"}}
    env.update(SN_USERNAME=ADMIN[0], SN_PASSWORD=ADMIN[1], NO_COLOR="1")
    process = subprocess.Popen(
        [*_console_script(), "apply", "--auto-approve", "--instance", slow_instance],
        cwd=stack,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[tuple[str, bool]] = []  # each line, and whether the apply was still running when it came
    for line in process.stderr:
        seen.append((line.rstrip("\n"), process.poll() is None))
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out
    lines = [line for line, _ in seen if line.startswith("apply: ")]
    phases = [line.split(" (")[0] for line in lines if " done, " in line]
    assert lines[0] == "apply: reading the instance (8 resources in the specs)"
    assert "apply: writing 8 changes (certificates 4, protocol profiles 2, message bindings 2)" in lines
    assert phases[-3:] == [
        "apply: certificates 4/4 done, 0 failed",
        "apply: protocol profiles 2/2 done, 0 failed",
        "apply: message bindings 2/2 done, 0 failed",
    ]
    # Every line of a phase that finished came while the apply went on: nothing waits for the end.
    finished = [running for line, running in seen if line.startswith("apply: certificates 4/4")]
    assert finished == [True]
    assert "8 applied, 0 failed, 0 skipped" in out
