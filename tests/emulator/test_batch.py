"""Batch API: sub-requests go through the same routing and auth as single requests; bodies are base64 both
ways; items past a configured count or time limit come back in unserviced_requests; one round trip."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.emulator import create_app
from tests.emulator.conftest import Target, asgi_client, assert_matches, emulator_config

pytestmark = pytest.mark.anyio
JSON_HEADERS = [{"name": "Content-Type", "value": "application/json"}, {"name": "Accept", "value": "application/json"}]


def item(id_: str, method: str, url: str, body: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": id_, "method": method, "url": url, "headers": JSON_HEADERS, **extra}
    if body is not None:
        out["body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return out


def decoded(serviced: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(serviced["body"])) if serviced["body"] else None


async def test_batch_mixed_requests(sn: Target) -> None:
    c = sn.client
    r = await c.post(
        "/api/now/v1/batch",
        json={
            "batch_request_id": "b-1",
            "rest_requests": [
                item("1", "POST", "/api/now/table/sys_properties", {"name": "mtls_config.test.batch", "value": "one"}),
                item(
                    "2",
                    "GET",
                    "/api/now/table/sys_properties?sysparm_query=name=mtls_config.test.batch&sysparm_fields=value",
                ),
                item("3", "GET", "/api/now/table/u_no_such_table", exclude_response_headers=True),
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    try:
        assert_matches(
            body,
            {
                "batch_request_id": "b-1",
                "unserviced_requests": [],
                "serviced_requests": [
                    {"id": "1", "status_code": 201, "status_text": "Created"},
                    {"id": "2", "status_code": 200, "status_text": "OK"},
                    {"id": "3", "status_code": 400, "headers": []},
                ],
            },
        )
        first, second, third = body["serviced_requests"]
        assert isinstance(first["execution_time"], int)
        assert any(h["name"].lower() == "location" for h in first["headers"])
        assert decoded(second) == {"result": [{"value": "one"}]}
        assert decoded(third)["error"]["message"] == "Invalid table u_no_such_table"
    finally:
        created = decoded(body["serviced_requests"][0])["result"]["sys_id"]
        await c.delete(f"/api/now/table/sys_properties/{created}")


async def test_batch_is_one_round_trip_and_unversioned_path(app: Starlette, client: httpx.AsyncClient) -> None:
    await client.request("DELETE", "/_emulator/requests", json={})
    r = await client.post(
        "/api/now/batch",
        json={
            "batch_request_id": "x",
            "rest_requests": [item(str(i), "GET", "/api/now/table/sys_user") for i in range(5)],
        },
    )
    assert [s["status_code"] for s in r.json()["serviced_requests"]] == [200] * 5
    log = (await client.get("/_emulator/requests")).json()
    assert [(e["method"], e["path"]) for e in log] == [("POST", "/api/now/batch")]


async def test_batch_sub_requests_run_as_the_caller(app: Starlette) -> None:
    async with asgi_client(app, auth=("itil", "itil-pass")) as itil:
        r = await itil.post(
            "/api/now/v1/batch",
            json={
                "batch_request_id": "r",
                "rest_requests": [item("1", "POST", "/api/now/table/sys_certificate", {"name": "x"})],
            },
        )
    assert r.json()["serviced_requests"][0]["status_code"] == 403
    assert app.state.backend.records("sys_certificate") == []


async def test_batch_needs_credentials(app: Starlette) -> None:
    async with asgi_client(app, auth=None) as anonymous:
        r = await anonymous.post("/api/now/v1/batch", json={"rest_requests": []})
    assert r.status_code == 401


async def test_batch_request_count_limit() -> None:
    app = create_app(emulator_config(batch_max_requests=2))
    async with asgi_client(app) as client:
        r = await client.post(
            "/api/now/v1/batch",
            json={
                "batch_request_id": "lim",
                "rest_requests": [
                    item(f"p{i}", "POST", "/api/now/table/sys_properties", {"name": f"p{i}"}) for i in range(4)
                ],
            },
        )
    body = r.json()
    assert [s["id"] for s in body["serviced_requests"]] == ["p0", "p1"]
    assert body["unserviced_requests"] == ["p2", "p3"]
    assert sorted(p["name"] for p in app.state.backend.records("sys_properties")) == ["p0", "p1"]


async def test_batch_time_limit() -> None:
    app = create_app(emulator_config(batch_max_seconds=0.0))
    async with asgi_client(app) as client:
        r = await client.post(
            "/api/now/v1/batch",
            json={
                "batch_request_id": "t",
                "rest_requests": [item(str(i), "GET", "/api/now/table/sys_user") for i in range(3)],
            },
        )
    body = r.json()
    # The first item always runs; once the budget is spent the rest are returned unserviced.
    assert len(body["serviced_requests"]) == 1 and body["unserviced_requests"] == ["1", "2"]


async def test_batch_bad_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/now/v1/batch", json={"batch_request_id": "x"})
    assert r.status_code == 400 and r.json()["status"] == "failure"


async def test_batch_item_with_an_absolute_url(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/now/v1/batch",
        json={
            "rest_requests": [
                item("abs", "GET", "https://elsewhere.example/api/now/table/sys_user?sysparm_fields=user_name")
            ]
        },
    )
    served = r.json()["serviced_requests"][0]
    assert served["status_code"] == 200 and decoded(served)["result"][0] == {"user_name": "admin"}


async def test_batch_items_of_the_wrong_shape_are_answered_not_crashed_on(client: httpx.AsyncClient) -> None:
    """A body that is not a base64 string, or a header name outside latin-1, is the caller's mistake: the batch
    still answers 200 with each item's own status (no 500 from the emulator itself)."""
    r = await client.post(
        "/api/now/v1/batch",
        json={
            "batch_request_id": "odd",
            "rest_requests": [
                {**item("1", "POST", "/api/now/table/sys_properties"), "body": 3},
                {**item("2", "POST", "/api/now/table/sys_properties"), "body": {"name": "x"}},
                item(
                    "3",
                    "GET",
                    "/api/now/table/sys_properties?sysparm_limit=1",
                    headers=[*JSON_HEADERS, {"name": "X-Note-\u20ac", "value": "\u20ac"}],
                ),
            ],
        },
    )
    assert r.status_code == 200, r.text
    served = {s["id"]: s["status_code"] for s in r.json()["serviced_requests"]}
    assert served["3"] == 200 and set(served) == {"1", "2", "3"}
    assert served["1"] != 500 and served["2"] != 500
