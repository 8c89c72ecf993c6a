"""The emulator for a benchmark: served over a real socket on 127.0.0.1, in a child process of its own.

A child process, not a thread, so that the emulator's CPU work neither competes with the engine for the GIL
nor shows in the engine's memory and CPU figures, as a remote instance's would not. The child
(``python -m bench.server``) prints its URL, serves until its stdin closes, then stops: it cannot outlive
the benchmark, even when the benchmark is killed.

Imports the emulator; the engine never does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
# The request log counts a benchmark's requests, the baseline's one per record among them (20000 at N = 20000):
# it must hold them all, where the emulator's default keeps the latest 10000.
REQUEST_LOG_SIZE = 1_000_000


class EmulatorProcess:
    """``with EmulatorProcess(latency_ms=100) as emu: emu.url``; control calls are never delayed."""

    def __init__(self, *, latency_ms: float) -> None:
        self.latency_ms = latency_ms
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._control: httpx.Client | None = None

    def __enter__(self) -> EmulatorProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--latency-ms", str(self.latency_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http"):
            self._stop()
            raise RuntimeError(f"the emulator process did not start (it said {line!r})")
        self.url = line
        self._control = httpx.Client(base_url=self.url, timeout=120, auth=("admin", "admin"))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._control is not None:
            self._control.close()
        self._stop()

    def _stop(self) -> None:
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()

    @property
    def control(self) -> httpx.Client:
        assert self._control is not None, "use EmulatorProcess as a context manager"
        return self._control

    def clear_log(self) -> None:
        self.control.request("DELETE", "/_emulator/requests", json={}).raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.control.get("/_emulator/requests").json()
        if len(entries) >= REQUEST_LOG_SIZE:
            raise RuntimeError(f"the emulator's request log is full ({len(entries)} entries): requests went uncounted")
        return entries


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fresh emulator until stdin closes.")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()

    from mtls_config.emulator import EmulatorConfig, create_app
    from mtls_config.emulator.server import ThreadedServer

    app = create_app(EmulatorConfig(latency_ms=args.latency_ms, request_log_size=REQUEST_LOG_SIZE))
    with ThreadedServer(app) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # returns at EOF: the parent closed our stdin or died


if __name__ == "__main__":
    main()
