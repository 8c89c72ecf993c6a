"""The served emulator's guards (issue 17, findings 1 and 10): control endpoints need the admin and a JSON body; a
request for another Host is refused; bodies, the request log and queries are bounded; a heavy query does not hold
up other clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mtls_config.emulator import create_app
from mtls_config.emulator.server import ThreadedServer, served_hosts
from tests.emulator.conftest import asgi_client, emulator_config

pytestmark = pytest.mark.anyio

# (method, path, JSON body) of every control endpoint
CONTROL = [
    ("POST", "/_emulator/reset", {"seed": False}),
    ("POST", "/_emulator/seed", {}),
    ("GET", "/_emulator/requests", None),
    ("DELETE", "/_emulator/requests", {}),
    ("GET", "/_emulator/faults", None),
    ("PATCH", "/_emulator/faults", {"latency_ms": 0}),
]
CONTROL_IDS = [f"{m} {p}" for m, p, _ in CONTROL]


async def _send(app: Starlette, auth: tuple[str, str] | None, method: str, path: str, body: Any) -> httpx.Response:
    async with asgi_client(app, auth=auth) as client:
        return await client.request(method, path, json=body)


@pytest.mark.parametrize(("method", "path", "body"), CONTROL, ids=CONTROL_IDS)
@pytest.mark.parametrize(
    ("auth", "status", "message"),
    [
        (None, 401, "User Not Authenticated"),
        (("admin", "wrong"), 401, "User Not Authenticated"),
        (("wsa", "wsa-pass"), 403, "Operation Failed"),
        (("itil", "itil-pass"), 403, "Operation Failed"),
    ],
    ids=["no-credentials", "wrong-password", "web-service-admin", "itil"],
)
async def test_control_endpoints_need_the_admin(
    app: Starlette, method: str, path: str, body: Any, auth: tuple[str, str] | None, status: int, message: str
) -> None:
    records = app.state.backend.records("sys_rest_message")
    r = await _send(app, auth, method, path, body)
    assert r.status_code == status and r.json()["error"]["message"] == message and r.json()["status"] == "failure"
    assert app.state.backend.records("sys_rest_message") == records  # nothing was reset


@pytest.mark.parametrize(("method", "path", "body"), CONTROL, ids=CONTROL_IDS)
async def test_control_endpoints_answer_the_admin(app: Starlette, method: str, path: str, body: Any) -> None:
    r = await _send(app, ("admin", "admin"), method, path, body)
    assert r.status_code in (200, 204), r.text


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"seed=false"),  # an HTML form
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\n\r\nseed\r\n--x--"),
        ({"Content-Type": "text/plain"}, b'{"seed": false}'),  # a "simple" cross-site fetch
        ({}, b""),  # a bodiless POST
        ({"Content-Type": "application/json"}, b"[false]"),  # JSON, but not an object
    ],
    ids=["form", "multipart", "text-plain", "no-body", "json-array"],
)
async def test_a_control_change_needs_a_json_object_body(
    app: Starlette, headers: dict[str, str], content: bytes
) -> None:
    before = len(app.state.backend.records("sys_rest_message"))
    async with asgi_client(app) as client:
        r = await client.post("/_emulator/reset", params={"seed": "false"}, content=content, headers=headers)
    assert r.status_code in (400, 415) and r.json()["status"] == "failure"
    assert len(app.state.backend.records("sys_rest_message")) == before == 2


# ---------------------------------------------------------------------- Host (DNS rebinding)


@pytest.mark.parametrize(
    ("host", "port", "scheme", "extra", "accepted", "refused"),
    [
        (
            "127.0.0.1",
            8080,
            "http",
            (),
            {"127.0.0.1:8080", "localhost:8080", "[::1]:8080"},
            {"127.0.0.1", "evil.example:8080", "127.0.0.1:8081"},
        ),
        ("127.0.0.1", 443, "https", (), {"127.0.0.1", "localhost:443", "localhost"}, {"localhost:80"}),
        (
            "emu.internal",
            8443,
            "https",
            ("Emu.Example",),
            {"emu.internal:8443", "emu.example:8443"},
            {"localhost:8443"},
        ),
        ("::1", 80, "http", (), {"[::1]:80", "[::1]", "localhost"}, {"::1"}),
    ],
)
def test_served_hosts(
    host: str, port: int, scheme: str, extra: tuple[str, ...], accepted: set[str], refused: set[str]
) -> None:
    hosts = served_hosts(host, port, scheme, extra)
    assert accepted <= hosts and not refused & hosts


def test_every_address_answers_for_the_machine_and_loopback() -> None:
    import socket

    hosts = served_hosts("0.0.0.0", 8080, "http", ("emu.example",))
    assert {f"{socket.gethostname().lower()}:8080", "localhost:8080", "emu.example:8080"} <= hosts
    assert "0.0.0.0:8080" not in hosts


@pytest.fixture
def served_app() -> Starlette:
    return create_app(emulator_config(allowed_hosts=("emu.example",)))


def test_a_request_for_another_host_is_refused(served_app: Starlette) -> None:
    with ThreadedServer(served_app) as server, httpx.Client(base_url=server.url, auth=("admin", "admin")) as client:
        port = server.port
        for path in ("/api/now/table/sys_user", "/_emulator/requests"):
            r = client.get(path, headers={"Host": f"attacker.example:{port}"})  # a rebound name
            assert r.status_code == 400 and r.json()["error"]["message"] == "Invalid host header"
        r = client.post(
            "/_emulator/reset", json={"seed": False}, headers={"Host": f"attacker.example:{port}"}
        )  # even with the right credentials and body
        assert r.status_code == 400
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"EMU.example:{port}"):
            assert client.get("/api/now/table/sys_user", headers={"Host": host}).status_code == 200, host
    assert len(served_app.state.backend.records("sys_rest_message")) == 2
    assert [e["path"] for e in served_app.state.request_log.snapshot()] == ["/api/now/table/sys_user"] * 3


async def test_in_process_there_is_no_host_check(served_app: Starlette) -> None:
    """httpx's ASGI transport is not a socket a browser can reach: any base URL works in tests, also while the
    same app is served on a socket, where only the socket's requests are checked."""
    with ThreadedServer(served_app) as server:
        async with asgi_client(served_app) as client:
            assert (await client.get("http://anything.example/api/now/table/sys_user")).status_code == 200
        async with httpx.AsyncClient(base_url=server.url, auth=("admin", "admin")) as remote:
            r = await remote.get("/api/now/table/sys_user", headers={"Host": "anything.example"})
            assert r.status_code == 400


