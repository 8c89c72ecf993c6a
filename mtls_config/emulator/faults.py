"""The emulator's outer layer: request log, run-time faults (latency, rate limit, 5xx, dropped connections)
and ``X-HTTP-Method-Override``. An ASGI middleware around the instance's routes.

``/_emulator`` control endpoints and Batch API sub-requests pass straight through: they are neither logged
nor faulted. Random draws come from one generator seeded by the config, so a run can be replayed.

Must never import: the backend's internals beyond its public values, the client, the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtls_config.emulator.config import Faults

CONTROL_PREFIX = "/_emulator"
BATCH_ITEM = "mtls_config.emulator.batch_item"  # scope key marking a Batch API sub-request
SOCKET_MODE = "socket"  # app.state.connection_mode when served by uvicorn (drops close the socket)


class RequestLog:
    """The instance API requests received (round trips), cheap to append to and to read. Bounded: it keeps the
    latest ``size`` entries (a ring buffer), so a long-running served emulator does not grow without end."""

    def __init__(self, size: int = 10_000) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.lock = threading.Lock()
        self.in_flight = 0  # instance API requests being answered now
        # One count of arrivals and answers together: an entry's ``opened`` and ``closed`` say which requests it
        # overlapped, so a test can tell the round trips a client waited for one after another (``rounds``).
        self.events = 0

    def open(self) -> int:
        with self.lock:
            self.events += 1
            return self.events

    def add(self, method: str, path: str, query: str, status: int, opened: int = 0) -> None:
        with self.lock:
            self.events += 1
            self.entries.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "opened": opened,
                    "closed": self.events,
                }
            )

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.entries)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def rounds(entries: list[dict[str, Any]]) -> int:
    """The round trips a client waited for one after another: the longest chain of logged requests each of which
    arrived after the one before it was answered (requests sent together, or pipelined, overlap and count once).
    Meaningful when answers take a while (latency), so that requests sent together are seen together."""
    depth: list[tuple[int, int]] = []  # (closed, chain length ending there)
    best = 0
    for entry in sorted(entries, key=lambda e: e["opened"]):
        length = 1 + max((n for closed, n in depth if closed < entry["opened"]), default=0)
        depth.append((entry["closed"], length))
        best = max(best, length)
    return best


class FaultState:
    """The faults in force and the seeded random generator and rate-limit window behind them."""

    def __init__(self, faults: Faults, seed: int, on_change: Callable[[Faults], None] | None = None) -> None:
        self.faults = faults
        self.on_change = on_change  # told of new settings before they hold; raising ValueError refuses them
        self.random = random.Random(seed)
        self.clock: Callable[[], float] = time.time  # replaceable in tests: windows without sleeping
        self.window_start = self.clock()
        self.window_count = 0
        self.lock = threading.Lock()

    def update(self, changes: dict[str, Any]) -> Faults:
        known = {f.name for f in dataclasses.fields(Faults)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        if "fail_statuses" in changes:
            changes["fail_statuses"] = tuple(int(s) for s in changes["fail_statuses"])
        if "ignore_fields" in changes:
            if not isinstance(changes["ignore_fields"], list | tuple):
                raise ValueError("ignore_fields is a list of TABLE.FIELD")
            changes["ignore_fields"] = tuple(str(f) for f in changes["ignore_fields"])
        with self.lock:
            updated = dataclasses.replace(self.faults, **changes)
            if self.on_change is not None:
                self.on_change(updated)
            self.faults = updated
            self.window_start, self.window_count = self.clock(), 0
            return self.faults

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self.faults)
        data["fail_statuses"] = list(self.faults.fail_statuses)
        data["ignore_fields"] = list(self.faults.ignore_fields)
        return data

    def draw(self) -> tuple[float, float, float, float]:
        with self.lock:
            return self.random.random(), self.random.random(), self.random.random(), self.random.random()

    def pick_status(self) -> int:
        with self.lock:
            return self.random.choice(self.faults.fail_statuses or (503,))

    def rate_limited(self) -> tuple[bool, int, float]:
        """(refused?, limit, window reset as unix time) for one more request in the current window."""
        with self.lock:
            limit = self.faults.rate_limit
            now = self.clock()
            window = self.faults.rate_limit_window_s
            if now - self.window_start >= window:
                self.window_start, self.window_count = now, 0
            reset = self.window_start + window
            if limit is None:
                return False, 0, reset
            self.window_count += 1
            return self.window_count > limit, limit, reset


class ConnectionDropped(httpx.RemoteProtocolError):
    """Raised in-process (through ``httpx.ASGITransport``, which re-raises app exceptions) where a served
    instance would close the socket: the client sees the same ``httpx.TransportError`` family either way."""


class FaultsMiddleware:
    def __init__(self, app: ASGIApp, *, state: FaultState, log: RequestLog, owner: Any) -> None:
        self.app = app
        self.state = state
        self.log = log
        self.owner = owner  # the Starlette app: its state says whether a real socket is behind us

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(BATCH_ITEM) or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        scope = _override_method(scope)
        status_seen = 0
        logged = False

        def log() -> None:
            nonlocal logged
            if not logged:
                logged = True
                query = scope.get("query_string", b"").decode("latin-1")
                self.log.add(scope["method"], scope["path"], query, status_seen, opened)

        async def logged_send(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # logged before the answer's end goes out: a client that has its answer finds it in the log
                log()
            await send(message)

        faults = self.state.faults
        latency_draw, fail_draw, drop_draw, lost_draw = self.state.draw()
        self.log.in_flight += 1  # one event loop: no lock needed
        opened = self.log.open()
        try:
            delay = faults.latency_ms + faults.latency_jitter_ms * latency_draw
            if delay > 0:
                await asyncio.sleep(delay / 1000)
            if faults.drop_rate and drop_draw < faults.drop_rate:
                await self._drop(send)
                return
            refused, limit, reset = self.state.rate_limited()
            if refused:
                retry_after = max(1, math.ceil(reset - self.state.clock()))
                await _rate_limit_response(logged_send, limit, reset, retry_after, faults.rate_limit_window_s)
                return
            if faults.fail_rate and fail_draw < faults.fail_rate:
                await _failure_response(logged_send, self.state.pick_status())
                return
            if faults.lost_response_rate and lost_draw < faults.lost_response_rate:
                # The instance does the work; the answer never arrives (the case that tests idempotent retries).
                await self.app(scope, receive, _discard)
                await self._drop(send)
                return
            await self.app(scope, receive, logged_send)
        finally:
            self.log.in_flight -= 1
            log()  # a dropped or lost answer: logged as it ends

    async def _drop(self, send: Send) -> None:
        if getattr(self.owner.state, "connection_mode", None) == SOCKET_MODE:
            # Start a response and walk away: uvicorn closes the socket mid-response.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
            return
        raise ConnectionDropped("connection dropped by the emulator (fault injection)")


async def _discard(message: Message) -> None:
    return None


def _override_method(scope: Scope) -> Scope:
    if scope["method"] != "POST":
        return scope
    for name, value in scope.get("headers", []):
        if name.lower() == b"x-http-method-override":
            return {**scope, "method": value.decode("latin-1").upper()}
    return scope


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json;charset=UTF-8"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _rate_limit_response(send: Send, limit: int, reset: float, retry_after: int, window: float) -> None:
    period = "hour" if window == 3600 else f"{window:g} seconds"
    await send_json(
        send,
        429,
        {
            "error": {
                "message": "Rate limit exceeded",
                "detail": f"Rate limit of {limit} requests per {period} for Table API exceeded",
            },
            "status": "failure",
        },
        [
            (b"retry-after", str(retry_after).encode()),
            (b"x-ratelimit-limit", str(limit).encode()),
            (b"x-ratelimit-reset", str(math.ceil(reset)).encode()),
            (b"x-ratelimit-rule", b"5b2a3a2f1b3b10100a3c2f8a2d4bcb3e"),
        ],
    )


async def _failure_response(send: Send, status: int) -> None:
    await send_json(
        send,
        status,
        {
            "error": {
                "message": "Service Unavailable" if status == 503 else "Server error",
                "detail": "injected fault",
            },
            "status": "failure",
        },
        [(b"retry-after", b"1")] if status == 503 else [],
    )
