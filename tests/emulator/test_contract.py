"""The instance's contract (``shared/reference/servicenow-facts-2.md``): facts the engine relies on that a real
instance shows silently. Each test runs against the emulator and, with ``MTLS_CONFIG_TEST_INSTANCE`` set, against a
real developer instance (marked ``real_instance``), so a fact the emulator serves is one a real instance confirms.

What runs on a real instance: reads of sys_user, sys_user_has_role, the data dictionary; one sys_properties record
(``mtls_config.contract.*``), one trust-store certificate (``mtls-config-contract-*``, inactive, no certificate text)
and one user (``mtls_config_contract_*``, role itil) created and deleted again. See docs/emulator.md, "Running
the emulator tests against a real instance".
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.emulator.conftest import Target

pytestmark = pytest.mark.anyio


def user_name(sn: Target) -> str:
    return os.environ.get("MTLS_CONFIG_TEST_USERNAME", "admin") if sn.is_real else "admin"


async def rows(
    client: httpx.AsyncClient, table: str, query: str, fields: str, auth: httpx.Auth | None = None, **params: str
) -> list[dict[str, Any]]:
    r = await client.get(
        f"/api/now/table/{table}",
        params={"sysparm_query": query, "sysparm_fields": fields, **params},
        **({"auth": auth} if auth is not None else {}),
    )
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["result"]
    return result


@pytest.fixture
async def me(sn: Target) -> dict[str, Any]:
    """The test user's sys_user row."""
    found = await rows(sn.client, "sys_user", f"user_name={user_name(sn)}", "sys_id,user_name")
    assert len(found) == 1
    return found[0]


# ---------------------------------------------------------------------- queries (facts-2 §7)

# {U}: the user name in upper case; each query should (or should not) return the user's row.
QUERY_CASES = [
    ("equals-ignores-case", "user_name={U}", True),
    ("not-equals-ignores-case", "user_name!={U}", False),
    ("in-ignores-case", "user_nameIN{U},mtls_config_nobody", True),
    ("not-in-ignores-case", "user_nameNOT IN{U}", False),
    ("startswith-ignores-case", "user_nameSTARTSWITH{U3}", True),
    ("like-ignores-case", "user_nameLIKE{U}", True),
    ("not-like-ignores-case", "user_nameNOT LIKE{U}", False),
    ("unknown-column-term-dropped", "u_mtls_config_no_such_column=1^user_name={u}", True),
    ("unknown-column-or-term-dropped", "user_name={u}^ORu_mtls_config_no_such_column=1", True),
]


@pytest.mark.parametrize(("query", "found"), [c[1:] for c in QUERY_CASES], ids=[c[0] for c in QUERY_CASES])
async def test_text_queries(sn: Target, me: dict[str, Any], query: str, found: bool) -> None:
    name = me["user_name"]
    query = query.replace("{U3}", name.upper()[:3]).replace("{U}", name.upper()).replace("{u}", name)
    ids = {r["sys_id"] for r in await rows(sn.client, "sys_user", query, "sys_id")}
    assert (me["sys_id"] in ids) is found


# ---------------------------------------------------------------------- writes (facts-2 §7)


@pytest.fixture
async def scratch_property(sn: Target) -> AsyncIterator[str]:
    name = f"mtls_config.contract.{secrets.token_hex(4)}"
    r = await sn.client.post(
        "/api/now/table/sys_properties", json={"name": name, "value": "1", "u_mtls_config_no_such_field": "x"}
    )
    assert r.status_code == 201, r.text
    result = r.json()["result"]
    try:
        assert result["name"] == name and result["value"] == "1"
        assert "u_mtls_config_no_such_field" not in result  # dropped silently, not refused
        yield result["sys_id"]
    finally:
        await sn.client.delete(f"/api/now/table/sys_properties/{result['sys_id']}")


