"""Ctrl-C (SIGINT) and SIGTERM for the commands that talk to an instance: they stop cleanly and say so.

Every such command runs its coroutine through ``run_command``. The first signal cancels the command's work at its
next ``await``: requests in flight are abandoned (for ``apply`` that is as safe as a crash, and cheaper: see
docs/architecture.md, "Why apply is safe"), a stack lock held is given back (bounded in time), and the command
raises ``Interrupted`` saying what it was doing and, for ``apply``, what was applied and what was not; the CLI
prints it and exits with 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM). A second signal stops
waiting for that clean-up (a lock not yet given back then frees itself by its lease, or at once for the next
apply on this machine). A third ends the process at once.

The handlers never raise into the code they interrupt, so no traceback can come of a signal at an awkward
moment; the one exception is a confirmation prompt waiting for input, which has nothing to clean up. The prompt
(``ask``) waits for its line in ``select`` beside a signal wakeup pipe, so a signal that comes in the instant before
the wait begins stops it too (a read begun after the signal waited for an answer).
A signal that arrives after the work is done changes nothing: the command ends as it would have.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TextIO, TypeVar

import typer

from mtls_config.concurrency import run_coroutine
from mtls_config.errors import Interrupted
from mtls_config.runtime import cycle_collector

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_BASE = 128  # a command stopped by signal N exits with 128 + N, as a shell reports it


@dataclass
class _Watch:
    """The signals one command has received, and how to stop it."""

    loop: asyncio.AbstractEventLoop
    task: asyncio.Task[None] | None = None
    seen: list[int] = field(default_factory=list)
    prompting: bool = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.seen.append(signum)
        if len(self.seen) >= 3:
            os.write(2, b"interrupted three times: stopping at once\n")
            os._exit(EXIT_BASE + self.seen[0])
        if len(self.seen) == 2:
            # os.write: printing from a handler could land inside another write to the same stream
            os.write(2, b"interrupted again: no longer waiting for the clean-up\n")
        if self.prompting:
            raise KeyboardInterrupt  # input() is waiting: there is nothing of the command's to clean up
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)


_watch: _Watch | None = None


def run_command(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion through ``concurrency.run_coroutine`` (its result never formatted), stopping it
    cleanly on SIGINT or SIGTERM (see the module docstring): a stopped command raises ``Interrupted`` with
    ``signal`` set."""
    with cycle_collector(False):  # a command's run is short and mostly acyclic (``runtime``)
        if threading.current_thread() is not threading.main_thread():  # signals are delivered to the main thread
            return run_coroutine(main)
        return run_coroutine(main, runner=_run_watched)


def _run_watched(main_task: Coroutine[Any, Any, None]) -> None:
    """The runner of a command's main task: this module's handlers of SIGINT and SIGTERM while it runs."""
    global _watch
    with asyncio.Runner() as runner:
        # The loop's worker threads (``asyncio.to_thread``: the specs read, the desired state built) never take a
        # signal: the kernel may give a process's signal to any thread that does not block it, and one taken by a
        # worker wakes no blocking call of the main thread's (a confirmation prompt then waited on, unstopped).
        runner.get_loop().set_default_executor(ThreadPoolExecutor(initializer=_signals_blocked))
        watch = _Watch(runner.get_loop())
        previous = {sig: signal.signal(sig, watch) for sig in SIGNALS}
        outer, _watch = _watch, watch
        try:
            watch.task = runner.get_loop().create_task(main_task)
            try:
                runner.get_loop().run_until_complete(watch.task)
            except (asyncio.CancelledError, Interrupted, typer.Abort) as exc:
                if not watch.seen:
                    raise
                raise _interrupted(exc, watch.seen) from None
        finally:
            _watch = outer
            runner.close()  # the tasks left (a release cut short by a second signal) are cancelled here
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _signals_blocked() -> None:
    """In a worker thread of the command's loop: SIGINT and SIGTERM go to the main thread only."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def _interrupted(exc: BaseException, seen: list[int]) -> Interrupted:
    """The ``Interrupted`` the command raised, found also behind a cancellation that cut its clean-up short; else
    one saying only that the command was stopped before it had begun writing."""
    found: BaseException | None = exc
    while found is not None and not isinstance(found, Interrupted):
        found = found.__context__
    error = found if isinstance(found, Interrupted) else Interrupted("stopped before anything was written")
    error.signal = seen[0]
    error.signals = len(seen)
    return error


@contextmanager
def prompting() -> Iterator[None]:
    """Around a prompt that waits for a person's answer: a signal then ends the wait at once (the handler cannot
    otherwise reach the event loop, which the prompt holds)."""
    watch = _watch
    if watch is None:
        yield
        return
    try:
        watch.prompting = True  # in the block: a signal that comes right after is the block's to handle
        yield
    except (typer.Abort, KeyboardInterrupt):  # the prompt makes an Abort of the handler's KeyboardInterrupt
        # (a KeyboardInterrupt that reached the prompt before its own handling began comes as it is)
        if not watch.seen:
            raise
        raise Interrupted("stopped at the confirmation prompt, before anything was written") from None
    finally:
        watch.prompting = False


def ask(text: str, default: str) -> str:
    """A question for the person at the terminal (``text [default]: ``, in ``prompting``): the line typed, or
    ``default`` for an empty one; end of input is ``typer.Abort``, as click's prompt has it."""
    try:
        # the question in the block: a Ctrl-C that comes as soon as it shows is the prompt's, not the command's
        typer.echo(f"{text} [{default}]: ", nl=False)
        _wait_for_a_line(sys.stdin)
        line = sys.stdin.readline()
    except KeyboardInterrupt:  # the handler's, at the prompt
        typer.echo()
        raise typer.Abort() from None
    if not line:
        typer.echo()
        raise typer.Abort()
    return line.rstrip("\r\n") or default


def _wait_for_a_line(stream: TextIO) -> None:
    """Until ``stream`` (a terminal) has a line to read, in ``select``, which a signal's wakeup byte ends. A signal
    that comes in just before the wait begins is seen there (its handler runs at the next instruction, and raises at
    a prompt); a read begun after such a signal waited on for an answer nobody would give (the instant between a
    prompt's last instruction and its read: 3 of 180 immediate Ctrl-Cs under load). Off the main thread, or on a stream
    without a file, there is nothing to wait for: the read waits."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    wake, woken = os.pipe()
    os.set_blocking(woken, False)
    previous = signal.set_wakeup_fd(woken)
    try:
        while fd not in select.select([fd, wake], [], [])[0]:
            os.read(wake, 64)  # a signal's byte: its handler has run, or runs at the next instruction
    finally:
        signal.set_wakeup_fd(previous)
        os.close(wake)
        os.close(woken)


def exit_code(error: Interrupted) -> int:
    return EXIT_BASE + error.signal


def signal_name(error: Interrupted) -> str:
    try:
        return signal.Signals(error.signal).name
    except ValueError:
        return f"signal {error.signal}"
