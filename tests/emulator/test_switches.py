"""The instance's silent behaviours as switches, each in both positions (the default is the instance's, confirmed by
test_contract.py on a real instance): unknown fields dropped, text compared case-insensitively, fields that do not
stick (a fault), columns an instance lacks; and the accounts behind roles: users made through the Table API, grants,
and who reads them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.models import Backend
from tests.emulator.conftest import asgi_client, emulator_config

pytestmark = pytest.mark.anyio


async def _names(client: httpx.AsyncClient, query: str) -> list[str]:
    r = await client.get("/api/now/table/sys_user", params={"sysparm_query": query, "sysparm_fields": "user_name"})
    assert r.status_code == 200, r.text
    return [row["user_name"] for row in r.json()["result"]]


# (query, users found when text ignores case, users found when it does not)
TEXT_CASES = [
    ("user_name=ADMIN", ["admin"], []),
    ("user_name!=ADMIN^user_nameINadmin,wsa", ["wsa"], ["admin", "wsa"]),
    ("user_nameINADMIN,WSA", ["admin", "wsa"], []),
    ("user_nameNOT INADMIN,WSA,ITIL", [], ["admin", "wsa", "itil"]),
    ("user_nameSTARTSWITHAD", ["admin"], []),
    ("user_nameENDSWITHSA", ["wsa"], []),
    ("user_nameLIKEDMI", ["admin"], []),
    ("user_nameNOT LIKEDMI^user_nameINadmin,wsa", ["wsa"], ["admin", "wsa"]),
]


@pytest.mark.parametrize("ignore_case", [True, False], ids=["ignores-case", "case-sensitive"])
@pytest.mark.parametrize(("query", "insensitive", "sensitive"), TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
async def test_text_match_switch(ignore_case: bool, query: str, insensitive: list[str], sensitive: list[str]) -> None:
    app = create_app(emulator_config(text_match_ignores_case=ignore_case))
    async with asgi_client(app) as client:
        assert await _names(client, query) == (insensitive if ignore_case else sensitive)


@pytest.mark.parametrize(("query", "found"), [("user_name=NULL", []), ("user_name!=NULL^user_name=wsa", ["wsa"])])
async def test_null_means_empty(client: httpx.AsyncClient, query: str, found: list[str]) -> None:
    assert await _names(client, query) == found


@pytest.mark.parametrize("drop", [True, False], ids=["dropped", "refused"])
async def test_unknown_fields_switch(drop: bool) -> None:
    app = create_app(emulator_config(drop_unknown_fields=drop))
    async with asgi_client(app) as client:
        r = await client.post("/api/now/table/sys_properties", json={"name": "p", "u_nope": "1", "u_other": "2"})
        if drop:
            assert r.status_code == 201 and "u_nope" not in r.json()["result"]
            sys_id = r.json()["result"]["sys_id"]
            r = await client.patch(f"/api/now/table/sys_properties/{sys_id}", json={"u_nope": "1"})
            assert r.status_code == 200 and r.json()["result"]["sys_mod_count"] == "0"
        else:
            assert r.status_code == 400
            assert r.json()["error"] == {
                "message": "Operation Failed",
                "detail": "sys_properties has no field u_nope, u_other",
            }
            assert app.state.backend.records("sys_properties") == []


# ---------------------------------------------------------------------- a write that does not stick


async def _write_binding(client: httpx.AsyncClient, backend: Backend) -> dict[str, Any]:
    acme = next(m for m in backend.records("sys_rest_message") if m["name"] == "Acme Payments API")
    r = await client.patch(
        f"/api/now/table/sys_rest_message/{acme['sys_id']}",
        json={"use_mutual_auth": "true", "description": "changed"},
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()["result"]
    return result


async def test_an_ignored_field_keeps_its_value_from_the_config() -> None:
    app = create_app(emulator_config(ignore_fields=("sys_rest_message.use_mutual_auth",)))
    async with asgi_client(app) as client:
        result = await _write_binding(client, app.state.backend)
        assert result["use_mutual_auth"] == "false" and result["description"] == "changed"
        r = await client.post("/api/now/table/sys_rest_message", json={"name": "new", "use_mutual_auth": "true"})
        assert r.status_code == 201 and r.json()["result"]["use_mutual_auth"] == "false"
    stored = {m["name"]: m for m in app.state.backend.records("sys_rest_message")}
    assert stored["Acme Payments API"]["use_mutual_auth"] == "false" and stored["new"]["use_mutual_auth"] == "false"


async def test_an_ignored_field_set_and_cleared_at_run_time(app: Starlette, client: httpx.AsyncClient) -> None:
    r = await client.patch("/_emulator/faults", json={"ignore_fields": ["sys_rest_message.use_mutual_auth"]})
    assert r.status_code == 200 and r.json()["ignore_fields"] == ["sys_rest_message.use_mutual_auth"]
    assert (await _write_binding(client, app.state.backend))["use_mutual_auth"] == "false"
    await client.patch("/_emulator/faults", json={"ignore_fields": []})
    assert (await _write_binding(client, app.state.backend))["use_mutual_auth"] == "true"


@pytest.mark.parametrize("entry", ["sys_rest_message.no_such_field", "no_table.name", "sys_rest_message"])
async def test_an_unknown_ignored_field_is_refused(client: httpx.AsyncClient, entry: str) -> None:
    r = await client.patch("/_emulator/faults", json={"ignore_fields": [entry]})
    assert r.status_code == 400 and entry in r.text
    assert (await client.get("/_emulator/faults")).json()["ignore_fields"] == []
    with pytest.raises(ValueError, match=r"TABLE\.FIELD"):
        create_app(emulator_config(ignore_fields=(entry,)))


# ---------------------------------------------------------------------- columns an instance lacks


async def test_an_absent_column_is_neither_served_nor_in_the_dictionary() -> None:
    app = create_app(emulator_config(absent_columns=("sys_soap_message.enable_mutual_auth",)))
    async with asgi_client(app) as client:
        r = await client.get("/api/now/table/sys_soap_message", params={"sysparm_limit": "1"})
        assert "enable_mutual_auth" not in r.json()["result"][0] and "protocol_profile" in r.json()["result"][0]
        r = await client.get(
            "/api/now/table/sys_dictionary", params={"sysparm_query": "name=sys_soap_message^elementLIKEmutual"}
        )
        assert [row["element"] for row in r.json()["result"]] == []
        r = await client.get(
            "/api/now/table/sys_soap_message", params={"sysparm_query": "enable_mutual_auth=true"}
        )  # the term is dropped: every message comes back, as facts-2 §1 warns
        assert len(r.json()["result"]) == 2


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("no_table.name", "unknown table"),
        ("sys_rest_message.sys_scope", "inherited"),
        ("sys_rest_message.no_such", "defines no column"),
    ],
)
def test_an_unknown_absent_column_is_refused(entry: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app(emulator_config(absent_columns=(entry,)))


# ---------------------------------------------------------------------- the dictionary is the instance's own


@pytest.mark.parametrize("table", ["sys_dictionary", "sys_db_object"])
async def test_the_dictionary_cannot_be_written(client: httpx.AsyncClient, table: str) -> None:
    r = await client.post(f"/api/now/table/{table}", json={"name": "u_new"})
    assert r.status_code == 403 and r.json()["error"]["message"] == "Operation Failed"
    some = (await client.get(f"/api/now/table/{table}", params={"sysparm_limit": "1"})).json()["result"][0]
    r = await client.patch(f"/api/now/table/{table}/{some['sys_id']}", json={"name": "x"})
    assert r.status_code == 403
    r = await client.delete(f"/api/now/table/{table}/{some['sys_id']}")
    assert r.status_code == 403


async def test_the_dictionary_describes_every_served_table(app: Starlette, client: httpx.AsyncClient) -> None:
    backend: Backend = app.state.backend
    r = await client.get(
        "/api/now/table/sys_dictionary",
        params={"sysparm_fields": "name,element", "sysparm_exclude_reference_link": "true"},
    )
    described = {(row["name"], row["element"]) for row in r.json()["result"]}
    for name in backend.schema:
        table = backend.schema[name]
        assert (name, "") in described
        assert {(name, c.name) for c in table.own_columns} <= described
        # every column served is described on the table itself or one it extends
        for c in table.columns:
            assert any((t, c.name) in described for t in backend.schema.lineage(name)), (name, c.name)


async def test_a_user_without_admin_reads_no_dictionary() -> None:
    app = create_app(emulator_config())
    async with asgi_client(app, auth=("itil", "itil-pass")) as client:
        for table in ("sys_dictionary", "sys_db_object"):
            r = await client.get(f"/api/now/table/{table}")
            assert (r.status_code, r.json()) == (200, {"result": []})


# ---------------------------------------------------------------------- accounts and roles


async def test_configured_users_exist_without_seed_data() -> None:
    app = create_app(emulator_config(seed_data=False))
    backend: Backend = app.state.backend
    assert {u["user_name"] for u in backend.records("sys_user")} == {"admin", "wsa", "itil"}
    assert backend.records("sys_rest_message") == []
    backend.reset(seed=False)
    assert {u["user_name"]: u["roles"] for u in backend.records("sys_user")} == {
        "admin": "admin",
        "wsa": "web_service_admin",
        "itil": "itil",
    }


async def test_a_grant_gives_a_table_user_its_role(app: Starlette, client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/now/table/sys_user",
        json={"user_name": "ops", "user_password": "Ops-Pa55-canary"},
        params={"sysparm_input_display_value": "true"},
    )
    user = r.json()["result"]
    assert user["user_password"] not in ("", "Ops-Pa55-canary")  # a one-way hash
    async with asgi_client(app, auth=("ops", "Ops-Pa55-canary")) as ops:
        assert (await ops.get("/api/now/table/sys_rest_message")).json() == {"result": []}
        mine = (await ops.get(f"/api/now/table/sys_user/{user['sys_id']}")).json()["result"]
        assert mine["user_password"] == ""  # the hash only to admin
        r = await client.post(
            "/api/now/table/sys_user_has_role", json={"user": user["sys_id"], "role": "web_service_admin"}
        )  # a reference set by its display value
        grant = r.json()["result"]["sys_id"]
        assert len((await ops.get("/api/now/table/sys_rest_message")).json()["result"]) == 2
        row = (await client.get(f"/api/now/table/sys_user/{user['sys_id']}")).json()["result"]
        assert row["roles"] == "web_service_admin"
        await client.delete(f"/api/now/table/sys_user_has_role/{grant}")
        assert (await ops.get("/api/now/table/sys_rest_message")).json() == {"result": []}
        await client.patch(f"/api/now/table/sys_user/{user['sys_id']}", json={"locked_out": "true"})
        assert (await ops.get("/api/now/table/sys_rest_message")).status_code == 401


async def test_deleting_a_user_deletes_its_grants(app: Starlette, client: httpx.AsyncClient) -> None:
    backend: Backend = app.state.backend
    wsa = next(u for u in backend.records("sys_user") if u["user_name"] == "wsa")
    assert any(g["user"] == wsa["sys_id"] for g in backend.records("sys_user_has_role"))
    assert (await client.delete(f"/api/now/table/sys_user/{wsa['sys_id']}")).status_code == 204
    assert not any(g["user"] == wsa["sys_id"] for g in backend.records("sys_user_has_role"))


@pytest.mark.parametrize(("mode", "count"), [("own", 1), ("all", 3), ("none", 0)])
async def test_who_reads_role_grants(mode: str, count: int) -> None:
    app = create_app(emulator_config(user_roles_read=mode))
    async with asgi_client(app, auth=("itil", "itil-pass")) as client:
        r = await client.get("/api/now/table/sys_user_has_role", params={"sysparm_fields": "user.user_name,role.name"})
        assert len(r.json()["result"]) == count
        assert ({"user.user_name": "itil", "role.name": "itil"} in r.json()["result"]) is (count > 0)
    async with asgi_client(app) as client:  # admin reads every grant whatever the switch
        r = await client.get("/api/now/table/sys_user_has_role", params={"sysparm_fields": "sys_id"})
        assert len(r.json()["result"]) == 3


@pytest.mark.parametrize("needs_flag", [True, False])
async def test_user_password_write_switch(needs_flag: bool) -> None:
    app = create_app(emulator_config(user_password_needs_input_display_value=needs_flag))
    async with asgi_client(app) as client:
        await client.post("/api/now/table/sys_user", json={"user_name": "ops", "user_password": "Ops-Pa55"})
        r = await client.get("/api/now/table/sys_user", auth=("ops", "Ops-Pa55"))
    assert r.status_code == (401 if needs_flag else 200)


# ---------------------------------------------------------------------- issue 16's tables


ROLE_USERS = {
    "admin": ("admin", ("admin",)),
    "wsa": ("wsa-pass", ("web_service_admin",)),
    "oauth": ("oauth-pass", ("oauth_admin",)),
    "conn": ("conn-pass", ("connection_admin",)),
    "itil": ("itil-pass", ("itil",)),
}
# table -> the users who may write it (admin always)
WRITERS = {
    "sys_certificate": {"admin"},
    "sys_protocol_profile": {"admin"},
    "sys_rest_message": {"admin", "wsa"},
    "sys_soap_message": {"admin", "wsa"},
    "oauth_entity": {"admin", "oauth"},
    "http_connection": {"admin", "conn"},
    "ecc_agent": {"admin"},
    "sys_user_group": {"admin"},
}


@pytest.mark.parametrize("user", sorted(ROLE_USERS))
@pytest.mark.parametrize("table", sorted(WRITERS))
async def test_table_acls_follow_the_reference(table: str, user: str) -> None:
    app = create_app(EmulatorConfig(users=ROLE_USERS))
    body = {"protocol": "acltest"} if table == "sys_protocol_profile" else {"name": f"acl {table}"}
    async with asgi_client(app, auth=(user, ROLE_USERS[user][0])) as client:
        r = await client.post(f"/api/now/table/{table}", json=body)
        if user in WRITERS[table]:
            assert r.status_code == 201, r.text
        else:
            assert r.status_code == 403 and r.json()["error"]["detail"].startswith("ACL Exception Insert")


@pytest.mark.parametrize(
    ("table", "defaults"),
    [
        ("sys_rest_message", {"authentication_type": "no_authentication", "use_mutual_auth": "false"}),
        ("sys_soap_message", {"authentication_type": "no_authentication", "enable_mutual_auth": "false"}),
        ("oauth_entity", {"type": "oauth_provider", "use_mutual_auth": "false", "active": "true"}),
        ("http_connection", {"mutual_auth": "false", "use_mid": "false", "mid_selection": "auto_select"}),
        ("ecc_agent", {"status": "Down", "validated": "false"}),
    ],
)
async def test_new_records_get_stock_defaults(client: httpx.AsyncClient, table: str, defaults: dict[str, str]) -> None:
    r = await client.post(f"/api/now/table/{table}", json={"name": "fresh"})
    result = r.json()["result"]
    assert {k: result[k] for k in defaults} == defaults


async def test_methods_inherit_their_authentication(app: Starlette, client: httpx.AsyncClient) -> None:
    backend: Backend = app.state.backend
    for table in ("sys_rest_message_fn", "sys_soap_message_function"):
        assert {f["authentication_type"] for f in backend.records(table)} == {"inherit_from_parent"}
    agent = (await client.post("/api/now/table/ecc_agent", json={"name": "mid-1", "status": "Up"})).json()["result"]
    method = next(f for f in backend.records("sys_rest_message_fn") if f["function_name"] == "post_payment")
    r = await client.patch(
        f"/api/now/table/sys_rest_message_fn/{method['sys_id']}",
        json={"use_mid_server": "mid-1", "authentication_type": "basic_simple"},  # a reference by display value
        params={"sysparm_fields": "use_mid_server.name,authentication_type", "sysparm_display_value": "all"},
    )
    assert r.json()["result"] == {
        "use_mid_server.name": {"display_value": "mid-1", "value": "mid-1"},
        "authentication_type": {"display_value": "Basic (Simple)", "value": "basic_simple"},
    }
    stored = backend.record("sys_rest_message_fn", method["sys_id"])
    assert stored is not None and stored["use_mid_server"] == agent["sys_id"]


async def test_seeded_registry_connection_and_group(app: Starlette) -> None:
    backend: Backend = app.state.backend
    assert [e["name"] for e in backend.records("oauth_entity")] == ["Acme Payments OAuth"]
    assert [c["name"] for c in backend.records("http_connection")] == ["Globex Orders Connection"]
    assert [g["name"] for g in backend.records("sys_user_group")] == ["PKI Operations"]
    assert backend.records("ecc_agent") == []  # a stock instance has no MID server
    entity = backend.records("oauth_entity")[0]
    assert (entity["sys_class_name"], entity["sys_scope"]) == ("oauth_entity", "global")


async def test_a_connection_is_read_through_its_parent_table(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/now/table/sys_connection", params={"sysparm_fields": "name,sys_class_name"})
    assert r.json()["result"] == [{"name": "Globex Orders Connection", "sys_class_name": "http_connection"}]


@pytest.mark.parametrize(
    "names", [("mutual_auth", "protocol_profile"), ("use_mutual_auth", "protocol_name")], ids=["default", "rest-names"]
)
async def test_connection_mutual_auth_column_names_switch(names: tuple[str, str]) -> None:
    app = create_app(emulator_config(connection_mutual_auth_columns=names))
    async with asgi_client(app) as client:
        r = await client.get(
            "/api/now/table/sys_dictionary",
            params={
                "sysparm_query": "name=http_connection^column_labelINMutual authentication,Protocol profile",
                "sysparm_fields": "element,column_label",
            },
        )
        assert {row["column_label"]: row["element"] for row in r.json()["result"]} == {
            "Mutual authentication": names[0],
            "Protocol profile": names[1],
        }
        connection = app.state.backend.records("http_connection")[0]
        r = await client.patch(f"/api/now/table/http_connection/{connection['sys_id']}", json={names[0]: "true"})
        assert r.json()["result"][names[0]] == "true"


async def test_notification_lists_show_names(app: Starlette, client: httpx.AsyncClient) -> None:
    backend: Backend = app.state.backend
    users = {u["user_name"]: u["sys_id"] for u in backend.records("sys_user")}
    group = backend.records("sys_user_group")[0]["sys_id"]
    r = await client.post(
        "/api/now/table/sys_certificate",
        json={
            "name": "notified",
            "expiration_notification": "true",
            "notify_on_expiration": [users["admin"], users["wsa"]],
            "notify_groups": group,
            "warn_in_days_to_expire": "30",
            "frequency": "weekly",
        },
        params={"sysparm_display_value": "all", "sysparm_fields": "notify_on_expiration,notify_groups,frequency"},
    )
    assert r.json()["result"] == {
        "notify_on_expiration": {"display_value": "admin, wsa", "value": f"{users['admin']},{users['wsa']}"},
        "notify_groups": {"display_value": "PKI Operations", "value": group},
        "frequency": {"display_value": "Weekly", "value": "weekly"},
    }
