"""Fixtures for the client tests: a no-op sleep that records delays, canary credentials, settings."""

from __future__ import annotations

import pytest

from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings

CANARY_PASSWORD = "canary-Pa55w0rd-7f3e91"
CANARY_CLIENT_SECRET = "canary-client-secret-4b8d2a"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
