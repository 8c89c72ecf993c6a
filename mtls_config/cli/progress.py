"""What a running apply shows while it writes, on stderr: a progress bar on a terminal; without one (a CI log, a
pipe) one line per phase and, while a phase runs, a line at least every few seconds, with counts:

    apply: reading the instance (8 resources in the specs)
    apply: writing 8 changes (certificates 4, protocol profiles 2, message bindings 2)
    apply: certificates 3/4 done, 0 failed (5 s)
    apply: certificates 4/4 done, 0 failed (6 s)
    apply: protocol profiles 2/2 done, 0 failed (7 s)
    ...

A phase is a stage of the apply order (``Kind.stage_name``: certificates, protocol profiles, message bindings),
then the deletions. The counts come from the runner's progress callback, one call per resource finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from mtls_config.wording import plural

if TYPE_CHECKING:
    from mtls_config.plan import ResourceChange

EVERY_SECONDS = 5.0  # without a terminal: a line at least this often while a phase runs
BAR_FROM = 6  # on a terminal: a bar for applies of at least this many changes (a shorter one is over at once)
DELETIONS = "deletions"


@dataclass
class Phase:
    name: str
    total: int
    done: int = 0
    failed: int = 0

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def counts(self) -> str:
        return f"{self.name} {self.done}/{self.total} done, {self.failed} failed"


def phase_of(change: ResourceChange) -> str:
    # The kinds load with the engine, after a run's first request (``fleet.load_with_engine``): not at import.
    from mtls_config.resources.registry import kind_named

    return DELETIONS if change.action == "delete" else kind_named(change.kind).stage_name


class ApplyProgress:
    """Progress of one apply (see the module). ``terminal``: stderr is a terminal (a bar); otherwise lines, each
    printed by ``say``. ``clock`` and ``every`` are the time source and the interval of the lines."""

    def __init__(
        self,
        *,
        terminal: bool,
        console: Console,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = EVERY_SECONDS,
        label: str = "apply",
    ) -> None:
        self.terminal = terminal
        self.console = console
        self.say = say or (lambda line: console.print(line, markup=False))
        self.clock = clock
        self.every = every
        self.label = label
        self.started = clock()
        self.phases: list[Phase] = []
        self.phase_by_address: dict[str, Phase] = {}
        self.bar: Progress | None = None
        self.task: object = None
        self.writing_started = False

    # -- what the CLI calls ----------------------------------------------------------------------------------------

    def reading(self, resources: int) -> None:
        """Reading the instance (the plan apply makes first)."""
        if not self.terminal:
            self.say(f"{self.label}: reading the instance ({plural(resources, 'resource')} in the specs)")

    def writing(self, changes: Sequence[ResourceChange]) -> None:
        """About to write ``changes`` (the plan's, no-ops included: they are left out here)."""
        self.writing_started = True
        for change in changes:
            if change.action == "no-op":
                continue
            name = phase_of(change)
            phase = next((p for p in self.phases if p.name == name), None)
            if phase is None:
                phase = Phase(name, 0)
                self.phases.append(phase)
            phase.total += 1
            self.phase_by_address[change.address] = phase
        # The runner's order: the stages, then the deletions.
        self.phases.sort(key=lambda p: (p.name == DELETIONS, self._stage(p)))
        total = sum(p.total for p in self.phases)
        if self.terminal:
            if total >= BAR_FROM:
                self.bar = Progress(
                    TextColumn(self.label), BarColumn(), MofNCompleteColumn(), console=self.console, transient=True
                )
                self.task = self.bar.add_task(self.label, total=total)
                self.bar.start()
            return
        parts = ", ".join(f"{p.name} {p.total}" for p in self.phases)  # a phase's name is its plural: no '1 xs'
        self.say(f"{self.label}: writing {plural(total, 'change')} ({parts})")

    def advance(self, address: str, status: str) -> None:
        """The runner's progress callback: ``address`` finished with ``status`` (applied, failed, skipped)."""
        if self.bar is not None:
            self.bar.advance(self.task)  # type: ignore[arg-type]
        phase = self.phase_by_address.get(address)
        if phase is None:
            return
        phase.done += 1
        if status != "applied":
            phase.failed += 1
        if phase.finished and not self.terminal:
            self._line(phase)

    def tick(self) -> None:
        """A line for what is under way (the reading, or the first unfinished phase): every ``every`` seconds."""
        if self.terminal:
            return
        if not self.writing_started:
            self.say(f"{self.label}: reading the instance ({self._elapsed()})")
            return
        current = next((p for p in self.phases if not p.finished), None)
        if current is not None:
            self._line(current)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    @contextlib.asynccontextmanager
    async def ticking(self) -> AsyncIterator[None]:
        """While the apply runs (reading, then writing): ``tick`` every ``every`` seconds (without a terminal).
        Leaving it stops the bar."""

        async def ticker() -> None:
            while True:
                await asyncio.sleep(self.every)
                self.tick()

        task = None if self.terminal else asyncio.create_task(ticker())
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.stop()

    # -- inside ----------------------------------------------------------------------------------------------------

    def _line(self, phase: Phase) -> None:
        self.say(f"{self.label}: {phase.counts()} ({self._elapsed()})")

    def _elapsed(self) -> str:
        return f"{self.clock() - self.started:.0f} s"

    @staticmethod
    def _stage(phase: Phase) -> int:
        from mtls_config.resources.registry import KINDS

        return next((k.stage for k in KINDS if k.stage_name == phase.name), 0)
