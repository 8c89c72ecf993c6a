"""The inventory's storage on the instance, against the emulator through the real client: a small inventory
inline in its head record, a large one in gzip+base64 part records read in one request and written in a fixed
number of batches, an earlier version's attachment read and migrated, a write that dies half-way, damaged
parts, and stacks whose names share a prefix."""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.errors import MtlsConfigError, PermissionDenied
from mtls_config.inventory import (
    ATTACHMENT_NAME,
    VALUE_LIMIT,
    Inventory,
    OwnedRecord,
    OwnedResource,
    PackedInventory,
    PartsPointer,
    packed_head,
    parse_head,
    part_prefix,
    property_name,
)
from mtls_config.inventory_store import read_inventory, store_inventory
from tests.engine.conftest import local_settings

pytestmark = pytest.mark.anyio
TABLE_PATH = "/api/now/table/sys_properties"
BATCH_PATH = "/api/now/v1/batch"


def owned(n: int, stack: str = "prod", generation: int = 1) -> Inventory:
    """An inventory shaped like the benchmark stacks': a quarter keystores (the uploaded file's id, size and
    digest, the salted password digest), a quarter protocol profiles, the rest trusted certificates. Its hex
    sys_ids and digests do not compress, as in life: 1000 resources make about 60 KB of parts."""
    inventory = Inventory(stack=stack, generation=generation)
    for i in range(n):
        kind = ("KeyStore", "ProtocolProfile", "TrustStoreCert", "TrustStoreCert")[i % 4]
        table = "sys_protocol_profile" if kind == "ProtocolProfile" else "sys_certificate"
        entry = OwnedResource(
            address=f"{kind}/r-{i:05d}", records=[OwnedRecord(table=table, sys_id=secrets.token_hex(16), mod_count=1)]
        )
        if kind == "KeyStore":
            entry.content_attachment = secrets.token_hex(16)
            entry.content_size = 6836
            entry.content_digest = "sha256:" + secrets.token_hex(32)
            entry.password_digest = "hmac-sha256:" + secrets.token_hex(32)
            entry.password_opaque = secrets.token_hex(32)
        inventory.resources[entry.address] = entry
    return inventory


