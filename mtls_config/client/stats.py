"""Request accounting: how many requests, retries and bytes each client operation cost.

Benchmarks and ``--verbose`` read ``RequestStats.snapshot()``; nothing here does I/O.
Never imports httpx, the emulator or the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OperationStats:
    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    elapsed_ms: int = 0  # summed over requests; concurrent requests overlap, so this exceeds wall time

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "elapsed_ms": self.elapsed_ms,
        }


@dataclass
class RequestStats:
    """Counts per operation name (``table.list``, ``table.create``, ``attachment.upload``, ``batch``, ...)."""

    operations: dict[str, OperationStats] = field(default_factory=dict)

    def record(
        self, operation: str, *, bytes_sent: int, bytes_received: int, retry: bool = False, elapsed_ms: float = 0.0
    ) -> None:
        stats = self.operations.setdefault(operation, OperationStats())
        stats.requests += 1
        stats.retries += int(retry)
        stats.bytes_sent += bytes_sent
        stats.bytes_received += bytes_received
        stats.elapsed_ms += round(elapsed_ms)

    @property
    def total(self) -> OperationStats:
        total = OperationStats()
        for stats in self.operations.values():
            total.requests += stats.requests
            total.retries += stats.retries
            total.bytes_sent += stats.bytes_sent
            total.bytes_received += stats.bytes_received
            total.elapsed_ms += stats.elapsed_ms
        return total

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{"total": {...}, "<operation>": {...}, ...}`` with operations in name order."""
        result = {"total": self.total.as_dict()}
        for name in sorted(self.operations):
            result[name] = self.operations[name].as_dict()
        return result

    def reset(self) -> None:
        self.operations.clear()
