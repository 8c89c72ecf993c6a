"""Fault injection: rate limit (429 + headers), 5xx, dropped connections before and after the work is done,
latency; seeded so that runs repeat; /_emulator endpoints exempt; faults changeable at run time."""

from __future__ import annotations

import time

import httpx
import pytest

from mtls_config.emulator import ConnectionDropped, create_app
from tests.emulator.conftest import asgi_client, emulator_config

pytestmark = pytest.mark.anyio


async def test_rate_limit_answers_429_with_headers() -> None:
    app = create_app(emulator_config(rate_limit=2))
    async with asgi_client(app) as client:
        statuses = [(await client.get("/api/now/table/sys_user")).status_code for _ in range(3)]
        r = await client.get("/api/now/table/sys_user")
        faults = await client.get("/_emulator/faults")  # control endpoints are never limited
    assert statuses == [200, 200, 429] and r.status_code == 429
    assert r.json() == {
        "error": {
            "message": "Rate limit exceeded",
            "detail": "Rate limit of 2 requests per hour for Table API exceeded",
        },
        "status": "failure",
    }
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    assert r.headers["X-RateLimit-Limit"] == "2"
    assert abs(int(r.headers["X-RateLimit-Reset"]) - (time.time() + int(r.headers["Retry-After"]))) <= 2
    assert r.headers["X-RateLimit-Rule"]
    assert faults.status_code == 200


async def test_rate_limit_window_resets() -> None:
    app = create_app(emulator_config(rate_limit=1, rate_limit_window_s=60))
    now = [1_000_000.0]
    app.state.faults.clock = lambda: now[0]
    app.state.faults.window_start = now[0]
    async with asgi_client(app) as client:
        assert (await client.get("/api/now/table/sys_user")).status_code == 200
        now[0] += 59
        r = await client.get("/api/now/table/sys_user")
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert r.headers["X-RateLimit-Reset"] == "1000060"
        now[0] += 1
        assert (await client.get("/api/now/table/sys_user")).status_code == 200


async def _statuses(seed: int, n: int = 40) -> list[int]:
    app = create_app(emulator_config(fail_rate=0.3, fail_statuses=(502, 503, 504), random_seed=seed))
    async with asgi_client(app) as client:
        return [(await client.get("/api/now/table/sys_user")).status_code for _ in range(n)]


async def test_fail_rate_is_seeded_and_reproducible() -> None:
    first, again, other = await _statuses(7), await _statuses(7), await _statuses(8)
    assert first == again and first != other
    failures = [s for s in first if s != 200]
    assert failures and set(failures) <= {502, 503, 504} and len(failures) < len(first)


async def test_failed_requests_never_reach_the_backend() -> None:
    app = create_app(emulator_config(fail_rate=1.0))
    async with asgi_client(app) as client:
        r = await client.post("/api/now/table/sys_properties", json={"name": "x"})
    assert r.status_code == 503 and r.json()["status"] == "failure" and "Retry-After" in r.headers
    assert app.state.backend.records("sys_properties") == []


async def test_dropped_connection_in_process_is_a_transport_error() -> None:
    app = create_app(emulator_config(drop_rate=1.0))
    async with asgi_client(app) as client:
        with pytest.raises(httpx.TransportError):
            await client.post("/api/now/table/sys_properties", json={"name": "x"})
        log = (await client.get("/_emulator/requests")).json()
    assert app.state.backend.records("sys_properties") == []
    assert [(e["method"], e["status"]) for e in log] == [("POST", 0)]
    assert issubclass(ConnectionDropped, httpx.RemoteProtocolError)


async def test_lost_response_means_the_write_happened() -> None:
    app = create_app(emulator_config(lost_response_rate=1.0))
    async with asgi_client(app) as client:
        with pytest.raises(httpx.TransportError):
            await client.post("/api/now/table/sys_properties", json={"name": "written"})
    assert [p["name"] for p in app.state.backend.records("sys_properties")] == ["written"]


async def test_latency_and_faults_changed_at_run_time() -> None:
    app = create_app(emulator_config())
    async with asgi_client(app) as client:
        r = await client.patch("/_emulator/faults", json={"latency_ms": 30, "fail_rate": 1.0, "fail_statuses": [502]})
        assert r.status_code == 200 and r.json()["latency_ms"] == 30 and r.json()["fail_statuses"] == [502]
        started = time.monotonic()
        r = await client.get("/api/now/table/sys_user")
        assert r.status_code == 502 and time.monotonic() - started >= 0.03
        assert (await client.post("/_emulator/reset", json={})).status_code == 200  # exempt from faults
        assert (await client.patch("/_emulator/faults", json={"fail_rate": 0, "latency_ms": 0})).status_code == 200
        assert (await client.get("/api/now/table/sys_user")).status_code == 200
        assert (await client.patch("/_emulator/faults", json={"no_such_fault": 1})).status_code == 400


async def test_a_request_is_in_the_log_before_its_answer_ends() -> None:
    """A client that has its answer finds its request logged: over a socket the answer's last bytes can reach the
    client before the server's next step, and a test that cleared the log then found the request after all."""
    import base64

    app = create_app(emulator_config())
    seen: list[tuple[bool, int]] = []
    auth = base64.b64encode(b"admin:admin")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/api/now/table/sys_user", "raw_path": b"/api/now/table/sys_user", "root_path": "",
        "query_string": b"sysparm_limit=1", "headers": [(b"host", b"emulator"), (b"authorization", b"Basic " + auth)],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            entries = app.state.request_log.snapshot()
            seen.append((any(e["path"] == "/api/now/table/sys_user" for e in entries), len(entries)))

    await app(scope, receive, send)  # type: ignore[arg-type]
    assert seen == [(True, 1)]


async def test_request_log_counts_round_trips() -> None:
    app = create_app(emulator_config())
    async with asgi_client(app) as client:
        await client.get("/api/now/table/sys_user", params={"sysparm_limit": "1"})
        await client.get("/api/now/table/u_nope")
        log = (await client.get("/_emulator/requests")).json()
        # one after the other: each opened after the one before was answered (a round trip each)
        assert log == [
            {"method": "GET", "path": "/api/now/table/sys_user", "query": "sysparm_limit=1", "status": 200,
             "opened": 1, "closed": 2},
            {"method": "GET", "path": "/api/now/table/u_nope", "query": "", "status": 400, "opened": 3, "closed": 4},
        ]  # fmt: skip
        assert (await client.request("DELETE", "/_emulator/requests", json={})).status_code == 204
        assert (await client.get("/_emulator/requests")).json() == []
