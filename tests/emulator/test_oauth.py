"""OAuth 2.0 token endpoint (/oauth_token.do): client credentials, password and refresh grants; bearer tokens
are accepted like basic auth and expire."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.emulator.models import Backend
from tests.emulator.conftest import asgi_client

pytestmark = pytest.mark.anyio


async def _token(app: Starlette, **form: str) -> httpx.Response:
    async with asgi_client(app, auth=None) as client:
        return await client.post("/oauth_token.do", data=form)


async def _whoami(app: Starlette, token: str) -> httpx.Response:
    async with asgi_client(app, auth=None) as client:
        return await client.post(
            "/api/now/table/sys_properties", json={"name": "who"}, headers={"Authorization": f"Bearer {token}"}
        )


async def test_client_credentials_grant(app: Starlette) -> None:
    r = await _token(app, grant_type="client_credentials", client_id="cli-id", client_secret="cli-secret")
    assert r.status_code == 200
    body = r.json()
    assert (
        body["token_type"] == "Bearer" and body["expires_in"] == 1800 and body["access_token"] and body["refresh_token"]
    )
    r = await _whoami(app, body["access_token"])
    assert r.status_code == 201 and r.json()["result"]["sys_created_by"] == "admin"


async def test_password_grant_acts_as_the_user(app: Starlette) -> None:
    r = await _token(
        app, grant_type="password", client_id="cli-id", client_secret="cli-secret", username="wsa", password="wsa-pass"
    )
    assert r.status_code == 200
    assert (await _whoami(app, r.json()["access_token"])).status_code == 403  # wsa may not write sys_properties


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "client_credentials", "client_id": "cli-id", "client_secret": "wrong"},
        {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "cli-secret"},
        {
            "grant_type": "password",
            "client_id": "cli-id",
            "client_secret": "cli-secret",
            "username": "admin",
            "password": "x",
        },
        {"grant_type": "refresh_token", "client_id": "cli-id", "client_secret": "cli-secret", "refresh_token": "nope"},
        {"grant_type": "authorization_code", "client_id": "cli-id", "client_secret": "cli-secret"},
    ],
    ids=["bad-secret", "unknown-client", "bad-user-password", "unknown-refresh-token", "unsupported-grant"],
)
async def test_refused_grants(app: Starlette, form: dict[str, str]) -> None:
    r = await _token(app, **form)
    assert r.status_code == 401 and r.json()["error"] == "server_error" and "access_token" not in r.text


async def test_refresh_and_expiry(app: Starlette, backend: Backend) -> None:
    first = (await _token(app, grant_type="client_credentials", client_id="cli-id", client_secret="cli-secret")).json()
    now = dt.datetime.now(dt.UTC)
    backend.clock = lambda: now + dt.timedelta(seconds=1801)
    r = await _whoami(app, first["access_token"])
    assert r.status_code == 401 and r.json()["error"]["message"] == "User Not Authenticated"
    refreshed = await _token(
        app,
        grant_type="refresh_token",
        client_id="cli-id",
        client_secret="cli-secret",
        refresh_token=first["refresh_token"],
    )
    assert refreshed.status_code == 200
    assert (await _whoami(app, refreshed.json()["access_token"])).status_code == 201


async def test_client_secret_basic(app: Starlette) -> None:
    async with asgi_client(app, auth=("cli-id", "cli-secret")) as client:
        r = await client.post("/oauth_token.do", data={"grant_type": "client_credentials"})
    assert r.status_code == 200 and r.json()["access_token"]
    async with asgi_client(app, auth=("cli-id", "wrong")) as client:
        r = await client.post("/oauth_token.do", data={"grant_type": "client_credentials"})
    assert r.status_code == 401
