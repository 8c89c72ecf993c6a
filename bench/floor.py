"""The two yardsticks a plan is measured against, as bare HTTP reads with httpx:

  floor     the requests a plan needs (one per table: inventory, certificates, profiles, certificate
            attachments), all at once, each returning every row in one page, with no local work
  baseline  what per-resource providers do: one ``GET /api/now/table/<table>/<sys_id>`` per owned record,
            at most 10 in flight

Used in-process by the engine benchmark (``bench.scenarios``) and as a process of its own by the commands
benchmark (``python -m bench.floor URL REQUESTS.json``), where it is the whole-process floor: a fresh
interpreter that imports httpx, makes the reads and parses the answers, nothing else. So it imports httpx and
the standard library only: never mtls_config (the requests come in the JSON file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

CONCURRENCY = 10  # ours (the client's default) and the baseline's
ADMIN = ("admin", "admin")  # the emulator's default user

Request = tuple[str, dict[str, str]]  # path, query parameters


class RawReader:
    """A bare httpx client for the baseline and the floor: it counts its own bytes the way ours does."""

    def __init__(self, url: str, *, auth: tuple[str, str] = ADMIN) -> None:
        self.http = httpx.AsyncClient(
            base_url=url, auth=auth, timeout=120, limits=httpx.Limits(max_connections=CONCURRENCY)
        )
        self.sent = 0
        self.received = 0

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = await self.http.get(path, params=params, headers={"Accept": "application/json"})
        request = response.request
        self.sent += (
            len(request.method) + len(request.url.raw_path) + sum(len(k) + len(v) + 4 for k, v in request.headers.raw)
        )
        self.received += len(response.content) + sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
        response.raise_for_status()
        return response.json()["result"]

    def counter(self) -> tuple[int, int]:
        return self.sent, self.received

    async def aclose(self) -> None:
        await self.http.aclose()


async def read_together(reader: RawReader, requests: list[Request]) -> int:
    """Every request at once (the floor); returns the rows read."""
    results = await asyncio.gather(*(reader.get(path, params) for path, params in requests))
    return sum(len(r) if isinstance(r, list) else 1 for r in results)


async def read_each(reader: RawReader, requests: list[Request], concurrency: int = CONCURRENCY) -> int:
    """One request after another, at most ``concurrency`` in flight (the baseline); returns the records read."""
    gate = asyncio.Semaphore(concurrency)

    async def one(path: str, params: dict[str, str]) -> None:
        async with gate:
            await reader.get(path, params)

    await asyncio.gather(*(one(path, params) for path, params in requests))
    return len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(description="Read an instance as the floor or the baseline does.")
    parser.add_argument("url")
    parser.add_argument("requests", type=Path, help='JSON: {"mode": "floor"|"baseline", "requests": [[path, params]]}')
    args = parser.parse_args()
    job = json.loads(args.requests.read_text(encoding="utf-8"))
    requests = [(str(path), dict(params)) for path, params in job["requests"]]

    async def run() -> int:
        reader = RawReader(args.url)
        try:
            if job["mode"] == "floor":
                return await read_together(reader, requests)
            return await read_each(reader, requests)
        finally:
            await reader.aclose()

    rows = asyncio.run(run())
    print(json.dumps({"mode": job["mode"], "requests": len(requests), "rows": rows}))


if __name__ == "__main__":
    main()
