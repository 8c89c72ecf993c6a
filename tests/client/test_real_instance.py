"""Read-only client checks that run against the emulator always and against a real instance when
``MTLS_CONFIG_TEST_INSTANCE`` (with ``MTLS_CONFIG_TEST_USERNAME`` / ``MTLS_CONFIG_TEST_PASSWORD``) is set.
Nothing here writes, so it is safe to point at a shared development instance."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mtls_config.client import BatchRequest, InstanceClient
from mtls_config.errors import TableNotFound
from mtls_config.settings import settings_from_env
from tests.conftest import BOTH_TARGETS, REAL_INSTANCE, real_instance_credentials

from .conftest import SleepRecorder, connect, make_app

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BOTH_TARGETS)
async def target(request: pytest.FixtureRequest) -> AsyncIterator[InstanceClient]:
    if request.param == "emulator":
        async with connect(make_app()) as client:
            yield client
        return
    user, password = real_instance_credentials()
    env = {"SN_USERNAME": user, "SN_PASSWORD": password}
    async with InstanceClient(settings_from_env(REAL_INSTANCE, env=env), sleep=SleepRecorder()) as client:
        yield client


async def test_reads_of_the_managed_tables(target: InstanceClient) -> None:
    for table in ("sys_certificate", "sys_protocol_profile", "sys_rest_message", "sys_soap_message"):
        rows = await target.list(table, fields=["sys_id", "sys_updated_on"], page_size=500)
        assert all(len(r["sys_id"]) == 32 for r in rows)
    assert await target.get("sys_certificate", "0" * 32) is None
    assert await target.list("sys_certificate", query="name=mtls-config-test-no-such-record") == []
    assert await target.list_attachments("sys_certificate", ["0" * 32]) == []


async def test_unknown_table(target: InstanceClient) -> None:
    with pytest.raises(TableNotFound):
        await target.list("u_mtls_config_no_such_table")


async def test_batch_read(target: InstanceClient) -> None:
    answers = await target.batch(
        [
            BatchRequest("a", "GET", "/api/now/table/sys_rest_message?sysparm_limit=1&sysparm_fields=sys_id"),
            BatchRequest("b", "GET", "/api/now/table/sys_certificate/" + "0" * 32),
        ]
    )
    assert answers[0].status == 200 and isinstance(answers[0].body["result"], list)
    assert answers[1].status == 404
