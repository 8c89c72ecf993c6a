"""Slow and stubborn 'instances' on 127.0.0.1, as raw sockets (no framework could be this rude on purpose):

- ``silent``: accepts the connection, reads the request, never answers;
- ``drip``: answers a status line and headers promising a big body, then one byte every ``interval`` seconds;
- ``stall``: answers a status line and headers, then nothing, connection left open;
- ``retry-after``: answers every request 429 with ``Retry-After: 99999``.

Each request is counted (``requests``), so a test can say how many a command sent before giving up.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class SlowServer:
    mode: str
    interval: float = 1.0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _read_request(self, conn: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                if data:
                    continue
                raise  # nothing yet: let the caller look at the stop flag
            except OSError:
                return False
            if not chunk:
                return False
            data += chunk
        with self._lock:
            self.requests += 1
        return True

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        try:
            while not self._stop.is_set():
                if not self._read_request_patiently(conn):
                    return
                if self.mode == "retry-after":
                    body = b'{"error": {"message": "Too many requests", "detail": "slow down"}}'
                    conn.sendall(
                        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 99999\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    continue
                if self.mode in ("drip", "stall"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                if self.mode == "drip":
                    while not self._stop.wait(self.interval):
                        conn.sendall(b" ")
                self._stop.wait()  # silent and stall: hold the connection open until the test ends
                return
        except OSError:
            return
        finally:
            conn.close()

    def _read_request_patiently(self, conn: socket.socket) -> bool:
        while not self._stop.is_set():
            try:
                return self._read_request(conn)
            except TimeoutError:
                continue
        return False

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def slow_server(mode: str, *, interval: float = 1.0) -> Iterator[tuple[SlowServer, str]]:
    """Serve ``mode`` on 127.0.0.1 until the block ends; yields the server and its base URL."""
    server = SlowServer(mode, interval)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    threads: list[threading.Thread] = []

    def accept() -> None:
        while not server._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=server.handle, args=(conn,), daemon=True)
            worker.start()
            threads.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        acceptor.join(timeout=5)
        listener.close()
        deadline = time.monotonic() + 5
        for worker in threads:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
