"""Canary credentials never show: not in errors (message, repr, traceback chain), not in logs at DEBUG, not in
reprs of settings or clients, for basic auth and OAuth alike, whatever path the failure takes."""

from __future__ import annotations

import logging
import traceback

import pytest
from starlette.applications import Starlette

from mtls_config.errors import MtlsConfigError
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, OAuthClientCredentials, OAuthPassword

from .conftest import CANARY_CLIENT_SECRET, CANARY_PASSWORD, OAUTH_CLIENT_ID, Control, SleepRecorder, connect

pytestmark = pytest.mark.anyio

CANARIES = (CANARY_PASSWORD, CANARY_CLIENT_SECRET)


def everything_about(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


@pytest.mark.parametrize(
    "auth",
    [
        BasicAuth("canary", SecretValue(CANARY_PASSWORD.encode(), "env:SN_PASSWORD")),
        OAuthClientCredentials(OAUTH_CLIENT_ID, SecretValue(CANARY_CLIENT_SECRET.encode(), "env:SN_CLIENT_SECRET")),
        OAuthPassword(
            OAUTH_CLIENT_ID,
            SecretValue(CANARY_CLIENT_SECRET.encode(), "env:SN_CLIENT_SECRET"),
            "canary",
            SecretValue(CANARY_PASSWORD.encode(), "env:SN_PASSWORD"),
        ),
    ],
    ids=["basic", "client-credentials", "password-grant"],
)
async def test_canaries_stay_hidden_through_success_faults_and_failures(
    app: Starlette,
    control: Control,
    sleeps: SleepRecorder,
    caplog: pytest.LogCaptureFixture,
    auth: BasicAuth | OAuthClientCredentials | OAuthPassword,
) -> None:
    caplog.set_level(logging.DEBUG)
    failures: list[BaseException] = []
    seen_credentials: set[str] = set()

    async def recording_app(scope, receive, send):  # type: ignore[no-untyped-def]
        # Remember every Authorization header value (basic pair, bearer tokens) the instance received.
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                seen_credentials.add(value.decode().split(" ", 1)[1])
        await app(scope, receive, send)

    async with connect(recording_app, sleeps, auth=auth, max_retries=1) as sn:  # type: ignore[arg-type]
        texts = [repr(sn), repr(sn.settings), str(sn.settings), repr(auth)]
        await sn.list("sys_certificate")  # succeeds: tokens now exist
        for faults in ({"fail_rate": 1.0}, {"drop_rate": 1.0}, {"rate_limit": 0}):
            await control.faults(**faults)
            with pytest.raises(MtlsConfigError) as caught:
                await sn.update("sys_certificate", "a" * 32, {"name": "x"})
            failures.append(caught.value)
            await control.faults(fail_rate=0, drop_rate=0, rate_limit=None)
        await control.reset()  # tokens forgotten: the client renews them
        with pytest.raises(MtlsConfigError) as caught:
            await sn.get("sys_no_such_table", "a" * 32)
        failures.append(caught.value)
    texts += [everything_about(f) for f in failures]
    texts.append(caplog.text)
    assert "GET /api/now/table/sys_certificate" in caplog.text
    assert seen_credentials
    for text in texts:
        for secret in (*CANARIES, *seen_credentials):
            assert secret not in text
    assert len(failures) == 4
