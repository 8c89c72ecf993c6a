"""Record life cycle and the instance's rules: audit fields, partial updates, deletes and cascades, password2
storage, certificate derivation, protocol profiles, and every [I] toggle in both positions."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.emulator import create_app
from mtls_config.emulator.models import Backend
from tests.emulator.conftest import PartnerCert, asgi_client, emulator_config

pytestmark = pytest.mark.anyio
CANARY = "canary-Keystore-Pa55-e1f2"


async def create(client: httpx.AsyncClient, table: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
    r = await client.post(f"/api/now/table/{table}", json=body, params=params)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


async def test_audit_fields_and_partial_updates(client: httpx.AsyncClient) -> None:
    cert = await create(client, "sys_certificate", {"name": "ks", "type": "key_store", "short_description": "first"})
    assert cert["sys_mod_count"] == "0" and cert["sys_created_by"] == "admin" and cert["active"] == "true"
    r = await client.patch(f"/api/now/table/sys_certificate/{cert['sys_id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["result"]["active"] == "false"
    r = await client.put(f"/api/now/table/sys_certificate/{cert['sys_id']}", json={"short_description": "second"})
    result = r.json()["result"]
    assert result["sys_mod_count"] == "2" and result["active"] == "false" and result["short_description"] == "second"
    # An update that changes nothing writes nothing.
    r = await client.patch(f"/api/now/table/sys_certificate/{cert['sys_id']}", json={"short_description": "second"})
    assert r.json()["result"]["sys_mod_count"] == "2"
    # sys_ fields and derived fields are not settable.
    r = await client.patch(
        f"/api/now/table/sys_certificate/{cert['sys_id']}", json={"sys_mod_count": "99", "expires": "x"}
    )
    assert r.json()["result"]["sys_mod_count"] == "2" and r.json()["result"]["expires"] == ""


async def test_empty_string_clears_a_field_but_not_a_choice(client: httpx.AsyncClient) -> None:
    cert = await create(client, "sys_certificate", {"name": "ks", "type": "key_store", "short_description": "x"})
    r = await client.patch(
        f"/api/now/table/sys_certificate/{cert['sys_id']}", json={"short_description": "", "type": ""}
    )
    assert r.json()["result"]["short_description"] == "" and r.json()["result"]["type"] == "key_store"


async def test_post_location_sys_id_and_no_response_body(client: httpx.AsyncClient) -> None:
    wanted = "0123456789abcdef0123456789abcdef"
    r = await client.post("/api/now/v2/table/sys_properties", json={"sys_id": wanted, "name": "x.y", "value": "1"})
    assert r.status_code == 201
    assert r.headers["Location"] == f"https://emulator.test/api/now/v2/table/sys_properties/{wanted}"
    r = await client.post("/api/now/table/sys_properties", json={"sys_id": wanted, "name": "dup"})
    assert r.status_code == 400 and r.json()["status"] == "failure"
    r = await client.post(
        "/api/now/table/sys_properties", json={"name": "quiet"}, headers={"X-no-response-body": "true"}
    )
    assert r.status_code == 201 and r.content == b"" and "Location" in r.headers


async def test_list_body_inserts_only_the_first(client: httpx.AsyncClient, backend: Backend) -> None:
    r = await client.post("/api/now/table/sys_properties", json=[{"name": "one"}, {"name": "two"}])
    assert r.status_code == 201
    assert [p["name"] for p in backend.records("sys_properties")] == ["one"]


async def test_method_override_header(client: httpx.AsyncClient) -> None:
    prop = await create(client, "sys_properties", {"name": "p", "value": "1"})
    r = await client.post(
        f"/api/now/table/sys_properties/{prop['sys_id']}",
        json={"value": "2"},
        headers={"X-HTTP-Method-Override": "PATCH"},
    )
    assert r.status_code == 200 and r.json()["result"]["value"] == "2"


async def test_delete_then_404_and_cascades(client: httpx.AsyncClient, backend: Backend) -> None:
    acme = backend.list("sys_rest_message", backend.user("admin"), query="name=Acme Payments API").records[0]  # type: ignore[arg-type]
    r = await client.delete(f"/api/now/table/sys_rest_message/{acme['sys_id']}")
    assert r.status_code == 204 and r.content == b""
    assert (await client.delete(f"/api/now/table/sys_rest_message/{acme['sys_id']}")).status_code == 404
    assert not [f for f in backend.records("sys_rest_message_fn") if f["rest_message"] == acme["sys_id"]]


async def test_password2_stored_encrypted_and_never_served_clear(client: httpx.AsyncClient, backend: Backend) -> None:
    cert = await create(client, "sys_certificate", {"name": "ks", "type": "key_store", "key_store_password": CANARY})
    stored = backend.record("sys_certificate", cert["sys_id"])
    assert stored is not None and CANARY not in stored["key_store_password"] and stored["key_store_password"]
    assert backend.reveal_password("sys_certificate", cert["sys_id"], "key_store_password") == CANARY
    for params in ({}, {"sysparm_display_value": "true"}, {"sysparm_display_value": "all"}):
        r = await client.get(f"/api/now/table/sys_certificate/{cert['sys_id']}", params=params)
        assert CANARY not in r.text
    r = await client.get("/api/now/table/sys_certificate", params={"sysparm_query": f"key_store_password={CANARY}"})
    assert CANARY not in r.text


@pytest.mark.parametrize(("mode", "expected"), [("empty", ""), ("masked", "********"), ("ciphertext", "<ciphertext>")])
async def test_password2_read_modes(mode: str, expected: str) -> None:
    app = create_app(emulator_config(password2_read=mode))
    async with asgi_client(app) as client:
        cert = await create(
            client, "sys_certificate", {"name": "ks", "type": "key_store", "key_store_password": CANARY}
        )
    stored = app.state.backend.record("sys_certificate", cert["sys_id"])["key_store_password"]
    assert cert["key_store_password"] == (stored if expected == "<ciphertext>" else expected)


@pytest.mark.parametrize("needs_flag", [False, True])
async def test_password2_write_toggle(needs_flag: bool) -> None:
    app = create_app(emulator_config(password2_write_needs_input_display_value=needs_flag))
    backend: Backend = app.state.backend
    async with asgi_client(app) as client:
        plain = await create(
            client, "sys_certificate", {"name": "a", "type": "key_store", "key_store_password": CANARY}
        )
        flagged = await create(
            client,
            "sys_certificate",
            {"name": "b", "type": "key_store", "key_store_password": CANARY},
            sysparm_input_display_value="true",
        )
    assert backend.reveal_password("sys_certificate", plain["sys_id"], "key_store_password") == (
        "" if needs_flag else CANARY
    )
    assert backend.reveal_password("sys_certificate", flagged["sys_id"], "key_store_password") == CANARY


async def test_certificate_derivation_follows_the_pem(client: httpx.AsyncClient, partner_cert: PartnerCert) -> None:
    cert = await create(
        client, "sys_certificate", {"name": "t", "type": "trust_store", "pem_certificate": partner_cert.pem}
    )
    assert cert["subject"] == partner_cert.subject and cert["issuer"] == partner_cert.issuer
    assert cert["valid_from"] == "2025-01-02 03:04:05" and cert["serial_number"] == "1234abcd"
    r = await client.patch(
        f"/api/now/table/sys_certificate/{cert['sys_id']}", json={"pem_certificate": "not a certificate"}
    )
    result = r.json()["result"]
    assert result["expires"] == "" and result["subject"] == "" and result["expires_in_days"] == ""


async def test_der_trust_certificate_derived_from_its_attachment(
    client: httpx.AsyncClient, partner_cert: PartnerCert
) -> None:
    cert = await create(client, "sys_certificate", {"name": "d", "type": "trust_store", "format": "der"})
    assert cert["expires"] == ""
    r = await client.post(
        "/api/now/attachment/file",
        params={"table_name": "sys_certificate", "table_sys_id": cert["sys_id"], "file_name": "partner.der"},
        content=partner_cert.der,
        headers={"Content-Type": "application/pkix-cert"},
    )
    assert r.status_code == 201
    r = await client.get(f"/api/now/table/sys_certificate/{cert['sys_id']}")
    assert r.json()["result"]["subject"] == partner_cert.subject


async def test_references_by_display_value_and_choice_labels(client: httpx.AsyncClient) -> None:
    ks = await create(
        client, "sys_certificate", {"name": "by-name-ks", "type": "Java Key Store"}, sysparm_input_display_value="true"
    )
    assert ks["type"] == "key_store"
    profile = await create(client, "sys_protocol_profile", {"protocol": "byname", "keystore": "by-name-ks"})
    assert profile["keystore"]["value"] == ks["sys_id"]


@pytest.mark.parametrize("enabled", [True, False])
async def test_protocol_properties_toggle(enabled: bool) -> None:
    app = create_app(emulator_config(create_protocol_properties=enabled))
    async with asgi_client(app) as client:
        ks = await create(client, "sys_certificate", {"name": "k", "type": "pkcs12_key_store"})
        profile = await create(
            client, "sys_protocol_profile", {"protocol": "mauth", "default_port": 8443, "keystore": ks["sys_id"]}
        )
        names = {p["name"]: p["value"] for p in app.state.backend.records("sys_properties")}
        if enabled:
            assert names == {
                "glide.httpclient.protocol.mauth.class": "com.glide.certificates.DBKeyStoreSocketFactory",
                "glide.httpclient.protocol.mauth.port": "8443",
            }
        else:
            assert names == {}
        await client.delete(f"/api/now/table/sys_protocol_profile/{profile['sys_id']}")
        assert app.state.backend.records("sys_properties") == []


@pytest.mark.parametrize("enabled", [True, False])
async def test_auto_create_get_method_toggle(enabled: bool) -> None:
    app = create_app(emulator_config(auto_create_get_method=enabled))
    async with asgi_client(app) as client:
        msg = await create(client, "sys_rest_message", {"name": "Partner API", "rest_endpoint": "https://p.example/v1"})
        r = await client.get(
            "/api/now/table/sys_rest_message_fn",
            params={
                "sysparm_query": f"rest_message={msg['sys_id']}",
                "sysparm_fields": "function_name,http_method,qualified_name",
            },
        )
    expected = [{"function_name": "Default GET", "http_method": "get", "qualified_name": "Partner API [ Default GET ]"}]
    assert r.json()["result"] == (expected if enabled else [])


@pytest.mark.parametrize(("returns_no_rows", "count"), [(False, 1), (True, 0)])
async def test_invalid_query_toggle(returns_no_rows: bool, count: int) -> None:
    app = create_app(emulator_config(invalid_query_returns_no_rows=returns_no_rows))
    async with asgi_client(app) as client:
        r = await client.get("/api/now/table/sys_user", params={"sysparm_query": "user_name=admin^bogus=1"})
    assert len(r.json()["result"]) == count


@pytest.mark.parametrize(("mode", "status"), [("filter", 200), ("403", 403)])
async def test_list_without_read_role_toggle(mode: str, status: int) -> None:
    app = create_app(emulator_config(list_without_read_role=mode))
    async with asgi_client(app, auth=("itil", "itil-pass")) as client:
        r = await client.get("/api/now/table/sys_certificate")
    assert r.status_code == status
    if status == 403:
        assert r.json()["error"]["message"] == "Insufficient rights to query records"


@pytest.mark.parametrize(("enabled", "status"), [(True, 404), (False, 200)])
async def test_v1_empty_list_toggle(enabled: bool, status: int) -> None:
    app = create_app(emulator_config(v1_empty_list_404=enabled))
    async with asgi_client(app) as client:
        r = await client.get("/api/now/v1/table/sys_certificate")
    assert r.status_code == status


async def test_keystore_type_check_toggle(app: Starlette) -> None:
    lax = create_app(emulator_config(enforce_keystore_reference_type=False))
    async with asgi_client(lax) as client:
        trust = await create(client, "sys_certificate", {"name": "t", "type": "trust_store"})
        r = await client.post(
            "/api/now/table/sys_protocol_profile", json={"protocol": "lax", "keystore": trust["sys_id"]}
        )
    assert r.status_code == 201


@pytest.mark.parametrize(("refused", "status"), [(False, 201), (True, 400)])
async def test_inactive_keystore_reference_toggle(refused: bool, status: int) -> None:
    app = create_app(emulator_config(refuse_inactive_keystore_reference=refused))
    async with asgi_client(app) as client:
        keystore = await create(client, "sys_certificate", {"name": "k", "type": "key_store", "active": "false"})
        r = await client.post(
            "/api/now/table/sys_protocol_profile", json={"protocol": "inact", "keystore": keystore["sys_id"]}
        )
    assert r.status_code == status


async def test_seed_data(backend: Backend) -> None:
    messages = {m["name"]: m for m in backend.records("sys_rest_message")}
    assert set(messages) == {"Acme Payments API", "Weather Service"}
    assert messages["Acme Payments API"]["rest_endpoint"] == "https://api.acme-payments.example/v2"
    fns = {(f["rest_message"], f["function_name"], f["http_method"]) for f in backend.records("sys_rest_message_fn")}
    acme = messages["Acme Payments API"]["sys_id"]
    assert {(acme, "Default GET", "get"), (acme, "post_payment", "post")} <= fns
    soap = {m["name"]: m["sys_id"] for m in backend.records("sys_soap_message")}
    soap_fns = {(f["soap_message"], f["function_name"]) for f in backend.records("sys_soap_message_function")}
    assert soap_fns == {
        (soap["Globex Orders"], "submitOrder"),
        (soap["Globex Orders"], "getStatus"),
        (soap["Legacy Billing"], "invoice"),
    }
    assert backend.records("sys_certificate") == [] and backend.records("sys_protocol_profile") == []
    assert {u["user_name"] for u in backend.records("sys_user")} == {"admin", "wsa", "itil"}


async def test_reset_and_seed_control_endpoints(client: httpx.AsyncClient, backend: Backend) -> None:
    await create(client, "sys_certificate", {"name": "x"})
    assert (await client.post("/_emulator/reset", json={})).status_code == 200
    assert backend.records("sys_certificate") == [] and len(backend.records("sys_rest_message")) == 2
    await client.post("/_emulator/reset", json={"seed": False})
    assert backend.records("sys_rest_message") == []
    await client.post("/_emulator/seed", json={})
    await client.post("/_emulator/seed", json={})  # idempotent
    assert len(backend.records("sys_rest_message")) == 2 and len(backend.records("sys_rest_message_fn")) == 3


@pytest.mark.parametrize(
    "header",
    ["Basic " + base64.b64encode(b"\xff\xfe").decode(), "Basic !!notbase64", "Bearer unknown-token", "Digest x"],
)
async def test_malformed_or_unknown_credentials_are_401(app: Starlette, header: str) -> None:
    async with asgi_client(app, auth=None) as client:
        r = await client.get("/api/now/table/sys_user", headers={"Authorization": header})
    assert r.status_code == 401 and r.json()["error"]["message"] == "User Not Authenticated"


async def test_seed_after_renaming_a_seed_record(client: httpx.AsyncClient, backend: Backend) -> None:
    weather = next(m for m in backend.records("sys_rest_message") if m["name"] == "Weather Service")
    await client.patch(f"/api/now/table/sys_rest_message/{weather['sys_id']}", json={"name": "Renamed"})
    assert (await client.post("/_emulator/seed", json={})).status_code == 200
    assert sorted(m["name"] for m in backend.records("sys_rest_message")) == [
        "Acme Payments API",
        "Renamed",
        "Weather Service",
    ]
