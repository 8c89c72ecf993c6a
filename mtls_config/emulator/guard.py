"""The emulator's guards. ``HostCheck`` wraps the app a server serves on a socket: a request whose ``Host`` is not
the served host is refused (a web page on another origin cannot reach a loopback emulator through DNS rebinding).
``BodyLimitMiddleware``, the app's outermost layer, refuses a request body larger than its limit with 413 before
it is held in memory.

In process (httpx's ASGI transport) there is no socket for a browser to reach, and no Host check: the same app may
be served on a socket and called in process at once, and only the socket's requests are checked. Batch API
sub-requests pass the body limit: their batch was checked.

Must never import: the backend, the client, the engine.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtls_config.emulator.faults import BATCH_ITEM, send_json

# Attachment uploads carry files; every other body is JSON (or a small form) and has the smaller limit.
_UPLOAD = re.compile(r"/api/now/(?:v\d+/)?attachment/(?:file|upload)/?")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _envelope(message: str, detail: str) -> dict[str, Any]:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


class HostCheck:
    """The served app, answering only requests whose ``Host`` is one of ``allowed`` (lowercase ``host[:port]``)."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = (_header(scope, b"host") or "").lower()
            if host not in self.allowed:
                shown = ", ".join(sorted(self.allowed))
                detail = f"this emulated instance answers for {shown}, not {host[:100] or 'no Host'}"
                await send_json(send, 400, _envelope("Invalid host header", detail), [])
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_attachment_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_attachment_bytes = max_attachment_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(BATCH_ITEM):
            await self.app(scope, receive, send)
            return
        upload = _UPLOAD.fullmatch(scope["path"]) is not None
        limit = self.max_attachment_bytes if upload else self.max_request_bytes
        too_large = _envelope(
            "Request body too large",
            f"the emulated instance accepts at most {limit} bytes in {'an attachment' if upload else 'a request body'}",
        )
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_json(send, 400, _envelope("Invalid Content-Length header", declared[:40]), [])
                return
            if int(declared) > limit:
                await send_json(send, 413, too_large, [(b"connection", b"close")])
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_json(send, 413, too_large, [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(chunks, None, receive), send)


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """The body read so far as one message, then whatever the client sends next (a disconnect)."""
    pending: list[Message] = [last] if last is not None else [{"type": "http.request", "body": b"".join(chunks)}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
