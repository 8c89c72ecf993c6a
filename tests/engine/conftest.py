"""Fixtures for the engine tests: the example stack copied to a temporary spec repository, and the
emulator in-process behind the real client."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from tests.pki import self_signed

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def stack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the example spec repository (its own .mtls-config/ local instance), as cwd."""
    target = tmp_path / "two-partners"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".mtls-config"))
    monkeypatch.chdir(target)
    yield target


def local_settings() -> InstanceSettings:
    # The emulator's documented default user, as the embedded local instance uses it: not a secret.
    return InstanceSettings(url="local", auth=BasicAuth("admin", SecretValue(b"admin", "test", published=True)))


@pytest.fixture
def emulator_app():  # type: ignore[no-untyped-def]
    return create_app(EmulatorConfig())


@pytest.fixture
async def client(emulator_app) -> AsyncIterator[InstanceClient]:  # type: ignore[no-untyped-def]
    async with InstanceClient(local_settings(), transport=httpx.ASGITransport(app=emulator_app)) as c:
        yield c


def open_local(stack_dir: Path) -> InstanceClient:
    """A client on the stack's embedded local instance (the same SQLite file the CLI uses)."""
    app = create_app(EmulatorConfig(db_path=stack_dir / ".mtls-config" / "instance.db"))
    return InstanceClient(local_settings(), transport=httpx.ASGITransport(app=app))


async def rename_soap_message(stack_dir: Path) -> None:
    """Rename the example's SOAP message on its local instance, behind the specs' back: its binding's plan then
    has an error (the message it binds is gone)."""
    async with open_local(stack_dir) as c:
        msg = (await c.list("sys_soap_message", query="name=Globex Orders", fields=["sys_id"]))[0]
        await c.update("sys_soap_message", msg["sys_id"], {"name": "Globex Orders (old)"})


async def hand_made_keystore(client: InstanceClient, name: str = "Legacy client") -> None:
    """A keystore record made by hand on the instance (the example's Globex JKS attached): what 'import' adopts."""
    record = await client.create(
        "sys_certificate",
        {"name": name, "type": "key_store", "key_store_password": "demo-keystore-password"},
        input_display_value=True,
    )
    jks = (EXAMPLE / "keystores" / "globex-client.jks").read_bytes()
    await client.upload_attachment("sys_certificate", record["sys_id"], "legacy.jks", jks)


def short_lived_cert(days: int) -> str:
    """A self-signed PEM certificate that expires in ``days`` days."""
    now = dt.datetime.now(dt.UTC)
    partner = self_signed(
        "expiring.partner.example", serial=7, not_before=now - dt.timedelta(days=300),
        not_after=now + dt.timedelta(days=days), extensions=False,
    )  # fmt: skip
    return partner.pem.decode()


# The accounts of an emulator served for the CLI: name -> (password, roles). No password is a word the output uses
# (a role's name): the CLI masks the instance password wherever it appears.
ACCOUNTS = {
    "admin": ("Adm1n-pass", ("admin",)),
    "itil": ("itil-pass", ("itil",)),
    "wsa": ("wsa-pass", ("web_service_admin",)),
}


def as_user(monkeypatch: pytest.MonkeyPatch, user: str, password: str | None = None) -> None:
    """The CLI's credentials (SN_USERNAME / SN_PASSWORD) for one of ``ACCOUNTS``, or a wrong ``password``."""
    monkeypatch.setenv("SN_USERNAME", user)
    monkeypatch.setenv("SN_PASSWORD", password or ACCOUNTS[user][0])


ADMIN = ("admin", ACCOUNTS["admin"][0])  # httpx auth of the served emulator's admin


ACL_REFUSAL = b'{"error": {"message": "Operation Failed", "detail": "ACL Exception Update Failed"}}'


async def refuse(send: Any) -> None:
    """Answer an ASGI request as an instance refusing a write (403, its ACL message): for wrappers that refuse
    chosen requests."""
    await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": ACL_REFUSAL})


@contextmanager
def serve(**config: Any) -> Iterator[ThreadedServer]:
    """An emulator with ``ACCOUNTS`` (and ``config``) on a free port of 127.0.0.1, as 'emulator serve' runs it."""
    with ThreadedServer(create_app(EmulatorConfig(users=ACCOUNTS, **config))) as server:
        yield server


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedServer]:
    """A served emulator, the CLI signed in as admin."""
    as_user(monkeypatch, "admin")
    with serve() as server:
        yield server
