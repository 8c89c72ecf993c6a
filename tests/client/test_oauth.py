"""OAuth 2.0 against the emulator's /oauth_token.do: client-credentials and password grants, one token shared
by concurrent requests, refresh on expiry (refresh_token grant) and on a 401 (a new grant)."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.client import InstanceClient
from mtls_config.errors import AuthenticationFailed
from mtls_config.secrets import SecretValue
from mtls_config.settings import InstanceSettings, OAuthClientCredentials, OAuthPassword

from .conftest import (
    BASE_URL,
    CANARY_CLIENT_SECRET,
    CANARY_PASSWORD,
    OAUTH_CLIENT_ID,
    Control,
    SleepRecorder,
    connect,
)

pytestmark = pytest.mark.anyio

CLIENT_CREDENTIALS = OAuthClientCredentials(OAUTH_CLIENT_ID, SecretValue(CANARY_CLIENT_SECRET.encode(), "test"))


def token_calls(log: list[dict[str, object]]) -> int:
    return sum(1 for e in log if e["path"] == "/oauth_token.do")


async def test_client_credentials_token_is_fetched_once_for_concurrent_requests(
    app: Starlette, control: Control
) -> None:
    async with connect(app, auth=CLIENT_CREDENTIALS) as sn:
        results = await asyncio.gather(*(sn.list("sys_rest_message", fields=["name"]) for _ in range(8)))
        assert all(results)
        assert sn.stats.snapshot()["oauth.token"]["requests"] == 1
    log = await control.requests(path_prefix="/")
    assert token_calls(log) == 1


async def test_password_grant(app: Starlette) -> None:
    auth = OAuthPassword(
        OAUTH_CLIENT_ID, SecretValue(CANARY_CLIENT_SECRET.encode(), "t"), "wsa", SecretValue(b"wsa-pass", "t")
    )
    async with connect(app, auth=auth) as sn:
        message = (await sn.list("sys_rest_message", fields=["sys_id"]))[0]
        updated = await sn.update("sys_rest_message", message["sys_id"], {"use_mutual_auth": "true"})
    assert updated["sys_updated_by"] == "wsa"


async def test_a_refused_client_secret_is_authentication_failed_without_the_secret(app: Starlette) -> None:
    wrong = OAuthClientCredentials(OAUTH_CLIENT_ID, SecretValue(b"not-the-secret-99", "env:SN_CLIENT_SECRET"))
    async with connect(app, auth=wrong) as sn:
        with pytest.raises(AuthenticationFailed, match="client_credentials") as caught:
            await sn.list("sys_certificate")
    assert "not-the-secret-99" not in str(caught.value) and "SN_CLIENT_SECRET" in str(caught.value)


async def test_expired_token_is_refreshed_and_a_revoked_one_replaced(app: Starlette, control: Control) -> None:
    now = [1000.0]
    settings = InstanceSettings(url=BASE_URL, auth=CLIENT_CREDENTIALS)
    async with InstanceClient(
        settings, httpx.ASGITransport(app=app), sleep=SleepRecorder(), clock=lambda: now[0]
    ) as sn:
        await sn.list("sys_certificate")
        now[0] += 1800  # past expires_in: the client refreshes before sending
        await sn.list("sys_certificate")
        assert sn.stats.snapshot()["oauth.token"]["requests"] == 2
        await control.reset()  # the instance forgets every token: the next call gets a 401
        await sn.list("sys_certificate")
        # 401 -> refresh_token refused (forgotten too) -> a new client_credentials grant -> the call again
        assert sn.stats.snapshot()["oauth.token"]["requests"] == 4
    statuses = [(e["path"], e["status"]) for e in await control.requests(path_prefix="/")]
    assert ("/api/now/table/sys_certificate", 401) in statuses
    assert statuses[-1] == ("/api/now/table/sys_certificate", 200)


async def test_grant_sequence_on_the_wire() -> None:
    """The form fields sent to /oauth_token.do, in order: grant, refresh on expiry, new grant when refused."""
    forms: list[dict[str, list[str]]] = []
    issued = 0

    def instance(request: httpx.Request) -> httpx.Response:
        nonlocal issued
        if request.url.path == "/oauth_token.do":
            form = parse_qs(request.content.decode())
            forms.append(form)
            if form["grant_type"] == ["refresh_token"] and len(forms) > 2:
                return httpx.Response(401, json={"error": "invalid_grant", "error_description": "expired"})
            issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"tok-{issued}-abcdef",
                    "refresh_token": f"ref-{issued}-abcdef",
                    "expires_in": 100,
                },
            )
        return httpx.Response(200, json={"result": []})

    now = [0.0]
    auth = OAuthPassword(
        OAUTH_CLIENT_ID,
        SecretValue(CANARY_CLIENT_SECRET.encode(), "t"),
        "svc",
        SecretValue(CANARY_PASSWORD.encode(), "t"),
    )
    async with InstanceClient(
        InstanceSettings(url=BASE_URL, auth=auth), httpx.MockTransport(instance), clock=lambda: now[0]
    ) as sn:
        for _ in range(3):
            await sn.list("sys_certificate")
            now[0] += 100
    assert [f["grant_type"][0] for f in forms] == ["password", "refresh_token", "refresh_token", "password"]
    assert forms[1]["refresh_token"] == ["ref-1-abcdef"]
    assert all(f["client_secret"] == [CANARY_CLIENT_SECRET] for f in forms)