class Refuse:
    """ASGI wrapper: refuses (403) the requests ``refused`` picks, as an instance would whose run died there."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = app.state
        self.refused: Any = lambda method, path: False
        self.in_flight = 0
        self.most_in_flight_batches = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.refused(scope["method"], scope["path"]):
            body = b'{"error": {"message": "Operation Failed", "detail": "ACL Exception Update Failed"}, "status": "failure"}'
            await send(
                {"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        batch = scope["type"] == "http" and scope["path"] == BATCH_PATH
        self.in_flight += batch
        self.most_in_flight_batches = max(self.most_in_flight_batches, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= batch


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def instance() -> Refuse:
    # A little latency makes the batches of one step overlap visibly (they are sent together).
    return Refuse(create_app(EmulatorConfig(seed_data=False, latency_ms=5)))


@pytest.fixture
async def client(instance: Refuse) -> AsyncIterator[InstanceClient]:
    transport = httpx.ASGITransport(app=instance)  # type: ignore[arg-type]
    async with InstanceClient(local_settings(), transport=transport) as c:
        yield c


def log(instance: Refuse) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = instance.state.request_log.snapshot()
    return entries


def clear(instance: Refuse) -> None:
    instance.state.request_log.clear()


async def properties(client: InstanceClient, prefix: str) -> dict[str, dict[str, Any]]:
    rows = await client.list("sys_properties", query=f"nameSTARTSWITH{prefix}", fields=["sys_id", "name", "value"])
    return {row["name"]: row for row in rows}


async def head_value(client: InstanceClient, stack: str) -> str:
    return str((await properties(client, property_name(stack)))[property_name(stack)]["value"])


async def test_a_small_inventory_stays_inline_and_readable_in_its_head(
    client: InstanceClient, instance: Refuse
) -> None:
    inventory = owned(3)
    assert len(inventory.to_json()) <= VALUE_LIMIT
    record = await store_inventory(client, "prod", None, inventory)
    assert json.loads(await head_value(client, "prod"))["resources"].keys() == inventory.resources.keys()
    assert [n for n in await properties(client, "mtls_config.") if n != property_name("prod")] == []
    clear(instance)
    read, read_record, attachment = await read_inventory(client, "prod")
    assert read == inventory and attachment is None
    assert read_record is not None and read_record.sys_id == record.sys_id
    assert len(log(instance)) == 1


@pytest.mark.parametrize("size", [1000, 5000])
async def test_a_large_inventory_is_read_in_one_request_and_written_in_one_batch_per_fifty_parts(
    client: InstanceClient, instance: Refuse, size: int
) -> None:
    first, second = owned(size, generation=1), owned(size, generation=2)
    clear(instance)
    record = await store_inventory(client, "prod", None, first)
    written = log(instance)
    pointer = parse_head(await head_value(client, "prod"))
    assert isinstance(pointer, PartsPointer)
    parts = pointer.parts.count
    assert 1 < parts <= math.ceil(len(first.to_json()) / VALUE_LIMIT / 4)  # gzip shrinks it four-fold at least
    batches = math.ceil(parts / 50)
    # the conflict check with the listing, the parts in batches, then the head: nothing to delete yet
    assert [(r["method"], r["path"]) for r in written] == [
        ("GET", TABLE_PATH),
        *[("POST", BATCH_PATH)] * batches,
        ("POST", TABLE_PATH),
    ]
    assert instance.most_in_flight_batches == batches  # a step's batches go together

    clear(instance)
    read, read_record, attachment = await read_inventory(client, "prod")
    assert read == first and attachment is None and read_record is not None
    assert [(r["method"], r["path"]) for r in log(instance)] == [("GET", TABLE_PATH)]

    clear(instance)
    await store_inventory(client, "prod", read_record, second)
    rewritten = [(r["method"], r["path"]) for r in log(instance)]
    head_write = rewritten.index(("PATCH", f"{TABLE_PATH}/{record.sys_id}"))
    assert rewritten[0] == ("GET", TABLE_PATH)
    assert rewritten[1:head_write] == [("POST", BATCH_PATH)] * batches  # the new parts, before the head
    assert rewritten[head_write + 1 :] == [("POST", BATCH_PATH)] * batches  # then the old ones go
    names = set(await properties(client, part_prefix("prod")))
    new = parse_head(await head_value(client, "prod"))
    assert isinstance(new, PartsPointer) and new.parts.id != pointer.parts.id
    assert names == {f"{part_prefix('prod')}{new.parts.id}.{i:04d}" for i in range(new.parts.count)}
    assert (await read_inventory(client, "prod"))[0] == second


async def test_parts_and_head_are_kept_out_of_update_sets_and_cache_flushes(client: InstanceClient) -> None:
    await store_inventory(client, "prod", None, owned(100))
    rows = await client.list(
        "sys_properties", query="nameSTARTSWITHmtls_config.inventory.", fields=["name", "ignore_cache", "is_private"]
    )
    assert len(rows) > 2
    assert {(r["ignore_cache"], r["is_private"]) for r in rows} == {("true", "true")}


async def test_an_earlier_versions_attachment_inventory_is_read_then_migrated_by_the_next_write(
    client: InstanceClient, instance: Refuse
) -> None:
    legacy = owned(40)
    head = await client.create(
        "sys_properties",
        {
            "name": property_name("prod"),
            "value": '{"format_version": 1, "attachment": "inventory.json", "generation": 1}',
        },
    )
    await client.upload_attachment(
        "sys_properties", head["sys_id"], ATTACHMENT_NAME, legacy.to_json().encode(), "application/json"
    )
    read, record, attachment = await read_inventory(client, "prod")
    assert read == legacy and attachment is not None and attachment.file_name == ATTACHMENT_NAME

    await store_inventory(client, "prod", record, owned(40, generation=2))
    assert await client.list_attachments("sys_properties", [head["sys_id"]]) == []
    assert isinstance(parse_head(await head_value(client, "prod")), PartsPointer)
    clear(instance)
    again, _, attachment = await read_inventory(client, "prod")
    assert attachment is None and again.generation == 2 and len(log(instance)) == 1


@pytest.mark.parametrize("first_write", [True, False])
async def test_a_write_that_dies_between_parts_and_head_leaves_the_old_inventory_readable(
    client: InstanceClient, instance: Refuse, first_write: bool
) -> None:
    old = Inventory(stack="prod") if first_write else owned(200, generation=1)
    record = None if first_write else await store_inventory(client, "prod", None, old)
    before = set(await properties(client, part_prefix("prod")))
    instance.refused = lambda method, path: method in ("POST", "PATCH") and path.startswith(TABLE_PATH)
    with pytest.raises(PermissionDenied):  # the head write is refused: the run stops right there
        await store_inventory(client, "prod", record, owned(200, generation=2))
    instance.refused = lambda method, path: False
    leftovers = set(await properties(client, part_prefix("prod"))) - before
    assert leftovers  # the dead run's parts are on the instance, named by nothing

    read, read_record, _ = await read_inventory(client, "prod")
    assert (read.generation, read.resources) == (old.generation, old.resources)
    assert (read_record is None) == first_write

    latest = owned(200, generation=3)
    await store_inventory(client, "prod", read_record, latest)
    pointer = parse_head(await head_value(client, "prod"))
    assert isinstance(pointer, PartsPointer)
    assert {n.split(".")[-2] for n in await properties(client, part_prefix("prod"))} == {pointer.parts.id}
    assert (await read_inventory(client, "prod"))[0] == latest


async def test_shrinking_back_inline_deletes_every_part(client: InstanceClient) -> None:
    record = await store_inventory(client, "prod", None, owned(300))
    assert await properties(client, part_prefix("prod"))
    await store_inventory(client, "prod", record, owned(2, generation=2))
    assert await properties(client, part_prefix("prod")) == {}
    assert len((await read_inventory(client, "prod"))[0].resources) == 2


def packable(stack: str = "prod", generation: int = 1) -> Inventory:
    """The largest ``owned`` inventory too long for a value as JSON whose packed form fits one (issue 18)."""
    fits = [n for n in range(1, 60) if packed_head(owned(n, stack, generation)) is not None]
    inventory = owned(max(fits), stack, generation)
    assert len(inventory.to_json()) > VALUE_LIMIT
    return inventory


async def test_an_inventory_that_fits_packed_is_held_by_its_head_alone_written_in_one_request(
    client: InstanceClient, instance: Refuse
) -> None:
    inventory = packable()
    clear(instance)
    record = await store_inventory(client, "prod", None, inventory)
    writes = [e for e in log(instance) if e["method"] != "GET"]
    assert [(e["method"], e["path"]) for e in writes] == [("POST", TABLE_PATH)]  # the head: no part record first
    assert await properties(client, part_prefix("prod")) == {}
    head = parse_head(await head_value(client, "prod"))
    assert isinstance(head, PackedInventory) and head.generation == inventory.generation
    read, read_record, _ = await read_inventory(client, "prod")
    assert read == inventory and read_record is not None and read_record.sys_id == record.sys_id
    # grown past what a packed head holds: parts, then back to packed (the parts deleted)
    record = await store_inventory(client, "prod", record, owned(300, generation=2))
    assert await properties(client, part_prefix("prod"))
    smaller = packable(generation=3)
    await store_inventory(client, "prod", record, smaller)
    assert await properties(client, part_prefix("prod")) == {}
    assert (await read_inventory(client, "prod"))[0] == smaller


@pytest.mark.parametrize("damage", ["wrong digest", "cut data"])
async def test_a_damaged_packed_head_is_a_clear_error_naming_the_stack(client: InstanceClient, damage: str) -> None:
    await store_inventory(client, "payments-prod", None, packable(stack="payments-prod"))
    head = (await properties(client, property_name("payments-prod")))[property_name("payments-prod")]
    tampered = json.loads(head["value"])
    if damage == "wrong digest":
        tampered["packed"]["sha256"] = hashlib.sha256(b"something else").hexdigest()
        expected = "its packed data do not match the digest"
    else:
        tampered["packed"]["data"] = tampered["packed"]["data"][:-100]
        expected = "is damaged: its packed data"
    await client.update("sys_properties", head["sys_id"], {"value": json.dumps(tampered)})
    with pytest.raises(MtlsConfigError) as caught:
        await read_inventory(client, "payments-prod")
    assert "stack 'payments-prod'" in str(caught.value) and expected in str(caught.value)
    assert "mtls-config import" in str(caught.value)


@pytest.mark.parametrize("damage", ["missing part", "wrong digest", "cut part"])
async def test_damaged_parts_are_a_clear_error_naming_the_stack(client: InstanceClient, damage: str) -> None:
    await store_inventory(client, "payments-prod", None, owned(300, stack="payments-prod"))
    parts = await properties(client, part_prefix("payments-prod"))
    victim = sorted(parts)[1]
    if damage == "missing part":
        await client.delete("sys_properties", parts[victim]["sys_id"])
        expected = "points to parts that are missing (1 of "
    elif damage == "cut part":
        await client.update("sys_properties", parts[victim]["sys_id"], {"value": parts[victim]["value"][:-100]})
        expected = "is damaged"
    else:
        head = (await properties(client, property_name("payments-prod")))[property_name("payments-prod")]
        tampered = json.loads(head["value"])
        tampered["parts"]["sha256"] = hashlib.sha256(b"something else").hexdigest()
        await client.update("sys_properties", head["sys_id"], {"value": json.dumps(tampered)})
        expected = "do not match the digest"
    with pytest.raises(MtlsConfigError) as caught:
        await read_inventory(client, "payments-prod")
    assert "stack 'payments-prod'" in str(caught.value) and expected in str(caught.value)
    assert "mtls-config import" in str(caught.value)  # the hint: how to recover


async def test_stacks_whose_names_share_a_prefix_never_see_or_delete_each_others_parts(
    client: InstanceClient,
) -> None:
    eu = owned(200, stack="prod-eu")
    await store_inventory(client, "prod-eu", None, eu)
    eu_parts = await properties(client, part_prefix("prod-eu"))
    # An admin's own property under the stack's prefix, not shaped like a part: never read, never deleted.
    await client.create("sys_properties", {"name": f"{part_prefix('prod')}notes", "value": "hands off"})
    record = None
    for generation in (1, 2, 3):
        record = await store_inventory(client, "prod", record, owned(200, generation=generation))
    assert await properties(client, part_prefix("prod-eu")) == eu_parts
    assert (await read_inventory(client, "prod-eu"))[0] == eu
    assert (await read_inventory(client, "prod"))[0].generation == 3
    assert f"{part_prefix('prod')}notes" in await properties(client, part_prefix("prod"))


async def test_a_value_the_instance_cuts_short_stops_the_write_before_the_head_names_it(
    client: InstanceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parts longer than the emulator's 4000-character column, as on an instance whose column is shorter.
    monkeypatch.setattr("mtls_config.inventory.VALUE_LIMIT", 4500)
    monkeypatch.setattr("mtls_config.inventory_store.VALUE_LIMIT", 4500)
    with pytest.raises(MtlsConfigError) as caught:
        await store_inventory(client, "prod", None, owned(300))
    assert "stored 4000 of the 4500 characters" in str(caught.value)
    assert property_name("prod") not in await properties(client, "mtls_config.")  # no head names the cut parts


async def test_the_emulator_cuts_a_property_value_at_its_column_length(client: InstanceClient) -> None:
    row = await client.create("sys_properties", {"name": "x.long", "value": "v" * 4001})
    assert len(row["value"]) == 4000
