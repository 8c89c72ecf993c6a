"""Attachments and the Batch API through the real client against the emulator in-process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette

from mtls_config.client import BatchRequest, InstanceClient
from mtls_config.client.batch import BATCH_PATH
from mtls_config.errors import RecordNotFound

from .conftest import Control, connect, make_app

pytestmark = pytest.mark.anyio


async def _certificate(sn: InstanceClient, name: str) -> str:
    record = await sn.create("sys_certificate", {"name": name, "type": "key_store", "active": "false"})
    return str(record["sys_id"])


async def test_attachment_life_cycle(sn: InstanceClient) -> None:
    cert = await _certificate(sn, "acme-client")
    content = bytes(range(256)) * 20
    meta = await sn.upload_attachment("sys_certificate", cert, "acme.jks", content)
    assert meta["file_name"] == "acme.jks" and meta["size_bytes"] == str(len(content))
    assert meta["table_sys_id"] == cert
    assert await sn.download_attachment(meta["sys_id"]) == content
    listed = await sn.list_attachments("sys_certificate", [cert])
    assert [a["sys_id"] for a in listed] == [meta["sys_id"]]
    await sn.delete_attachment(meta["sys_id"])
    await sn.delete_attachment(meta["sys_id"])
    assert await sn.list_attachments("sys_certificate", [cert]) == []
    with pytest.raises(RecordNotFound):
        await sn.download_attachment(meta["sys_id"])
    with pytest.raises(RecordNotFound):
        await sn.delete_attachment(meta["sys_id"], missing_ok=False)


async def test_attachments_of_many_records_are_listed_in_few_requests(sn: InstanceClient, control: Control) -> None:
    certs = [await _certificate(sn, f"many-{i}") for i in range(12)]
    for cert in certs:
        await sn.upload_attachment("sys_certificate", cert, "store.p12", b"p12")
    await control.clear()
    listed = await sn.list_attachments("sys_certificate", [*certs, "f" * 32])
    assert sorted(a["table_sys_id"] for a in listed) == sorted(certs)
    assert len(await control.requests()) == 1
    assert await sn.list_attachments("sys_certificate", []) == []
    assert len(await control.requests()) == 1  # nothing to ask: no request


async def test_batch_mixes_reads_and_writes_in_one_round_trip(sn: InstanceClient, control: Control) -> None:
    await control.clear()
    answers = await sn.batch(
        [
            BatchRequest("read", "GET", "/api/now/table/sys_rest_message?sysparm_fields=name"),
            BatchRequest("make", "POST", "/api/now/table/sys_properties", {"name": "batch.made", "value": "1"}),
            BatchRequest("missing", "GET", "/api/now/table/sys_properties/" + "e" * 32),
        ]
    )
    assert [a.id for a in answers] == ["read", "make", "missing"]
    assert answers[0].status == 200 and len(answers[0].body["result"]) >= 1
    assert answers[1].status == 201 and answers[1].body["result"]["name"] == "batch.made"
    assert answers[2].status == 404 and not answers[2].ok
    assert [(e["method"], e["path"]) for e in await control.requests()] == [("POST", "/api/now/v1/batch")]
    assert len(await sn.list("sys_properties", query="name=batch.made")) == 1


async def test_unserviced_requests_are_sent_again_in_a_follow_up_batch() -> None:
    app = make_app(batch_max_requests=3)
    limited_control = Control(app)
    async with limited_control.http, connect(app) as sn:
        requests = [
            BatchRequest(f"r{i}", "POST", "/api/now/table/sys_properties", {"name": f"unserviced.{i}"})
            for i in range(7)
        ]
        answers = await sn.batch(requests)
        assert [a.status for a in answers] == [201] * 7
        assert [a.body["result"]["name"] for a in answers] == [f"unserviced.{i}" for i in range(7)]
        assert len(await limited_control.requests()) == 3  # 3 + 3 + 1 serviced per round trip
        assert len(await sn.list("sys_properties", query="nameSTARTSWITHunserviced.")) == 7


async def test_large_batches_are_split_by_the_client(app: Starlette, control: Control) -> None:
    async with connect(app, batch_max_items=4) as small:
        await control.clear()
        answers = await small.batch(
            [BatchRequest(str(i), "GET", "/api/now/table/sys_properties?sysparm_limit=1") for i in range(10)]
        )
        assert len(answers) == 10 and all(a.ok for a in answers)
        assert len(await control.requests()) == 3
        assert small.stats.snapshot()["batch"]["requests"] == 3


async def test_batch_ids_must_be_unique(sn: InstanceClient) -> None:
    with pytest.raises(ValueError, match="unique"):
        await sn.batch([BatchRequest("a", "GET", "/x"), BatchRequest("a", "GET", "/y")])
    assert await sn.batch([]) == []


async def test_a_batch_body_is_made_only_when_it_can_go_out(app: Starlette) -> None:
    """Many batches at once (an inventory's parts): no more bodies are made than requests may be in flight, so a
    body is not held while it waits for its turn (issue 18: apply's memory)."""
    calls: list[str] = []  # the first wire() of a request sizes it (``split_batches``); the second is its body
    made: list[str] = []
    in_flight_bodies: list[int] = []
    answered = 0

    @dataclass(frozen=True)
    class Counted(BatchRequest):
        def wire(self) -> dict[str, Any]:
            if self.id in calls:
                made.append(self.id)
            calls.append(self.id)
            return super().wire()

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        nonlocal answered
        if scope["type"] == "http" and scope["path"] == BATCH_PATH:
            in_flight_bodies.append(len(made) - answered)  # made, and not answered yet
            await asyncio.sleep(0.01)  # the instance takes its time: the other batches wait their turn meanwhile
            await app(scope, receive, send)
            answered += 1
            return
        await app(scope, receive, send)

    async with connect(counting, max_concurrency=2, batch_max_items=1) as sn:  # type: ignore[arg-type]
        requests = [Counted(f"r{i}", "POST", "/api/now/table/sys_properties", {"name": f"gate.{i}"}) for i in range(9)]
        answers = await sn.batch(requests)
    assert [a.status for a in answers] == [201] * 9
    assert sorted(made) == sorted(r.id for r in requests) and len(in_flight_bodies) == 9
    assert max(in_flight_bodies) <= 2
