"""Process-wide settings for a run of mtls-config, applied by the entry points that own their process.

A run is short and builds large, mostly acyclic structures (parsed specs, instance answers, plans). With
CPython's default thresholds the cycle collector starts a pass every 700 allocations and, as the run's
objects pile up, full passes over all of them: about 0.1 s of a 1000-resource plan, for almost no garbage
(reference counting frees nearly everything). Fewer, larger passes keep that time for the work; mypy makes
the same trade.

httpx imports its own command-line client (``httpx._main``) whenever click, rich and pygments are installed, as
they are beside typer: rich's syntax highlighting and pygments' lexers, about 60 ms of CPU and 2.5 MB of every
command that talks to an instance, for a program mtls-config never runs. A process of ours marks that module
absent before httpx loads, so httpx takes its own fallback (``httpx.main`` then says the CLI is not installed).

PyCryptodome (pyjks's ciphers) binds its C code through cffi when cffi is importable, as it is beside cryptography,
and then parses its C declarations with pycparser as it loads: 20 ms of every command that reads a JKS keystore.
Its other binding, ctypes, needs no parsing, and it is the one it takes itself where cffi cannot run (``python -OO``):
a process of ours marks cffi absent too. cryptography does not import it (its Rust bindings load only cffi's
C backend).

While a command talks to an instance (``cli/interrupt.run_command``: plan, apply, drift, import, ...) the cycle
collector does not run at all (``cycle_collector(False)``): its passes over the run's young objects were still a tenth
of a plan's CPU at 20 000 resources (0.6 s, every object scanned once in each of the two young generations) for
about 4000 unreachable objects found at its end. apply's writes turn it back on (``cycle_collector(True)``): their
requests' answers leave cycles holding their bodies (14 000 unreachable objects at the end of a 5000-resource
apply, 7 MB more at its peak without it). Long-running commands (``emulator serve``) keep it.

When the collector comes back on after such a block, the objects the block made and kept (a plan and its live
state) were never scanned, and the first pass would scan them all at once (0.1 s after a 20 000-resource plan):
they go to the oldest generation unscanned instead (``gc.freeze`` then ``gc.unfreeze``), where a full pass may
find what they hold later. And as the console script's process ends (``exiting``), nothing it made is scanned
again: the interpreter's last full pass would find nothing the operating system does not take back anyway (0.1 s
at 20 000 resources).

Nor is it freed: a command that has said all it has to say ends the console script's process there (``end``), its
output flushed, without freeing the run's objects one by one (a 20 000-resource plan's desired and live state and
plan: 75 ms of CPU) or taking the interpreter down module by module (25 ms more); the operating system takes the
memory back at once. mypy's console script ends the same way (``util.hard_exit``).

A command that talks to an instance runs two threads: the event loop, whose requests and answers go out and come in
between short bursts of work, and a worker that reads the specs and builds the desired state meanwhile
(``access.load_while_reading``, ``engine.make_planned``). When the loop's socket is ready it waits for the worker to
hand over the interpreter lock, which CPython's default switch interval lets it keep for 5 ms: the run's first request
went out 40-80 ms after it was made at 1000 resources, and every answer of the first round waited so, holding back
the requests queued behind it. A process of ours switches every millisecond: the loop gets its turn at once, the
worker loses nothing measurable.

Library code never calls this: importing mtls_config must not change the host program's collector or modules.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress

GC_THRESHOLDS = (50_000, 20, 20)  # CPython's defaults: (700, 10, 10)
SWITCH_INTERVAL = 0.001  # seconds; CPython's default: 0.005
UNUSED_MODULES = ("httpx._main", "cffi")
_ENDS_ITSELF = [False]  # whether this is the console script's process (``ends_itself``)


def tune_process() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)
    for name in UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: importing it raises ImportError


@contextmanager
def cycle_collector(on: bool) -> Iterator[None]:
    """The cycle collector on or off for the block (off for a command's run, on for apply's writes inside it), as it
    was after; off, reference counting still frees nearly everything a run makes."""
    enabled = gc.isenabled()
    if on:
        gc.enable()
    else:
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.isenabled():
                _age_unscanned()
            gc.enable()
        else:
            gc.disable()


def _age_unscanned() -> None:
    """Every object the collector tracks to its oldest generation, none scanned: what a block with the collector
    off made waits for a full pass, not the next young one. Left alone when the host program froze objects
    (``gc.unfreeze`` would give back its frozen ones too)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def exiting() -> None:
    """The console script's process ends now: what it made is never scanned again (``gc.freeze``), only freed."""
    gc.freeze()


def ends_itself() -> None:
    """This process is the console script's: a command that is done ends it (``end``). Never for a host program."""
    _ENDS_ITSELF[0] = True


def end(code: int) -> None:
    """In the console script's process (``ends_itself``), end it now with ``code``, once what it printed is flushed:
    its objects are not freed one by one, its modules not taken down. The caller has closed what it opened (files
    written, connections, the instance's lock): nothing else runs after this. Elsewhere (a test or a host program
    calling ``cli.main.main``), it does nothing."""
    if not _ENDS_ITSELF[0]:
        return
    for stream in (sys.stdout, sys.stderr):
        # a reader that went away (``| head``), a stream closed: nothing more can be said
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
