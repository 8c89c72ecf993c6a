"""Fixtures for the emulator's tests: a fresh emulated instance per test (in-process through httpx's ASGI
transport), the same served on a real socket, test certificates, and a body matcher for table-driven cases.

Tests that take the ``sn`` fixture also run against a real instance when ``MTLS_CONFIG_TEST_INSTANCE`` (and
``MTLS_CONFIG_TEST_USERNAME`` / ``MTLS_CONFIG_TEST_PASSWORD``) are set; otherwise that variant is skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette

from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.models import Backend
from mtls_config.emulator.server import ThreadedServer
from tests.conftest import BOTH_TARGETS, REAL_INSTANCE, real_instance_credentials
from tests.pki import CA

BASE_URL = "https://emulator.test"
USERS = {
    "admin": ("admin", ("admin",)),
    "wsa": ("wsa-pass", ("web_service_admin",)),
    "itil": ("itil-pass", ("itil",)),
}


def emulator_config(**changes: Any) -> EmulatorConfig:
    """The tests' instance: three users, an OAuth client, and (unless asked for) none of the stock build properties,
    so that a test of what a write did to sys_properties sees only its own records."""
    changes.setdefault("build_properties", ())
    return EmulatorConfig(users=USERS, oauth_clients={"cli-id": "cli-secret"}, **changes)


STOCK = EmulatorConfig()  # every stock record a default instance has (the dual-target tests see them)


@pytest.fixture
def app() -> Starlette:
    return create_app(emulator_config())


@pytest.fixture
def backend(app: Starlette) -> Backend:
    backend: Backend = app.state.backend
    return backend


def asgi_client(app: Starlette, auth: tuple[str, str] | None = ("admin", "admin")) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, auth=auth, headers={"Accept": "application/json"}
    )


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


@dataclass
class Target:
    """Where a dual-target test runs: the emulator (with its app) or a real instance (app is None)."""

    client: httpx.AsyncClient
    app: Starlette | None

    @property
    def is_real(self) -> bool:
        return self.app is None


@pytest.fixture(params=BOTH_TARGETS)
async def sn(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    if request.param == "emulator":
        app = create_app(emulator_config(build_properties=STOCK.build_properties))
        async with asgi_client(app) as c:
            yield Target(c, app)
        return
    auth = real_instance_credentials()
    async with httpx.AsyncClient(
        base_url=REAL_INSTANCE.rstrip("/"), auth=auth, headers={"Accept": "application/json"}, timeout=60
    ) as c:
        yield Target(c, None)


@pytest.fixture
def served() -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(emulator_config())) as server:
        yield server


@pytest.fixture(scope="session")
def served_tls() -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(emulator_config()), tls=True) as server:
        yield server


# ---------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class PartnerCert:
    pem: str
    der: bytes
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int


def make_cert(common_name: str, days: int = 400) -> PartnerCert:
    """A partner's certificate from the partner's own CA, with no extensions: the emulator reads only its names,
    dates and serial number."""
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Partner")]
    )
    start = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    partner_ca = CA.root("Partner Test CA")
    cert = partner_ca.issue(name, serial=0x1234ABCD, not_before=start, days=days, extensions=False).cert
    return PartnerCert(
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        der=cert.public_bytes(serialization.Encoding.DER),
        subject=f"O=Partner,CN={common_name}",
        issuer="CN=Partner Test CA",
        not_before=start,
        not_after=start + dt.timedelta(days=days),
        serial=0x1234ABCD,
    )


@pytest.fixture(scope="session")
def partner_cert() -> PartnerCert:
    return make_cert("api.partner.example", days=4000)


# ---------------------------------------------------------------------- matching


SYS_ID = re.compile(r"[0-9a-f]{32}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
PLACEHOLDERS = {"<sys_id>": SYS_ID, "<date>": DATE, "<any>": re.compile(r".*", re.S)}


def assert_matches(actual: Any, expected: Any, where: str = "body") -> None:
    """``expected`` is a subset of ``actual``: dicts by key, lists item by item (same length), strings exactly
    or by placeholder (``<sys_id>``, ``<date>``, ``<any>``); ``"<absent>"`` as a value means the key is missing."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, want in expected.items():
            if want == "<absent>":
                assert key not in actual, f"{where}.{key}: expected absent, got {actual[key]!r}"
                continue
            assert key in actual, f"{where}.{key}: missing (keys: {sorted(actual)})"
            assert_matches(actual[key], want, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{where}: expected {len(expected)} items, got {len(actual)}: {actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(a, e, f"{where}[{i}]")
    elif isinstance(expected, str) and expected in PLACEHOLDERS:
        assert isinstance(actual, str) and PLACEHOLDERS[expected].fullmatch(actual), (
            f"{where}: {actual!r} is not {expected}"
        )
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"