# ---------------------------------------------------------------------- body limits


@pytest.fixture
def small() -> Starlette:
    return create_app(emulator_config(max_request_bytes=2000, max_attachment_bytes=5000))


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 500):
        yield data[i : i + 500]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("method", "url", "size", "limit", "content_type"),
    [
        ("POST", "/api/now/table/sys_properties", 2001, 2000, "application/json"),
        ("POST", "/api/now/v1/batch", 2001, 2000, "application/json"),
        ("PATCH", "/_emulator/faults", 2001, 2000, "application/json"),
        (
            "POST",
            "/api/now/attachment/file?table_name=sys_certificate&table_sys_id={cert}&file_name=ks.jks",
            5001,
            5000,
            "application/octet-stream",
        ),
        ("POST", "/api/now/v1/attachment/upload", 5001, 5000, "multipart/form-data; boundary=x"),
    ],
    ids=["table", "batch", "control", "attachment-file", "attachment-upload"],
)
async def test_a_body_over_its_limit_is_413(
    small: Starlette, declared: bool, method: str, url: str, size: int, limit: int, content_type: str
) -> None:
    async with asgi_client(small) as client:
        cert = (await client.post("/api/now/table/sys_certificate", json={"name": "c"})).json()["result"]["sys_id"]
        body = json.dumps({"name": "p", "value": "x" * size}).encode()[:size] if "json" in content_type else b"x" * size
        content: bytes | AsyncIterator[bytes] = body if declared else _chunks(body)
        headers = {"Content-Type": content_type}
        r = await client.request(method, url.format(cert=cert), content=content, headers=headers)
    assert r.status_code == 413, r.text
    assert r.json() == {
        "error": {"message": "Request body too large", "detail": r.json()["error"]["detail"]},
        "status": "failure",
    }
    assert str(limit) in r.json()["error"]["detail"]
    assert small.state.backend.records("sys_properties") == [] and small.state.backend.records("sys_attachment") == []


