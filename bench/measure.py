"""One measurement: wall and CPU time, requests and bytes (client side and as the instance counted them),
peak traced Python memory (tracemalloc) and peak resident set size of this process while it ran.

Never imports the emulator: the instance's request count comes through ``EmulatorProcess.log``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * _PAGE


class RssSampler:
    """Peak RSS over a block, sampled every few milliseconds from a thread (Linux /proc)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


@dataclass
class Measurement:
    scenario: str
    variant: str  # ours | baseline | floor
    n: int
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this process only: the engine (the emulator runs in its own process)
    requests: int = 0  # round trips the instance received (a Batch API call counts once)
    requests_by_kind: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    peak_traced_mb: float | None = None  # tracemalloc peak above the start of the block
    peak_rss_mb: float = 0.0
    rss_before_mb: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def kind_of(entry: dict[str, Any]) -> str:
    """A request log entry's kind: ``GET sys_certificate``, ``POST batch``, ``POST attachment``..."""
    path = str(entry.get("path", ""))
    parts = [p for p in path.split("/") if p]
    if "batch" in parts:
        return f"{entry['method']} batch"
    if "attachment" in parts:
        return f"{entry['method']} attachment" + ("/file" if parts[-1] == "file" else "")
    if "table" in parts:
        i = parts.index("table")
        name = parts[i + 1] if len(parts) > i + 1 else "?"
        return f"{entry['method']} {name}" + ("/<id>" if len(parts) > i + 2 else "")
    return f"{entry['method']} {path}"


@contextlib.contextmanager
def _traced(enabled: bool) -> Iterator[Callable[[], float | None]]:
    if not enabled:
        yield lambda: None
        return
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    peak: list[float] = []
    try:
        yield lambda: peak[0] if peak else None
    finally:
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak.append((top - start) / 2**20)


ByteCounter = Callable[[], tuple[int, int]]


async def measure(
    scenario: str,
    variant: str,
    n: int,
    work: Callable[[], Awaitable[T]],
    *,
    server_log: Callable[[], list[dict[str, Any]]],
    clear_server_log: Callable[[], None],
    byte_counter: ByteCounter,
    trace_memory: bool,
) -> tuple[Measurement, T]:
    """Run ``work()`` once and measure it. The server log is cleared first, read after."""
    clear_server_log()
    sent0, received0 = byte_counter()
    m = Measurement(scenario, variant, n, rss_before_mb=rss_bytes() / 2**20)
    with RssSampler() as rss, _traced(trace_memory) as traced_peak:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = await work()
        m.wall_s = time.perf_counter() - wall0
        m.cpu_s = time.process_time() - cpu0
    m.peak_traced_mb = traced_peak()
    m.peak_rss_mb = rss.peak / 2**20
    sent1, received1 = byte_counter()
    m.bytes_sent, m.bytes_received = sent1 - sent0, received1 - received0
    log = server_log()
    m.requests = len(log)
    m.requests_by_kind = dict(sorted(Counter(kind_of(e) for e in log).items()))
    return m, result
