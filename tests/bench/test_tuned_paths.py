"""The paths the performance work added, checked for behaviour: a batch whose answer is lost never makes a
second record or attaches a file twice, an inventory pointer without the file's sys_id (written by an
older version) is still read, and a large inventory is read in the same round trip as everything else."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench.stacks import counts, write_stack
from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.engine import apply_planned, make_planned
from mtls_config.inventory import ATTACHMENT_NAME, property_name
from mtls_config.inventory_store import read_inventory
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from mtls_config.spec.loader import load_specs

pytestmark = pytest.mark.anyio
STACK = "tuned"


class LoseBatchAnswers(httpx.AsyncBaseTransport):
    """Hands every request to the emulator, then loses the answer of each Batch API call: the instance did
    the work, the client cannot know (a dropped connection after the request was read)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/batch"):
            await response.aread()
            self.lost += 1
            raise httpx.ReadError("connection lost after the request was sent", request=request)
        return response


def _settings() -> InstanceSettings:
    return InstanceSettings(url="local", auth=BasicAuth("admin", SecretValue(b"admin", "test")))


async def _no_sleep(_: float) -> None:
    return None


async def test_lost_batch_answers_make_no_duplicate_records_or_files(tmp_path: Path) -> None:
    n = 24
    write_stack(tmp_path, n)
    specs = load_specs([tmp_path], root=tmp_path)
    app = create_app(EmulatorConfig())
    lossy = LoseBatchAnswers(httpx.ASGITransport(app=app))
    async with InstanceClient(_settings(), transport=lossy, sleep=_no_sleep) as client:
        planned = await make_planned(client, specs, instance_name="local", stack=STACK)
        result = await apply_planned(client, planned)
    assert lossy.lost > 0  # the batches were sent, done, and their answers lost
    assert result.ok, [o for o in result.outcomes if o.status != "applied"]

    async with InstanceClient(_settings(), transport=httpx.ASGITransport(app=app)) as client:
        certs = await client.list(
            "sys_certificate",
            query="nameSTARTSWITHks-^ORnameSTARTSWITHtc-",
            fields=["sys_id", "name", "type", "active"],
        )
        keystores, _, trusted = counts(n)
        names = Counter(c["name"] for c in certs)
        assert len(names) == keystores + trusted and set(names.values()) == {1}
        key_ids = [c["sys_id"] for c in certs if c["type"] == "key_store"]
        assert all(c["active"] == "true" for c in certs)
        files = Counter(a["table_sys_id"] for a in await client.list_attachments("sys_certificate", key_ids))
        assert files == Counter({sys_id: 1 for sys_id in key_ids})
        again = await make_planned(client, specs, instance_name="local", stack=STACK)
        assert not again.plan.has_changes


async def test_inventory_pointer_without_the_file_id_is_still_read(tmp_path: Path) -> None:
    write_stack(tmp_path, 40)  # large enough for the inventory not to fit its property
    specs = load_specs([tmp_path], root=tmp_path)
    app = create_app(EmulatorConfig())
    async with InstanceClient(_settings(), transport=httpx.ASGITransport(app=app)) as client:
        assert (await apply_planned(client, await make_planned(client, specs, instance_name="l", stack=STACK))).ok
        inventory, head, _ = await read_inventory(client, STACK)
        assert head is not None
        # As versions before the part records wrote it: the JSON in an attachment, a pointer without its id.
        await client.upload_attachment(
            "sys_properties", head.sys_id, ATTACHMENT_NAME, inventory.to_json().encode(), "application/json"
        )
        pointer = '{"format_version": 1, "attachment": "inventory.json", "generation": 2}'
        await client.update("sys_properties", head.sys_id, {"value": pointer})
        client.stats.reset()
        again = await make_planned(client, specs, instance_name="l", stack=STACK)
        assert not again.plan.has_changes
        assert len(again.live.inventory.resources) == 40
        assert (
            client.stats.snapshot()["attachment.list"]["requests"] == 2
        )  # the fallback listing, then the certificates'


async def test_a_large_inventory_costs_the_plan_one_request(tmp_path: Path) -> None:
    write_stack(tmp_path, 400)  # its inventory takes several part records
    specs = load_specs([tmp_path], root=tmp_path)
    app = create_app(EmulatorConfig())
    async with InstanceClient(_settings(), transport=httpx.ASGITransport(app=app)) as client:
        assert (await apply_planned(client, await make_planned(client, specs, instance_name="l", stack=STACK))).ok
        parts = await client.list("sys_properties", query=f"nameSTARTSWITH{property_name(STACK)}.", fields=["name"])
        assert len(parts) > 3
        app.state.request_log.clear()
        again = await make_planned(client, specs, instance_name="l", stack=STACK)
        assert not again.plan.has_changes and len(again.live.inventory.resources) == 400
    reads = [r for r in app.state.request_log.snapshot() if r["path"] == "/api/now/table/sys_properties"]
    inventory = [r for r in reads if "mtls_config.inventory" in r["query"]]
    assert len(inventory) == 1  # the head and its parts together
    assert len(reads) == 2  # and the claims of names, in a query of their own