async def test_bodies_at_their_limit_pass(small: Starlette) -> None:
    async with asgi_client(small) as client:
        cert = (await client.post("/api/now/table/sys_certificate", json={"name": "c"})).json()["result"]["sys_id"]
        prefix = b'{"name":"p","value":"'
        body = prefix + b"x" * (2000 - len(prefix) - 2) + b'"}'
        r = await client.post(
            "/api/now/table/sys_properties", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/api/now/attachment/file",
            params={"table_name": "sys_certificate", "table_sys_id": cert, "file_name": "ks.jks"},
            content=_chunks(b"k" * 5000),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert (
            r.status_code == 201 and small.state.backend.attachment_bytes(r.json()["result"]["sys_id"]) == b"k" * 5000
        )


def test_an_oversized_upload_over_a_socket_is_refused_before_it_is_read() -> None:
    app = create_app(emulator_config(max_attachment_bytes=1024 * 1024))
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, auth=("admin", "admin")) as client:
        cert = client.post("/api/now/table/sys_certificate", json={"name": "c"}).json()["result"]["sys_id"]
        r = client.post(
            "/api/now/attachment/file",
            params={"table_name": "sys_certificate", "table_sys_id": cert, "file_name": "big.jks"},
            content=b"\0" * (8 * 1024 * 1024),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 413 and r.json()["error"]["message"] == "Request body too large"
    assert app.state.backend.records("sys_attachment") == []


# ---------------------------------------------------------------------- the request log


async def test_the_request_log_keeps_the_latest_entries() -> None:
    app = create_app(emulator_config(request_log_size=3))
    async with asgi_client(app) as client:
        for limit in range(1, 6):
            await client.get("/api/now/table/sys_user", params={"sysparm_limit": str(limit)})
        log = (await client.get("/_emulator/requests")).json()
    assert [e["query"] for e in log] == [f"sysparm_limit={n}" for n in (3, 4, 5)]


# ---------------------------------------------------------------------- query complexity


def _terms(n: int, op: str = "^") -> str:
    return op.join(f"user_name=u{i}" for i in range(n))


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        (_terms(20), 200, None),
        (_terms(21), 400, "21 terms; at most 20"),
        (_terms(21, "^OR"), 400, "21 terms; at most 20"),
        (_terms(5, "^NQ"), 200, None),
        (_terms(6, "^NQ"), 400, "6 ^NQ groups; at most 5"),
        (_terms(19) + "^ORDERBYname^ORDERBYDESCemail", 400, "21 terms"),
        ("user_nameIN" + ",".join(f"u{i}" for i in range(50)), 200, None),
        ("user_nameIN" + ",".join(f"u{i}" for i in range(51)), 400, "51 values; at most 50"),
        ("active=true^ORuser_nameNOT IN" + ",".join(f"u{i}" for i in range(51)), 400, "51 values"),
        ("user_nameLIKE" + ",".join(f"u{i}" for i in range(60)), 200, None),  # commas in a LIKE value
    ],
    ids=[
        "terms-at-limit",
        "terms-over",
        "or-terms-over",
        "groups-at-limit",
        "groups-over",
        "orderby-counts",
        "in-at-limit",
        "in-over",
        "not-in-over",
        "like-commas",
    ],
)
async def test_query_complexity_is_capped(query: str, status: int, detail: str | None) -> None:
    app = create_app(emulator_config(max_query_terms=20, max_query_groups=5, max_in_members=50))
    async with asgi_client(app) as client:
        for path, params in (
            ("/api/now/table/sys_user", {"sysparm_query": query}),
            ("/api/now/attachment", {"sysparm_query": query.replace("user_name", "file_name")}),
        ):
            r = await client.get(path, params=params)
            assert r.status_code == status, r.text
            if detail is not None:
                assert r.json()["error"]["message"] == "Query too complex for the emulated instance"
                assert detail in r.json()["error"]["detail"]


async def test_a_batch_item_with_a_huge_query_is_refused_at_once(client: httpx.AsyncClient) -> None:
    """The finding: one batch item with a 10k-term ^NQ query held every other client for minutes."""
    query = "^NQ".join(f"nameLIKEx{i}" for i in range(10_000))
    body = {
        "batch_request_id": "1",
        "rest_requests": [
            {"id": "q", "method": "GET", "url": f"/api/now/table/sys_rest_message?sysparm_query={query}"}
        ],
    }
    r = await client.post("/api/now/v1/batch", json=body)
    item = r.json()["serviced_requests"][0]
    assert item["status_code"] == 400
    assert "^NQ groups" in json.loads(__import__("base64").b64decode(item["body"]))["error"]["detail"]


# ---------------------------------------------------------------------- a heavy query and everyone else


async def test_a_heavy_query_does_not_hold_up_another_client() -> None:
    """A heavy query (1000 OR'd terms over 1500 rows, within the limits) is worked out in a thread with the lock
    released; another client's simple read is answered while it runs. Ordering, not timing: the simple read
    completes while the heavy one is still in flight."""
    app = create_app(emulator_config())
    backend = app.state.backend
    admin = backend.user("admin")
    for i in range(1500):
        backend.insert("sys_properties", {"name": f"p{i:04d}", "value": str(i)}, admin)
    heavy = "^OR".join(f"valueLIKEzz{i}" for i in range(999)) + "^ORvalue=1499"
    async with asgi_client(app) as heavy_client, asgi_client(app) as other_client:
        task = asyncio.create_task(heavy_client.get("/api/now/table/sys_properties", params={"sysparm_query": heavy}))
        while app.state.request_log.in_flight == 0 and not task.done():
            await asyncio.sleep(0)
        assert not task.done(), "the heavy query was answered before anything else could run"
        r = await other_client.get("/api/now/table/sys_properties", params={"sysparm_query": "name=p0007"})
        assert r.status_code == 200 and [p["value"] for p in r.json()["result"]] == ["7"]
        assert not task.done(), "the simple read waited for the heavy query"
        answer = await task
    assert answer.status_code == 200 and [p["name"] for p in answer.json()["result"]] == ["p1499"]
