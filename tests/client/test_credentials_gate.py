"""A wrong password costs one failed login, not one per concurrent request (instances lock accounts)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.errors import AuthenticationFailed
from tests.client.conftest import basic_settings

pytestmark = pytest.mark.anyio


async def _log(app: object) -> list[dict[str, object]]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://e", auth=("admin", "admin")) as control:
        return list((await control.get("/_emulator/requests")).json())


async def test_wrong_password_is_tried_once_then_refused_without_sending() -> None:
    app = create_app(EmulatorConfig())
    settings = basic_settings(url="http://127.0.0.1", password="wrong-password")
    async with InstanceClient(settings, transport=httpx.ASGITransport(app=app)) as client:
        tables = ["sys_certificate", "sys_protocol_profile", "sys_rest_message", "sys_soap_message"] * 2
        results = await asyncio.gather(*(client.list(t) for t in tables), return_exceptions=True)
    assert all(isinstance(r, AuthenticationFailed) for r in results)
    assert [entry["status"] for entry in await _log(app)] == [401]


async def test_right_password_then_full_concurrency() -> None:
    app = create_app(EmulatorConfig())
    settings = basic_settings(url="http://127.0.0.1", password="admin")
    async with InstanceClient(settings, transport=httpx.ASGITransport(app=app)) as client:
        tables = ["sys_certificate", "sys_protocol_profile", "sys_rest_message", "sys_soap_message"]
        results = await asyncio.gather(*(client.list(t) for t in tables))
    assert len(results) == 4
    assert [entry["status"] for entry in await _log(app)] == [200] * 4
