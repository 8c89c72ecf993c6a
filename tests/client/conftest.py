"""Fixtures for the client tests: the emulator in-process (with its control endpoints), the real client
wired to it with a no-op sleep that records delays, canary credentials and settings."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.secrets import SecretValue
from mtls_config.settings import Auth, BasicAuth, InstanceSettings

CANARY_PASSWORD = "canary-Pa55w0rd-7f3e91"
CANARY_CLIENT_SECRET = "canary-client-secret-4b8d2a"


class SleepRecorder:
    """Stands in for asyncio.sleep so retry tests never wait; remembers what they were asked to wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def basic_settings(
    url: str = "https://acme.service-now.com", password: str = "admin", **kw: object
) -> InstanceSettings:
    return InstanceSettings(
        url=url,
        auth=BasicAuth("admin", SecretValue(password.encode(), "test")),
        **kw,  # type: ignore[arg-type]
    )


BASE_URL = "https://acme.service-now.com"
OAUTH_CLIENT_ID = "mtls-config-cli"
USERS = {
    "admin": ("admin", ("admin",)),
    "wsa": ("wsa-pass", ("web_service_admin",)),
    "nobody": ("nobody-pass", ()),
    "canary": (CANARY_PASSWORD, ("admin",)),
}


def make_app(**changes: Any) -> Starlette:
    config = EmulatorConfig(users=USERS, oauth_clients={OAUTH_CLIENT_ID: CANARY_CLIENT_SECRET}, **changes)
    return create_app(config)


class Control:
    """The emulator's /_emulator endpoints: request log, faults, reset."""

    def __init__(self, app: Starlette) -> None:
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://control", auth=("admin", "admin")
        )

    async def requests(self, path_prefix: str = "/api/") -> list[dict[str, Any]]:
        reply = await self.http.get("/_emulator/requests")
        reply.raise_for_status()
        return [e for e in reply.json() if e["path"].startswith(path_prefix)]

    async def clear(self) -> None:
        (await self.http.request("DELETE", "/_emulator/requests", json={})).raise_for_status()

    async def faults(self, **changes: Any) -> None:
        (await self.http.patch("/_emulator/faults", json=changes)).raise_for_status()

    async def reset(self) -> None:
        (await self.http.post("/_emulator/reset", json={})).raise_for_status()


@pytest.fixture
def app() -> Starlette:
    return make_app()


@pytest.fixture
async def control(app: Starlette) -> AsyncIterator[Control]:
    ctl = Control(app)
    async with ctl.http:
        yield ctl


def connect(
    app: Starlette,
    sleeps: SleepRecorder | None = None,
    *,
    auth: Auth | None = None,
    user: str = "admin",
    password: str = "admin",
    **client_options: Any,
) -> InstanceClient:
    settings_options = {k: client_options.pop(k) for k in ("max_concurrency", "max_retries") if k in client_options}
    settings = InstanceSettings(
        url=BASE_URL,
        auth=auth or BasicAuth(user, SecretValue(password.encode(), "test")),
        **settings_options,
    )
    return InstanceClient(
        settings,
        httpx.ASGITransport(app=app),
        sleep=sleeps or SleepRecorder(),
        rng=random.Random(7),
        **client_options,
    )


@pytest.fixture
async def sn(app: Starlette, sleeps: SleepRecorder) -> AsyncIterator[InstanceClient]:
    async with connect(app, sleeps) as client:
        yield client
