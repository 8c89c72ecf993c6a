"""Resolving what to verify: endpoints read from the (emulated) instance, URLs as the instance dials them, key
entries from KeyStore specs and files, trust from TrustStoreCerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.errors import KeystoreError, SecretError, VerifyError
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from mtls_config.spec.loader import load_specs
from mtls_config.spec.models import MessageBinding, ProtocolProfile
from mtls_config.verify.targets import (
    binding_endpoint,
    binding_on_instance,
    https_url,
    identity_from_file,
    identity_from_key_store,
    trust_from_specs,
)
from tests.conftest import EXAMPLE_STACK
from tests.verify.conftest import PKI


@pytest.fixture
async def client() -> AsyncIterator[InstanceClient]:
    settings = InstanceSettings(url="local", auth=BasicAuth("admin", SecretValue(b"admin", "test")))
    transport = httpx.ASGITransport(app=create_app(EmulatorConfig()))  # seeded with REST and SOAP messages
    async with InstanceClient(settings, transport=transport) as c:
        yield c


def binding(kind: str, message: str, functions: object = None) -> MessageBinding:
    return MessageBinding.model_validate(
        {
            "apiVersion": "mtls-config/v1",
            "kind": "MessageBinding",
            "metadata": {"name": "b"},
            "spec": {"message": {"type": kind, "name": message}, "functions": functions, "protocolProfile": "mauth"},
        }
    )


def profile(port: int = 443) -> ProtocolProfile:
    return ProtocolProfile.model_validate(
        {
            "apiVersion": "mtls-config/v1",
            "kind": "ProtocolProfile",
            "metadata": {"name": "mauth"},
            "spec": {"port": port, "keyStore": "ks"},
        }
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "name", "url", "source"),
    [
        (
            "rest",
            "Acme Payments API",
            "https://api.acme-payments.example/v2",
            "sys_rest_message 'Acme Payments API'.rest_endpoint",
        ),
        (  # an OAuth provider's mutual auth is for its token requests: verified at its token_url
            "oauth",
            "Acme Payments OAuth",
            "https://auth.acme-payments.example/oauth2/token",
            "oauth_entity 'Acme Payments OAuth'.token_url",
        ),
    ],
)
async def test_the_endpoint_comes_from_the_record(
    client: InstanceClient, kind: str, name: str, url: str, source: str
) -> None:
    assert await binding_endpoint(client, binding(kind, name)) == (url, source)


@pytest.mark.anyio
async def test_soap_endpoint_comes_from_a_bound_function(client: InstanceClient) -> None:
    url, source = await binding_endpoint(client, binding("soap", "Globex Orders", ["submitOrder"]))
    assert url == "https://orders.globex.example/ws/OrderService"
    assert source == "sys_soap_message_function 'Globex Orders/submitOrder'.soap_endpoint"
    _url, source = await binding_endpoint(client, binding("soap", "Globex Orders", "all"))
    assert "'Globex Orders/getStatus'" in source  # the first by name


@pytest.mark.anyio
async def test_an_http_connection_at_its_url_or_else_its_host(client: InstanceClient) -> None:
    url, source = await binding_endpoint(client, binding("connection", "Globex Orders Connection"))
    assert (url, source) == (
        "https://orders.globex.example",
        "http_connection 'Globex Orders Connection'.connection_url",
    )
    (row,) = await client.list("http_connection", query="name=Globex Orders Connection", fields=["sys_id"])
    await client.update("http_connection", row["sys_id"], {"connection_url": ""})
    url, source = await binding_endpoint(client, binding("connection", "Globex Orders Connection"))
    assert (url, source) == ("https://orders.globex.example/", "http_connection 'Globex Orders Connection'.host")


@pytest.mark.anyio
async def test_what_the_instance_would_do_with_a_binding(client: InstanceClient) -> None:
    """Read from the records as they are: the seeded REST message is not bound yet, and basic authentication is
    what the docs want; an OAuth 2.0 method would stop it."""
    issues = await binding_on_instance(client, binding("rest", "Acme Payments API", "all"), 443)
    assert [(i.code, i.severity) for i in issues] == [("not-bound", "warning")] * 3  # the message and its 2 methods
    (method,) = await client.list("sys_rest_message_fn", query="function_name=post_payment", fields=["sys_id"])
    await client.update("sys_rest_message_fn", method["sys_id"], {"authentication_type": "oauth2"})
    await client.create("sys_properties", {"name": "glide.httpclient.protocol.mauth.port", "value": "8443"})
    issues = await binding_on_instance(client, binding("rest", "Acme Payments API", "all"), 443)
    assert [(i.code, i.severity) for i in issues if i.code != "not-bound"] == [
        ("oauth2", "error"),
        ("protocol-property", "warning"),
    ]


@pytest.mark.anyio
async def test_a_message_missing_on_the_instance(client: InstanceClient) -> None:
    with pytest.raises(VerifyError, match="'No Such API' does not exist on the instance"):
        await binding_endpoint(client, binding("rest", "No Such API"))


@pytest.mark.parametrize(
    ("raw", "port", "expected"),
    [
        ("https://api.partner.example/v1?x=1", 443, "https://api.partner.example/v1?x=1"),
        ("mauth://api.partner.example/v1", 443, "https://api.partner.example/v1"),
        ("mauth://api.partner.example/v1", 8443, "https://api.partner.example:8443/v1"),
        ("https://api.partner.example:9443/v1", 8443, "https://api.partner.example:9443/v1"),
    ],
)
def test_the_url_the_instance_dials(raw: str, port: int, expected: str) -> None:
    assert https_url(raw, profile(port)) == expected


def test_other_schemes_are_refused() -> None:
    with pytest.raises(VerifyError, match="does not start with https:// or mauth://"):
        https_url("http://api.partner.example/", profile())


def test_key_entries_and_trust_from_the_example_stack() -> None:
    specs = load_specs([EXAMPLE_STACK / "resources"], root=EXAMPLE_STACK)
    built = identity_from_key_store(specs, "Acme Payments client")  # a build: assembled in memory
    assert built.alias == "acme-client" and len(built.chain) == 3
    stored = identity_from_key_store(specs, "Globex client")  # a JKS file, its password from a file
    assert stored.chain
    trust = trust_from_specs(specs)
    assert trust.sources == ("TrustStoreCert/Acme Payments server CA", "TrustStoreCert/Globex orders server")
    assert len(trust.certificates) >= 2
    with pytest.raises(VerifyError, match="no KeyStore named 'nope'"):
        identity_from_key_store(specs, "nope")


def test_pkcs12_file_and_its_password(pki: PKI, tmp_path: Path) -> None:
    path = tmp_path / "client.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"client",
            pki.client.key,
            pki.client.cert,
            [pki.client_ica.cert],
            serialization.BestAvailableEncryption(b"p12-password"),
        )
    )
    identity = identity_from_file(path, SecretValue(b"p12-password", "test"))
    assert identity.chain[0] == pki.client.cert
    with pytest.raises(SecretError, match="password of"):
        identity_from_file(path, None)
    with pytest.raises(KeystoreError):
        identity_from_file(path, SecretValue(b"wrong", "test"))
    (tmp_path / "x.pem").write_bytes(pki.pem(pki.client.cert))
    with pytest.raises(KeystoreError, match="not a JKS or PKCS12 keystore"):
        identity_from_file(tmp_path / "x.pem", SecretValue(b"p", "test"))