async def test_unknown_fields_in_a_write_are_dropped_silently(sn: Target, scratch_property: str) -> None:
    r = await sn.client.patch(
        f"/api/now/table/sys_properties/{scratch_property}", json={"value": "2", "u_mtls_config_no_such_field": "y"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["value"] == "2" and "u_mtls_config_no_such_field" not in r.json()["result"]
    again = (await sn.client.get(f"/api/now/table/sys_properties/{scratch_property}")).json()["result"]
    assert again["value"] == "2" and "u_mtls_config_no_such_field" not in again


# ---------------------------------------------------------------------- the data dictionary (facts-2 §8, §9)

DICTIONARY_FIELDS = "name,element,column_label,internal_type,reference,max_length,mandatory,read_only,active"


async def column(sn: Target, table: str, element: str) -> dict[str, Any] | None:
    found = await rows(sn.client, "sys_dictionary", f"name={table}^element={element}", DICTIONARY_FIELDS)
    assert len(found) <= 1
    return found[0] if found else None


def keyed_by_name(value: Any, name: str) -> None:
    """A dictionary reference keyed by name: the value is the name, the link ends with ``?name=<value>``."""
    assert isinstance(value, dict) and value["value"] == name, value
    assert value["link"].endswith(f"?name={name}"), value


# (table, column, internal_type, referenced table or "", label or None when the reference does not give it)
COLUMN_CASES = [
    ("sys_rest_message", "use_mutual_auth", "boolean", "", "Use mutual authentication"),
    ("sys_rest_message", "protocol_name", "reference", "sys_protocol_profile", "Protocol profile"),
    ("sys_rest_message_fn", "use_mid_server", "reference", "ecc_agent", None),
    ("sys_soap_message", "enable_mutual_auth", "boolean", "", "Enable mutual authentication"),
    ("sys_soap_message", "protocol_profile", "reference", "sys_protocol_profile", "Protocol profile"),
    ("sys_soap_message_function", "enable_mutual_auth", "boolean", "", None),
    ("sys_soap_message_function", "protocol_profile", "reference", "sys_protocol_profile", None),
    ("sys_protocol_profile", "keystore", "reference", "sys_certificate", None),
    ("sys_certificate", "key_store_password", "password2", "", None),
    # issue 16: what makes mutual auth apply or not (facts-2 §1, §2, §4, §6)
    ("sys_soap_message_function", "use_mid_server", "reference", "ecc_agent", None),
    ("oauth_entity", "use_mutual_auth", "boolean", "", None),
    ("oauth_entity", "protocol_name", "reference", "sys_protocol_profile", None),
    ("sys_certificate", "expiration_notification", "boolean", "", None),
    ("sys_certificate", "notify_on_expiration", "glide_list", "sys_user", None),
    ("sys_certificate", "notify_groups", "glide_list", "sys_user_group", "Groups to notify on expiration"),
    ("sys_certificate", "warn_in_days_to_expire", "integer", "", None),
]


@pytest.mark.parametrize(
    "table",
    ["sys_rest_message", "sys_rest_message_fn", "sys_soap_message", "sys_soap_message_function"],
)
async def test_authentication_type_is_a_column(sn: Target, table: str) -> None:
    """facts-2 §1, §2: authentication_type on the four message tables (its type: a string with choices)."""
    assert await column(sn, table, "authentication_type") is not None


async def test_http_connections_name_their_mutual_auth_columns_by_label(sn: Target) -> None:
    """[I] facts-2 §3 gives the form labels, not the columns: a client finds them in the dictionary by label."""
    query = "nameINhttp_connection,sys_connection^column_labelINMutual authentication,Protocol profile"
    found = await rows(sn.client, "sys_dictionary", query, DICTIONARY_FIELDS, sysparm_exclude_reference_link="true")
    by_label = {r["column_label"]: r for r in found}
    assert set(by_label) == {"Mutual authentication", "Protocol profile"}, found
    assert by_label["Mutual authentication"]["internal_type"] == "boolean"
    protocol = by_label["Protocol profile"]
    assert (protocol["internal_type"], protocol["reference"]) == ("reference", "sys_protocol_profile")


@pytest.mark.parametrize("table", ["ecc_agent", "oauth_entity", "http_connection", "sys_connection", "sys_user_group"])
async def test_the_tables_of_issue_16_are_served(sn: Target, table: str) -> None:
    r = await sn.client.get(f"/api/now/table/{table}", params={"sysparm_limit": "1", "sysparm_fields": "sys_id"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("table", "element", "internal_type", "reference", "label"),
    COLUMN_CASES,
    ids=[f"{c[0]}.{c[1]}" for c in COLUMN_CASES],
)
async def test_dictionary_columns(
    sn: Target, table: str, element: str, internal_type: str, reference: str, label: str | None
) -> None:
    row = await column(sn, table, element)
    assert row is not None, f"{table}.{element} is not in sys_dictionary"
    assert row["name"] == table and row["active"] == "true"
    keyed_by_name(row["internal_type"], internal_type)
    if reference:
        keyed_by_name(row["reference"], reference)
    else:
        assert row["reference"] == ""
    if label is not None:
        assert row["column_label"] == label
    assert (
        row["max_length"].isdigit() and row["mandatory"] in ("true", "false") and row["read_only"] in ("true", "false")
    )


@pytest.mark.parametrize("table", ["sys_certificate", "sys_protocol_profile", "sys_rest_message", "sys_soap_message"])
async def test_each_table_has_one_collection_row(sn: Target, table: str) -> None:
    found = await rows(sn.client, "sys_dictionary", f"name={table}^elementISEMPTY", DICTIONARY_FIELDS)
    assert len(found) == 1
    keyed_by_name(found[0]["internal_type"], "collection")


async def test_the_dictionary_query_of_the_reference(sn: Target) -> None:
    """facts-2 §8's probe, as written: the mutual-auth and protocol columns of the SOAP tables."""
    query = (
        "nameINsys_soap_message,sys_soap_message_function,http_connection,sys_connection"
        "^elementLIKEmutual^ORelementLIKEprotocol"
    )
    found = await rows(sn.client, "sys_dictionary", query, DICTIONARY_FIELDS, sysparm_exclude_reference_link="true")
    pairs = {(r["name"], r["element"]) for r in found}
    for table in ("sys_soap_message", "sys_soap_message_function"):
        assert {(table, "enable_mutual_auth"), (table, "protocol_profile")} <= pairs
    assert all(isinstance(r["internal_type"], str) for r in found)  # no links asked for: plain names


@pytest.mark.parametrize(
    ("table", "parent"),
    [
        ("sys_rest_message", "sys_metadata"),
        ("sys_rest_message_fn", "sys_metadata"),
        ("sys_soap_message", "sys_metadata"),
        ("sys_certificate", ""),
        ("sys_protocol_profile", ""),
        ("oauth_entity", "sys_metadata"),
        ("http_connection", "sys_connection"),
    ],
)
async def test_table_hierarchy(sn: Target, table: str, parent: str) -> None:
    """sys_db_object.super_class points at the table a table extends; inherited columns are the parent's rows."""
    objects = await rows(sn.client, "sys_db_object", f"nameIN{table},{parent or table}", "sys_id,name,super_class")
    by_name = {o["name"]: o for o in objects}
    super_class = by_name[table]["super_class"]
    if not parent:
        assert super_class == ""
        return
    assert super_class["value"] == by_name[parent]["sys_id"]
    assert super_class["link"].endswith(f"/sys_db_object/{by_name[parent]['sys_id']}")
    inherited_column = {"sys_metadata": "sys_scope", "sys_connection": "connection_alias"}[parent]
    assert await column(sn, table, inherited_column) is None
    inherited = await column(sn, parent, inherited_column)
    assert inherited is not None and inherited["name"] == parent


async def test_a_parent_table_reads_its_children_rows(sn: Target) -> None:
    messages = await rows(sn.client, "sys_rest_message", "", "sys_id", sysparm_limit="5")
    if not messages:
        pytest.skip("no REST message on the instance")
    found = await rows(sn.client, "sys_metadata", f"sys_id={messages[0]['sys_id']}", "sys_id,sys_class_name")
    assert found == [{"sys_id": messages[0]["sys_id"], "sys_class_name": "sys_rest_message"}]


# ---------------------------------------------------------------------- roles (facts-2 §10)


async def test_the_current_users_roles(sn: Target) -> None:
    """What every plan reads first (mtls_config.access): the caller's grants, the role's and the user's names
    dot-walked."""
    found = await rows(
        sn.client, "sys_user_has_role", "user=javascript:gs.getUserID()", "role.name,inherited,state,user.user_name"
    )
    assert "admin" in {r["role.name"] for r in found}
    assert {r["user.user_name"] for r in found} == {user_name(sn)}
    assert {r["state"] for r in found} <= {"active", "requested", "pending", "revoked", ""}


async def test_the_current_user(sn: Target, me: dict[str, Any]) -> None:
    r = await sn.client.get("/api/now/ui/user/current_user")
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["user_sys_id"] == me["sys_id"] and result["user_name"] == me["user_name"]


async def _user_with_role(sn: Target, role: str) -> AsyncIterator[tuple[str, str]]:
    name, password = f"mtls_config_contract_{secrets.token_hex(4)}", f"Ct-{secrets.token_urlsafe(18)}-9a"
    c = sn.client
    r = await c.post(
        "/api/now/table/sys_user",
        json={"user_name": name, "first_name": "Contract", "last_name": "Test", "user_password": password},
        params={"sysparm_input_display_value": "true"},
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["result"]["sys_id"]
    grants: list[str] = []
    try:
        found = await rows(c, "sys_user_role", f"name={role}", "sys_id")
        r = await c.post("/api/now/table/sys_user_has_role", json={"user": user_id, "role": found[0]["sys_id"]})
        assert r.status_code == 201, r.text
        grants.append(r.json()["result"]["sys_id"])
        yield name, password
    finally:
        for grant in grants:
            await c.delete(f"/api/now/table/sys_user_has_role/{grant}")
        await c.delete(f"/api/now/table/sys_user/{user_id}")


@pytest.fixture
async def itil_user(sn: Target) -> AsyncIterator[tuple[str, str]]:
    """A user made by the admin through the Table API: the password written as a display value, the role itil."""
    async for user in _user_with_role(sn, "itil"):
        yield user


@pytest.fixture
async def wsa_user(sn: Target) -> AsyncIterator[tuple[str, str]]:
    """The same, with the role web_service_admin."""
    async for user in _user_with_role(sn, "web_service_admin"):
        yield user


@pytest.fixture
async def certificate(sn: Target) -> AsyncIterator[str]:
    r = await sn.client.post(
        "/api/now/table/sys_certificate",
        json={"name": f"mtls-config-contract-{secrets.token_hex(4)}", "type": "trust_store", "active": "false"},
    )
    assert r.status_code == 201, r.text
    sys_id: str = r.json()["result"]["sys_id"]
    try:
        yield sys_id
    finally:
        await sn.client.delete(f"/api/now/table/sys_certificate/{sys_id}")


READ_DENIED = [
    "sys_certificate",
    "sys_protocol_profile",
    "sys_rest_message",
    "sys_soap_message",
    "oauth_entity",
    "http_connection",
]


async def test_a_user_without_the_roles_reads_empty_tables(
    sn: Target, itil_user: tuple[str, str], certificate: str
) -> None:
    auth = httpx.BasicAuth(*itil_user)
    c = sn.client
    for table in READ_DENIED:
        r = await c.get(f"/api/now/table/{table}", params={"sysparm_fields": "sys_id"}, auth=auth)
        assert (r.status_code, r.json()) == (200, {"result": []}), f"{table}: {r.text}"
    r = await c.get(f"/api/now/table/sys_certificate/{certificate}", auth=auth)
    assert r.status_code == 404 and r.json()["error"]["message"] == "No Record found"
    r = await c.post("/api/now/table/sys_certificate", json={"name": "mtls-config-contract-denied"}, auth=auth)
    assert r.status_code == 403, r.text
    assert r.json() == {
        "error": {"message": "Operation Failed", "detail": "ACL Exception Insert Failed due to security constraints"},
        "status": "failure",
    }
    # The user's own grants are what a client reads to learn its roles.
    mine = await rows(c, "sys_user_has_role", "user=javascript:gs.getUserID()", "role.name", auth=auth)
    assert {r["role.name"] for r in mine} == {"itil"}


async def test_a_password_written_as_plain_value_does_not_log_in(sn: Target) -> None:
    """user_password_needs_input_display_value: a user_password written without sysparm_input_display_value is
    not a password anyone can log in with (servicenow-api.md §1 reports clients needing the flag)."""
    name, password = f"mtls_config_contract_{secrets.token_hex(4)}", f"Pl-{secrets.token_urlsafe(18)}-9a"
    r = await sn.client.post("/api/now/table/sys_user", json={"user_name": name, "user_password": password})
    assert r.status_code == 201
    user_id = r.json()["result"]["sys_id"]
    try:
        r = await sn.client.get("/api/now/table/sys_user", auth=httpx.BasicAuth(name, password))
        assert r.status_code == 401
    finally:
        await sn.client.delete(f"/api/now/table/sys_user/{user_id}")


# ---------------------------------------------------------------------- SOAP bindings (facts-2 §1)

PYSNC_PARAMS = {"sysparm_display_value": "all", "sysparm_exclude_reference_link": "true"}


def _letters(n: int) -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


async def test_soap_mutual_auth_columns_as_pysnc_reads_them(sn: Target, cleanup: list[str]) -> None:
    """The SOAP tables' mutual-auth columns are enable_mutual_auth and protocol_profile (ServiceNow's SOAPMessage
    reads them); REST's names written to them are dropped silently, and a query term on them is dropped too."""
    cert = await inactive_keystore(sn, cleanup)
    protocol = "mtlscfgs" + _letters(6)
    profile = await create(sn, cleanup, "sys_protocol_profile", {"protocol": protocol, "keystore": cert["sys_id"]})
    name = f"mtls-config contract {secrets.token_hex(4)}"
    message = await create(sn, cleanup, "sys_soap_message", {"name": name})
    function = await create(
        sn, cleanup, "sys_soap_message_function", {"soap_message": message["sys_id"], "function_name": "contractOp"}
    )
    assert await rows(sn.client, "sys_soap_message", f"enable_mutual_auth=true^name={name}", "sys_id") == []
    bound = {"enable_mutual_auth": "true", "protocol_profile": profile["sys_id"]}
    for table, record in (("sys_soap_message", message), ("sys_soap_message_function", function)):
        r = await sn.client.patch(
            f"/api/now/table/{table}/{record['sys_id']}",
            json={**bound, "use_mutual_auth": "true", "protocol_name": profile["sys_id"]},
        )
        assert r.status_code == 200, r.text
        read = await rows(sn.client, table, f"sys_id={record['sys_id']}", "", **PYSNC_PARAMS)
        assert read[0]["enable_mutual_auth"] == {"display_value": "true", "value": "true"}
        assert read[0]["protocol_profile"] == {"display_value": protocol, "value": profile["sys_id"]}
        assert "use_mutual_auth" not in read[0] and "protocol_name" not in read[0]
    # A term on REST's name is dropped: the query still finds the message by its other term.
    assert [
        r["sys_id"] for r in await rows(sn.client, "sys_soap_message", f"use_mutual_auth=false^name={name}", "sys_id")
    ] == [message["sys_id"]]
    assert len(await rows(sn.client, "sys_soap_message", f"enable_mutual_auth=true^name={name}", "sys_id")) == 1


# ---------------------------------------------------------------------- update sets and the build (facts-2 §9)


async def test_the_update_set_a_message_change_goes_to(sn: Target) -> None:
    """doctor's update-set check: the caller's sys_user_preference 'sys_update_set' names its current set (none:
    the instance's 'Default' set), and sys_update_set has that record with a state."""
    prefs = await rows(sn.client, "sys_user_preference", "user=javascript:gs.getUserID()^name=sys_update_set", "value")
    chosen = prefs[0]["value"] if prefs and prefs[0]["value"] else ""
    current = await rows(sn.client, "sys_update_set", f"sys_id={chosen}" if chosen else "name=Default", "name,state")
    assert len(current) == 1 and current[0]["name"] and current[0]["state"], current
    assert await rows(sn.client, "sys_update_set", "name=Default", "name")


async def test_the_build_properties(sn: Target) -> None:
    """doctor's build check: glide.buildtag and glide.war name the release."""
    found = await rows(sn.client, "sys_properties", "nameINglide.buildtag,glide.war", "name,value")
    assert {r["name"] for r in found if r["value"]} & {"glide.buildtag", "glide.war"}, found


# ---------------------------------------------------------------------- behaviours the reference leaves open ([I])


@pytest.fixture
async def cleanup(sn: Target) -> AsyncIterator[list[str]]:
    """URLs to DELETE after the test, last first."""
    urls: list[str] = []
    yield urls
    for url in reversed(urls):
        await sn.client.delete(url)


async def create(sn: Target, cleanup: list[str], table: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
    r = await sn.client.post(f"/api/now/table/{table}", json=body, params=params)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()["result"]
    cleanup.append(f"/api/now/table/{table}/{result['sys_id']}")
    return result


async def inactive_keystore(sn: Target, cleanup: list[str]) -> dict[str, Any]:
    """A keystore record without a file, inactive: what a profile can name for a test."""
    body = {"name": f"mtls-config-contract-{secrets.token_hex(4)}", "type": "key_store", "active": "false"}
    return await create(sn, cleanup, "sys_certificate", body)


async def test_a_new_rest_message_gets_a_default_get_method(sn: Target, cleanup: list[str]) -> None:
    """auto_create_get_method and qualified_name: the UI creates a "Default GET" method (facts-2 §2); a Table API
    insert doing the same is not confirmed."""
    name = f"mtls-config contract {secrets.token_hex(4)}"
    message = await create(sn, cleanup, "sys_rest_message", {"name": name, "rest_endpoint": "https://example.invalid"})
    methods = await rows(
        sn.client, "sys_rest_message_fn", f"rest_message={message['sys_id']}", "sys_id,function_name,qualified_name"
    )
    cleanup.extend(f"/api/now/table/sys_rest_message_fn/{m['sys_id']}" for m in methods)
    assert [(m["function_name"], m["qualified_name"]) for m in methods] == [("Default GET", f"{name} [ Default GET ]")]


async def test_password2_is_saved_without_the_flag_and_read_back_as_ciphertext(sn: Target, cleanup: list[str]) -> None:
    """password2_write_needs_input_display_value (False) and password2_read ("ciphertext")."""
    clear = f"ct-{secrets.token_hex(8)}"
    cert = await create(
        sn,
        cleanup,
        "sys_certificate",
        {"name": f"mtls-config-contract-{secrets.token_hex(4)}", "type": "key_store", "active": "false"},
    )
    url = f"/api/now/table/sys_certificate/{cert['sys_id']}"
    r = await sn.client.patch(url, json={"key_store_password": clear})
    assert r.status_code == 200
    stored = (await sn.client.get(url, params={"sysparm_fields": "key_store_password"})).json()["result"]
    assert stored["key_store_password"] not in ("", clear, "********")


async def test_v1_answers_404_for_an_empty_list(sn: Target) -> None:
    """v1_empty_list_404: the docs say v1 answers an empty list with 404, v2 with 200 []."""
    params = {"sysparm_query": "name=mtls_config.contract.no_such_property"}
    assert (await sn.client.get("/api/now/v1/table/sys_properties", params=params)).status_code == 404
    r = await sn.client.get("/api/now/v2/table/sys_properties", params=params)
    assert (r.status_code, r.json()) == (200, {"result": []})


async def test_saving_a_profile_writes_no_protocol_properties(sn: Target, cleanup: list[str]) -> None:
    """create_protocol_properties (False): saving a profile does not write glide.httpclient.protocol.<p>.*; the KBs
    have admins add them by hand and delete stale ones (facts-2 §5), which an automatic copy would undo."""
    protocol = "mtlscfgc" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
    prefix = f"glide.httpclient.protocol.{protocol}."
    await create(sn, cleanup, "sys_protocol_profile", {"protocol": protocol, "default_port": "8443"})
    found = await rows(sn.client, "sys_properties", f"nameSTARTSWITH{prefix}", "sys_id,name,value")
    cleanup[:0] = [f"/api/now/table/sys_properties/{p['sys_id']}" for p in found]  # after the profile
    assert found == []


async def test_a_profile_keystore_must_be_a_keystore(sn: Target, cleanup: list[str]) -> None:
    """enforce_keystore_reference_type: the docs require a Java or PKCS12 key store; that the instance refuses a
    trust certificate (rather than only filtering the form's pick list) is not confirmed."""
    trust = await create(
        sn,
        cleanup,
        "sys_certificate",
        {"name": f"mtls-config-contract-{secrets.token_hex(4)}", "type": "trust_store", "active": "false"},
    )
    r = await sn.client.post(
        "/api/now/table/sys_protocol_profile", json={"protocol": "mtlscfgtrust", "keystore": trust["sys_id"]}
    )
    if r.status_code == 201:
        cleanup.append(f"/api/now/table/sys_protocol_profile/{r.json()['result']['sys_id']}")
    assert r.status_code == 400 and r.json()["error"]["message"] == "Operation Failed"


async def test_a_profile_may_name_an_inactive_keystore(sn: Target, cleanup: list[str]) -> None:
    """refuse_inactive_keystore_reference (False): a profile naming a keystore that is still inactive is saved. apply
    creates a new profile beside its new keystore's activation (docs/architecture.md, "Why apply is safe"): were it
    refused, the profile would fail there and its next apply make it."""
    keystore = await inactive_keystore(sn, cleanup)
    protocol = "mtlscfgi" + _letters(6)
    profile = await create(sn, cleanup, "sys_protocol_profile", {"protocol": protocol, "keystore": keystore["sys_id"]})
    assert profile["keystore"]["value"] == keystore["sys_id"]  # (deleted before the keystore: last made, first deleted)


async def test_a_second_insert_of_a_sys_id_is_refused(sn: Target, cleanup: list[str]) -> None:
    """duplicate_sys_id ("reject"): an insert carrying the sys_id of a record that exists fails and leaves that
    record as it was (the primary key holds). The stack lock and the claims of names rely on it: of two runs
    inserting one sys_id, one gets it (docs/architecture.md, "Names belong to one stack")."""
    sys_id = secrets.token_hex(16)
    name = f"mtls_config.contract.{secrets.token_hex(4)}"
    first = await create(sn, cleanup, "sys_properties", {"name": name, "value": "first", "sys_id": sys_id})
    assert first["sys_id"] == sys_id
    r = await sn.client.post("/api/now/table/sys_properties", json={"name": name, "value": "second", "sys_id": sys_id})
    if r.status_code == 201:  # not refused: remove what it made before failing
        cleanup.append(f"/api/now/table/sys_properties/{r.json()['result']['sys_id']}")
    assert r.status_code >= 400, r.text
    stored = (await sn.client.get(f"/api/now/table/sys_properties/{sys_id}")).json()["result"]
    assert stored["value"] == "first" and stored["sys_mod_count"] == "0", stored


async def test_a_value_longer_than_its_column_is_cut(sn: Target, cleanup: list[str]) -> None:
    """over_max_length ("truncate"): sys_properties.value holds 4000 characters, and a longer value is cut."""
    prop = await create(
        sn, cleanup, "sys_properties", {"name": f"mtls_config.contract.{secrets.token_hex(4)}", "value": "x" * 4100}
    )
    stored = (await sn.client.get(f"/api/now/table/sys_properties/{prop['sys_id']}")).json()["result"]
    assert stored["value"] == "x" * 4000


# ---------------------------------------------------------------------- the tables' details marked [I]


async def test_soap_records_authenticate_as_their_rest_counterparts_by_default(sn: Target, cleanup: list[str]) -> None:
    """[I] A SOAP message defaults to no_authentication and its functions to inherit_from_parent, as REST's do."""
    message = await create(sn, cleanup, "sys_soap_message", {"name": f"mtls-config contract {secrets.token_hex(4)}"})
    function = await create(
        sn, cleanup, "sys_soap_message_function", {"soap_message": message["sys_id"], "function_name": "contractOp"}
    )
    assert message["authentication_type"] == "no_authentication"
    assert function["authentication_type"] == "inherit_from_parent"


# [I] columns of http_connection the reference does not name: (column, internal_type, referenced table)
CONNECTION_COLUMNS = [
    ("url_builder", "boolean", ""),
    ("protocol", "string", ""),
    ("port", "integer", ""),
    ("base_path", "string", ""),
    ("mid_server", "reference", "ecc_agent"),
]


@pytest.mark.parametrize(
    ("element", "internal_type", "reference"), CONNECTION_COLUMNS, ids=[c[0] for c in CONNECTION_COLUMNS]
)
async def test_http_connection_columns(sn: Target, element: str, internal_type: str, reference: str) -> None:
    row = await column(sn, "http_connection", element)
    assert row is not None, f"http_connection.{element} is not in sys_dictionary"
    keyed_by_name(row["internal_type"], internal_type)
    if reference:
        keyed_by_name(row["reference"], reference)


async def test_default_max_lengths(sn: Target) -> None:
    """[I] max_length where the reference gives none: 255 for a string column, 32 for a reference."""
    name = await column(sn, "sys_certificate", "short_description")
    keystore = await column(sn, "sys_protocol_profile", "keystore")
    assert name is not None and keystore is not None
    assert (name["max_length"], keystore["max_length"]) == ("255", "32")


# [I] choice values the reference does not give: (table, element, values the emulator serves)
CHOICES = [
    ("ecc_agent", "status", {"Up", "Down", "Upgrading", "Paused"}),
    ("ecc_agent", "validated", {"true", "false", "rejected"}),
    ("oauth_entity", "type", {"oauth_provider", "client"}),
    ("oauth_entity", "send_client_credentials_as", {"form_data", "basic_auth"}),
    ("sys_certificate", "frequency", {"once", "daily", "weekly"}),
]


@pytest.mark.parametrize(("table", "element", "values"), CHOICES, ids=[f"{c[0]}.{c[1]}" for c in CHOICES])
async def test_choice_values(sn: Target, table: str, element: str, values: set[str]) -> None:
    """The emulator's choices are its table definitions; a real instance's are sys_choice records (the emulator
    serves no sys_choice, so only the real run compares them)."""
    if not sn.is_real:
        from mtls_config.emulator.tables import definitions

        served = {c.name: c for d in definitions() if d.name == table for c in d.columns}[element]
        assert set(served.choices) == values
        return
    found = await rows(sn.client, "sys_choice", f"name={table}^element={element}^inactive=false", "value")
    assert {r["value"] for r in found} >= values, found


async def test_a_web_service_admin_reads_the_mid_servers(
    sn: Target, wsa_user: tuple[str, str], cleanup: list[str]
) -> None:
    """[I] Who picks a MID Server on a method (web_service_admin) can read ecc_agent."""
    if not sn.is_real:  # a stock emulator has none; a real instance's are its own (never made by a test)
        await create(sn, cleanup, "ecc_agent", {"name": "mtls-config-contract-mid", "status": "Up"})
    every = await rows(sn.client, "ecc_agent", "", "sys_id")
    if not every:
        pytest.skip("the instance has no MID Server: nothing to compare")
    seen = await rows(sn.client, "ecc_agent", "", "sys_id", auth=httpx.BasicAuth(*wsa_user))
    assert {r["sys_id"] for r in seen} == {r["sys_id"] for r in every}


async def test_a_user_reads_only_its_own_preferences_and_no_password_hash(
    sn: Target, itil_user: tuple[str, str]
) -> None:
    """[I] sys_user_preference rows: a user without admin reads its own and the system-wide ones; user_password: only
    admin reads what is stored."""
    auth = httpx.BasicAuth(*itil_user)
    mine = await rows(sn.client, "sys_user", f"user_name={itil_user[0]}", "sys_id,user_password", auth=auth)
    assert len(mine) == 1 and mine[0].get("user_password", "") == ""
    prefs = await rows(sn.client, "sys_user_preference", "", "user", auth=auth, sysparm_limit="200")
    assert {p["user"] if isinstance(p["user"], str) else p["user"]["value"] for p in prefs} <= {"", mine[0]["sys_id"]}
