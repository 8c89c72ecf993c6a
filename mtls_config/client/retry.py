"""When and how long to wait before trying a request again: exponential backoff with full jitter,
``Retry-After`` honoured up to a cap.

Which failures may be retried is decided by the client (it knows whether an operation is safe to
repeat); this module only computes delays. Never imports httpx, the emulator or the CLI.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_delay: float = 0.5  # seconds; attempt n waits up to base_delay * 2**n
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # never wait longer than this, whatever Retry-After says

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None:
            # A little jitter on top, so that concurrent requests told the same time do not return in lockstep.
            return min(retry_after, self.max_retry_after) + rng.uniform(0, self.base_delay)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2**retry))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)
