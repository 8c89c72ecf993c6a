"""The time a command may spend talking to the instance: one budget for all its requests, retries and waits.

Each HTTP round trip gets at most what is left of the budget; a retry waits (backoff or ``Retry-After``) only
if the wait ends before the budget does; a request waiting for the credentials check waits no longer. What
runs out of time is named in the error: which request, how long it waited, and the budget. A stalled read
(no byte for the client's read timeout) fails on its own, before the budget, and is retried within it.

Never imports httpx, the emulator or the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mtls_config.errors import InstanceTimeout

TIMEOUT_HINT = (
    "the instance (or a proxy in front of it) is answering too slowly or not at all; if it is only slow, "
    "give the command more time with --timeout SECONDS"
)


class Deadline:
    """``seconds`` from now (``None``: no limit). ``paused()`` stops the clock (while a person reads a plan)."""

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if seconds is not None and seconds <= 0:
            raise ValueError("a deadline needs a positive number of seconds")
        self.seconds = seconds
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        """Seconds left (may be negative), or None without a limit."""
        return None if self._end is None else self._end - self._clock()

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0

    @contextmanager
    def paused(self) -> Iterator[None]:
        started = self._clock()
        try:
            yield
        finally:
            if self._end is not None:
                self._end += self._clock() - started

    def exceeded(self, what: str, waited: float, *, detail: str = "") -> InstanceTimeout:
        """The error for ``what`` (``GET /api/now/table/x``) having waited ``waited`` seconds when time ran out."""
        said = f" ({detail})" if detail else ""
        return InstanceTimeout(
            f"{what} did not finish within the command's time limit of {self.seconds:g} s (--timeout): "
            f"it had waited {waited:.1f} s{said}",
            hint=TIMEOUT_HINT,
        )
