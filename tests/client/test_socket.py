"""The real client against the emulator served by uvicorn on 127.0.0.1: plain HTTP, HTTPS verified with a
CA bundle (and refused without it), and dropped connections on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from mtls_config.client import InstanceClient
from mtls_config.emulator.faults import SOCKET_MODE
from mtls_config.errors import InstanceUnreachable
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from tests.pki import CA

from .conftest import Control, SleepRecorder, make_app
from .servers import TlsFiles, make_tls_files, serve

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory, cert_authority: CA) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"), cert_authority)


@pytest.fixture
def socket_app() -> Starlette:
    app = make_app()
    app.state.connection_mode = SOCKET_MODE  # drops close the socket, as a real network would
    return app


@pytest.fixture
def http_url(socket_app: Starlette) -> Iterator[str]:
    with serve(socket_app) as url:
        yield url


@pytest.fixture
def https_url(socket_app: Starlette, tls_files: TlsFiles) -> Iterator[str]:
    with serve(socket_app, tls_files) as url:
        yield url


def settings(url: str, verify: bool | str = True) -> InstanceSettings:
    return InstanceSettings(url=url, auth=BasicAuth("admin", SecretValue(b"admin", "test")), verify=verify)


async def test_plain_http_to_loopback_over_a_real_socket(http_url: str, sleeps: SleepRecorder) -> None:
    async with InstanceClient(settings(http_url), sleep=sleeps) as sn:
        cert = await sn.create("sys_certificate", {"name": "over-socket", "type": "key_store"})
        meta = await sn.upload_attachment("sys_certificate", cert["sys_id"], "a.jks", b"\x00\x01binary")
        assert await sn.download_attachment(meta["sys_id"]) == b"\x00\x01binary"
        assert [r["name"] for r in await sn.list("sys_certificate", query="name=over-socket")] == ["over-socket"]


async def test_https_verified_with_the_ca_bundle(https_url: str, tls_files: TlsFiles, sleeps: SleepRecorder) -> None:
    async with InstanceClient(settings(https_url, str(tls_files.ca_bundle)), sleep=sleeps) as sn:
        assert await sn.list("sys_rest_message", fields=["name"])


async def test_https_without_the_ca_bundle_is_refused_and_not_retried(
    https_url: str, socket_app: Starlette, sleeps: SleepRecorder
) -> None:
    async with InstanceClient(settings(https_url), sleep=sleeps) as sn:
        with pytest.raises(InstanceUnreachable, match="TLS verification") as caught:
            await sn.list("sys_rest_message")
    assert "--ca-bundle" in str(caught.value)
    assert sleeps.delays == []
    async with Control(socket_app).http as control:
        assert (await control.get("/_emulator/requests")).json() == []  # no request got through


async def test_a_wrong_ca_bundle_is_refused(https_url: str, tmp_path: Path, sleeps: SleepRecorder) -> None:
    other = make_tls_files(tmp_path)  # a CA of its own, not the session's
    async with InstanceClient(settings(https_url, str(other.ca_bundle)), sleep=sleeps) as sn:
        with pytest.raises(InstanceUnreachable, match="TLS verification"):
            await sn.list("sys_rest_message")


async def test_dropped_connections_on_a_real_socket_are_retried_without_duplicates(
    https_url: str, tls_files: TlsFiles, socket_app: Starlette, sleeps: SleepRecorder
) -> None:
    control = Control(socket_app)
    async with control.http:
        await control.faults(drop_rate=0.3, lost_response_rate=0.2)
        async with InstanceClient(settings(https_url, str(tls_files.ca_bundle)), sleep=sleeps) as sn:
            for i in range(10):
                sys_id = f"{i:032x}"
                await sn.create("sys_properties", {"name": f"sock.{i}"}, sys_id=sys_id)
                await sn.update("sys_properties", sys_id, {"value": "done"})
            retries = sn.stats.snapshot()["total"]["retries"]
        await control.faults(drop_rate=0, lost_response_rate=0)
        async with InstanceClient(settings(https_url, str(tls_files.ca_bundle)), sleep=sleeps) as check:
            rows = await check.list("sys_properties", query="nameSTARTSWITHsock.", fields=["name", "value"])
    assert sorted(r["name"] for r in rows) == sorted(f"sock.{i}" for i in range(10))
    assert {r["value"] for r in rows} == {"done"}
    assert retries > 0


async def test_unreachable_port_is_instance_unreachable(sleeps: SleepRecorder) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with InstanceClient(settings(f"http://127.0.0.1:{port}"), sleep=sleeps) as sn:
        with pytest.raises(InstanceUnreachable, match="ConnectError") as caught:
            await sn.list("sys_certificate")
    assert "after 6 attempts" in str(caught.value)
    assert len(sleeps.delays) == 5
