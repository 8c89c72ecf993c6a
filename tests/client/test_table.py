"""The Table API through the real client against the emulator in-process: records, pagination, IN chunks,
request accounting, and errors mapped with the instance's message and a hint."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.client import InstanceClient, in_list_chunks
from mtls_config.errors import AuthenticationFailed, PermissionDenied, RecordNotFound, TableNotFound
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings

from .conftest import BASE_URL, Control, SleepRecorder, connect, make_app

pytestmark = pytest.mark.anyio

SYS_ID = "0123456789abcdef0123456789abcdef"


async def test_record_life_cycle(sn: InstanceClient) -> None:
    created = await sn.create("sys_properties", {"name": "x.y", "value": "1"}, sys_id=SYS_ID)
    assert created["sys_id"] == SYS_ID and created["value"] == "1" and created["sys_mod_count"] == "0"
    updated = await sn.update("sys_properties", SYS_ID, {"value": "2"})
    assert updated["value"] == "2" and updated["sys_mod_count"] == "1"
    got = await sn.get("sys_properties", SYS_ID, fields=["name", "value"])
    assert got == {"name": "x.y", "value": "2"}
    await sn.delete("sys_properties", SYS_ID)
    assert await sn.get("sys_properties", SYS_ID) is None
    await sn.delete("sys_properties", SYS_ID)  # missing_ok by default
    with pytest.raises(RecordNotFound):
        await sn.delete("sys_properties", SYS_ID, missing_ok=False)
    with pytest.raises(RecordNotFound, match="No Record found"):
        await sn.update("sys_properties", SYS_ID, {"value": "3"})


async def test_references_come_as_plain_sys_ids(sn: InstanceClient) -> None:
    rows = await sn.list("sys_rest_message_fn", fields=["rest_message", "function_name"])
    assert rows and all(isinstance(row["rest_message"], str) and len(row["rest_message"]) == 32 for row in rows)
    linked = await sn.list("sys_rest_message_fn", fields=["rest_message"], exclude_reference_link=False)
    assert all(set(row["rest_message"]) == {"link", "value"} for row in linked)


async def test_pagination_follows_offsets_and_stops_without_an_extra_request(
    sn: InstanceClient, control: Control
) -> None:
    for i in range(25):
        await sn.create("sys_properties", {"name": f"page.test.{i:02d}", "value": str(i)})
    await control.clear()
    rows = await sn.list("sys_properties", query="nameSTARTSWITHpage.test.", fields=["name"], page_size=10)
    assert sorted(r["name"] for r in rows) == [f"page.test.{i:02d}" for i in range(25)]
    log = await control.requests()
    offsets = [parse_qs(e["query"])["sysparm_offset"][0] for e in log]
    assert offsets == ["0", "10", "20"]

    await control.clear()
    exactly = await sn.list("sys_properties", query="nameSTARTSWITHpage.test.0", fields=["name"], page_size=10)
    assert len(exactly) == 10
    assert len(await control.requests()) == 1  # X-Total-Count says there is no second page
    assert sn.stats.snapshot()["table.list"]["requests"] == 4


class InFlight(httpx.AsyncBaseTransport):
    """Counts the requests in flight at once on their way to the emulator."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.now = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.now -= 1


async def test_pages_after_the_first_go_out_at_once_when_the_count_is_known() -> None:
    app = make_app(latency_ms=20)  # each answer takes a while, so requests sent together overlap
    transport = InFlight(httpx.ASGITransport(app=app))
    settings = InstanceSettings(url=BASE_URL, auth=BasicAuth("admin", SecretValue(b"admin", "test")))
    async with InstanceClient(settings, transport, sleep=SleepRecorder()) as sn:
        for i in range(45):
            await sn.create("sys_properties", {"name": f"burst.test.{i:02d}", "value": str(i)})
        transport.peak = 0
        control = Control(app)
        async with control.http:
            await control.clear()
            rows = await sn.list("sys_properties", query="nameSTARTSWITHburst.test.", fields=["name"], page_size=10)
            log = await control.requests()
    assert sorted(r["name"] for r in rows) == [f"burst.test.{i:02d}" for i in range(45)]
    assert sorted(int(parse_qs(e["query"])["sysparm_offset"][0]) for e in log) == [0, 10, 20, 30, 40]
    assert transport.peak == 4  # the first page alone, then the four the count announced, together


async def test_a_list_with_no_match_is_empty(sn: InstanceClient) -> None:
    assert await sn.list("sys_properties", query="name=does.not.exist") == []


async def test_long_in_queries_are_chunked_under_the_url_limit(sn: InstanceClient, control: Control) -> None:
    names = [f"chunk.test.{i:04d}.{'x' * 40}" for i in range(300)]
    for name in names[::30]:
        await sn.create("sys_properties", {"name": name})
    await control.clear()
    found: list[str] = []
    for chunk in in_list_chunks(names):
        found += [r["name"] for r in await sn.list("sys_properties", query=f"nameIN{','.join(chunk)}", fields=["name"])]
    assert sorted(found) == sorted(names[::30])
    log = await control.requests()
    assert len(log) > 1
    assert all(len(e["path"]) + len(e["query"]) < 8000 for e in log)


async def test_unknown_table_is_table_not_found_with_a_hint(sn: InstanceClient) -> None:
    with pytest.raises(TableNotFound) as caught:
        await sn.list("sys_no_such_table")
    assert "sys_no_such_table" in str(caught.value) and "plugin" in str(caught.value)


async def test_wrong_password_is_authentication_failed(app: Starlette) -> None:
    async with connect(app, password="wrong") as client:
        with pytest.raises(AuthenticationFailed) as caught:
            await client.list("sys_certificate")
    assert "User Not Authenticated" in str(caught.value) and "SN_PASSWORD" in str(caught.value)


@pytest.mark.parametrize(
    ("user", "password", "table", "roles"),
    [
        ("nobody", "nobody-pass", "sys_certificate", "admin role"),
        ("wsa", "wsa-pass", "sys_protocol_profile", "admin role"),
        ("nobody", "nobody-pass", "sys_rest_message", "web_service_admin or admin"),
    ],
)
async def test_missing_roles_are_permission_denied_naming_the_roles(
    app: Starlette, sleeps: SleepRecorder, user: str, password: str, table: str, roles: str
) -> None:
    async with connect(app, sleeps, user=user, password=password) as client:
        with pytest.raises(PermissionDenied) as caught:
            await client.create(table, {"name": "x", "protocol": "mauth"})
    assert roles in str(caught.value)
    assert caught.value.status == 403
    assert sleeps.delays == []


async def test_web_service_admin_may_bind_messages(app: Starlette) -> None:
    async with connect(app, user="wsa", password="wsa-pass") as client:
        message = (await client.list("sys_rest_message", fields=["sys_id"]))[0]
        updated = await client.update("sys_rest_message", message["sys_id"], {"use_mutual_auth": "true"})
    assert updated["use_mutual_auth"] == "true"


async def test_stats_count_requests_and_bytes_per_operation(sn: InstanceClient) -> None:
    await sn.create("sys_properties", {"name": "stats.a", "value": "v" * 1000})
    await sn.list("sys_properties", query="name=stats.a")
    snap = sn.stats.snapshot()
    assert snap["table.create"]["requests"] == 1 and snap["table.create"]["bytes_sent"] > 1000
    assert snap["table.list"]["bytes_received"] > 1000
    assert snap["total"]["requests"] == 2
