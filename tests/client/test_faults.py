"""Retries under the emulator's injected faults (429, 5xx, dropped connections, answers lost after the work
was done), checked against the instance's records and request log: every operation completes, nothing is
written twice, and nothing waits for real."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest
from starlette.applications import Starlette

from mtls_config.client import InstanceClient
from mtls_config.errors import InstanceUnreachable, RateLimited

from .conftest import Control, SleepRecorder, connect, make_app

pytestmark = pytest.mark.anyio


def sys_ids(prefix: str, count: int) -> list[str]:
    return sorted(hashlib.md5(f"{prefix}.{i}".encode()).hexdigest() for i in range(count))


async def converge(sn: InstanceClient, prefix: str, count: int = 20) -> None:
    """Create, update, read and delete ``count`` records concurrently, as the engine does."""
    ids = sys_ids(prefix, count)
    await asyncio.gather(
        *(
            sn.create(
                "sys_properties",
                {"name": f"{prefix}.{i}", "value": "0"},
                sys_id=hashlib.md5(f"{prefix}.{i}".encode()).hexdigest(),
            )
            for i in range(count)
        )
    )
    await asyncio.gather(*(sn.update("sys_properties", s, {"value": "1"}) for s in ids))
    rows = await sn.list("sys_properties", query=f"nameSTARTSWITH{prefix}.", fields=["sys_id", "value"], page_size=7)
    assert sorted(r["sys_id"] for r in rows) == ids
    assert {r["value"] for r in rows} == {"1"}
    doomed = [hashlib.md5(f"{prefix}.{i}".encode()).hexdigest() for i in range(count // 2)]
    await asyncio.gather(*(sn.delete("sys_properties", s) for s in doomed))


async def count_records(app: Starlette, prefix: str) -> list[str]:
    async with connect(app) as clean:
        rows = await clean.list("sys_properties", query=f"nameSTARTSWITH{prefix}.", fields=["name"])
    return [r["name"] for r in rows]


@pytest.mark.parametrize(
    "faults",
    [
        {"fail_rate": 0.3, "fail_statuses": [502, 503, 504]},
        {"drop_rate": 0.3},
        {"lost_response_rate": 0.3},
        {"fail_rate": 0.15, "drop_rate": 0.15, "lost_response_rate": 0.15},
    ],
    ids=["5xx", "dropped", "lost-answers", "mixed"],
)
async def test_idempotent_operations_converge_under_faults_without_duplicates(
    control: Control, app: Starlette, sleeps: SleepRecorder, faults: dict[str, object]
) -> None:
    await control.faults(**faults)
    async with connect(app, sleeps, max_retries=8) as sn:
        await converge(sn, "flaky")
        snap = sn.stats.snapshot()
    await control.faults(fail_rate=0, drop_rate=0, lost_response_rate=0)
    names = await count_records(app, "flaky")
    assert sorted(names) == sorted(f"flaky.{i}" for i in range(10, 20))  # each once; the deleted ones gone
    assert snap["total"]["retries"] > 0 and len(sleeps.delays) == snap["total"]["retries"]
    log = await control.requests()
    posts = [e for e in log if e["method"] == "POST" and e["path"] == "/api/now/table/sys_properties"]
    assert len(posts) >= 20  # a POST is only re-sent after a GET showed the record was not made


async def test_lost_answers_to_creates_without_sys_id_are_not_repeated(control: Control, app: Starlette) -> None:
    await control.faults(lost_response_rate=1.0)
    async with connect(app) as sn:
        with pytest.raises(InstanceUnreachable, match=r"RemoteProtocolError|ConnectionDropped"):
            await sn.create("sys_properties", {"name": "once.only"})
    await control.faults(lost_response_rate=0)
    assert await count_records(app, "once") == ["once.only"]
    posts = [e for e in await control.requests() if e["method"] == "POST"]
    assert len(posts) == 1


async def test_uploads_are_not_duplicated_when_answers_are_lost(control: Control, app: Starlette) -> None:
    async with connect(app) as sn:
        cert = (await sn.create("sys_certificate", {"name": "upload-twice", "type": "key_store"}))["sys_id"]
        await control.faults(lost_response_rate=0.5)
        for i in range(6):
            await sn.upload_attachment("sys_certificate", cert, f"store-{i}.jks", b"x" * (100 + i))
        await control.faults(lost_response_rate=0)
        listed = await sn.list_attachments("sys_certificate", [cert])
    assert sorted(a["file_name"] for a in listed) == [f"store-{i}.jks" for i in range(6)]
    log = await control.requests()
    uploads = [e for e in log if e["path"] == "/api/now/attachment/file"]
    checks = [e for e in log if e["path"] == "/api/now/attachment" and e["method"] == "GET"]
    assert len(uploads) >= 6
    assert len(checks) > 1  # some answers were lost, and the client looked before uploading again


async def test_rate_limit_is_honoured_and_retried(control: Control, app: Starlette) -> None:
    waited: list[float] = []

    async def wait_for_the_window(seconds: float) -> None:
        # Instead of sleeping, start a new rate-limit window: what real time would do.
        waited.append(seconds)
        await control.faults(rate_limit=5)

    await control.faults(rate_limit=5)
    async with connect(app, wait_for_the_window) as sn:  # type: ignore[arg-type]
        await converge(sn, "limited", count=8)
        assert sn.stats.snapshot()["total"]["retries"] == len(waited) > 0
    # Retry-After says "the window resets in an hour"; the client waits, capped, not forever.
    assert all(100 <= w <= 121 for w in waited)
    await control.faults(rate_limit=None)
    assert len(await count_records(app, "limited")) == 4


async def test_rate_limit_past_the_retry_budget(control: Control, app: Starlette, sleeps: SleepRecorder) -> None:
    await control.faults(rate_limit=0)
    async with connect(app, sleeps, max_retries=2) as sn:
        with pytest.raises(RateLimited, match="Rate limit exceeded") as caught:
            await sn.list("sys_certificate")
    assert "after 3 attempts" in str(caught.value) and caught.value.hint
    assert len(sleeps.delays) == 2


async def test_concurrency_is_bounded_per_instance(sleeps: SleepRecorder) -> None:
    app = make_app(latency_ms=20)
    in_flight = 0
    peak = 0

    async def counting_app(scope, receive, send):  # type: ignore[no-untyped-def]
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await app(scope, receive, send)
        finally:
            in_flight -= 1

    async with connect(counting_app, sleeps, max_concurrency=3) as sn:  # type: ignore[arg-type]
        await asyncio.gather(*(sn.list("sys_properties", query=f"name={random.random()}") for _ in range(12)))
    assert peak == 3
