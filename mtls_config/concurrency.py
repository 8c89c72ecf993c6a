"""Structured concurrency for the engine's fan-out reads: all succeed, or the rest are cancelled. And
``run_coroutine``, the way a synchronous caller (the CLI, the benchmark) runs a coroutine to its result.

``asyncio.gather`` raises the first failure and leaves its siblings running until the loop shuts down (a
read still waiting to connect is then destroyed unawaited). ``gather`` here cancels and awaits them before
re-raising the first failure, so a failed run stops cleanly and nothing is left in flight.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, overload

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
F = TypeVar("F")
G = TypeVar("G")
T = TypeVar("T")


@overload
async def gather(a: Awaitable[A], b: Awaitable[B], /) -> tuple[A, B]: ...
@overload
async def gather(a: Awaitable[A], b: Awaitable[B], c: Awaitable[C], /) -> tuple[A, B, C]: ...
@overload
async def gather(a: Awaitable[A], b: Awaitable[B], c: Awaitable[C], d: Awaitable[D], /) -> tuple[A, B, C, D]: ...
@overload
async def gather(
    a: Awaitable[A], b: Awaitable[B], c: Awaitable[C], d: Awaitable[D], e: Awaitable[E], /
) -> tuple[A, B, C, D, E]: ...
@overload
async def gather(
    a: Awaitable[A], b: Awaitable[B], c: Awaitable[C], d: Awaitable[D], e: Awaitable[E], f: Awaitable[F], /
) -> tuple[A, B, C, D, E, F]: ...
@overload
async def gather(
    a: Awaitable[A],
    b: Awaitable[B],
    c: Awaitable[C],
    d: Awaitable[D],
    e: Awaitable[E],
    f: Awaitable[F],
    g: Awaitable[G],
    /,
) -> tuple[A, B, C, D, E, F, G]: ...
async def gather(*aws: Awaitable[Any]) -> tuple[Any, ...]:
    return tuple(await gather_all(aws))


async def gather_all(aws: Any) -> list[Any]:
    """Await every awaitable concurrently; results in order. On a failure the others are cancelled first."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def settle(task: asyncio.Future[Any]) -> None:
    """Leave nothing in flight when a run stops early (a spec error raised while its reads were out): ``task``
    cancelled unless done, and awaited, whatever it raises."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def run_coroutine(
    main: Coroutine[Any, Any, T], *, runner: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
) -> T:
    """``asyncio.run(main)``, returning ``main``'s result without the main task ever holding it.

    Python 3.11's ``asyncio.run`` formats the ``repr()`` of its main task twice as it puts the SIGINT handler
    back (the handler it installed is a partial holding the task; ``signal`` turns handlers into its enum and
    builds a ValueError message for one that is not a member). A finished task's repr includes its result's:
    for a plan, the whole tree of desired and live state, diff and plan, 14% of a plan's CPU and 23% of a
    drift's at 5000 resources. The task here returns None and the result travels beside it.

    ``runner`` runs the main task's coroutine to its end (``asyncio.run`` unless the caller needs its own loop
    set-up, as the CLI does to stop a command cleanly on Ctrl-C: cli/interrupt.py).
    """
    box: list[T] = []

    async def main_task() -> None:
        box.append(await main)

    runner(main_task())
    return box[0]
