"""The client's boundary with edge cases an emulator does not produce on its own, via httpx.MockTransport:
redirects, non-JSON and oversized bodies, gateway errors, TLS and connection failures, echoed credentials."""

from __future__ import annotations

import base64
import json
import logging
import ssl
from collections.abc import Callable

import httpx
import pytest

from mtls_config.client import InstanceClient, RetryPolicy
from mtls_config.errors import (
    AuthenticationFailed,
    BadResponse,
    InstanceError,
    InstanceUnreachable,
    PermissionDenied,
    RateLimited,
    RecordNotFound,
    TableNotFound,
)

from .conftest import CANARY_PASSWORD, SleepRecorder, basic_settings

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(status: int, message: str, detail: str | None = None, **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "detail": detail}, "status": "failure"}
    return httpx.Response(status, json=body, headers=headers)


class Recorder:
    """A scripted instance: answers in turn, remembering each request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def methods(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def client(recorder: Recorder, sleeps: SleepRecorder, **kw: object) -> InstanceClient:
    return InstanceClient(basic_settings(password=CANARY_PASSWORD), httpx.MockTransport(recorder), sleep=sleeps, **kw)  # type: ignore[arg-type]


RECORD = {"sys_id": "a" * 32, "name": "x"}


@pytest.mark.parametrize(
    ("answer", "error", "hint"),
    [
        (
            envelope(401, "User Not Authenticated", "Required to provide Auth information"),
            AuthenticationFailed,
            "SN_USERNAME",
        ),
        (envelope(403, "Operation Failed", "ACL Exception Insert Failed"), PermissionDenied, "admin role"),
        (envelope(400, "Invalid table sys_certificate"), TableNotFound, "plugin"),
        (envelope(404, "No Record found", "Record doesn't exist"), RecordNotFound, "ACL"),
        (envelope(500, "boom"), InstanceError, None),
    ],
)
async def test_error_mapping_keeps_the_instance_message_and_adds_a_hint(
    sleeps: SleepRecorder, answer: httpx.Response, error: type[Exception], hint: str | None
) -> None:
    recorder = Recorder(answer)
    async with client(recorder, sleeps) as c:
        with pytest.raises(error) as caught:
            await c.update("sys_certificate", "a" * 32, {"name": "y"})
    text = str(caught.value)
    message = json.loads(answer.content)["error"]["message"]
    assert message in text
    if hint:
        assert hint in text
    assert len(recorder.requests) == 1  # none of these is worth retrying


async def test_permission_hint_names_message_roles(sleeps: SleepRecorder) -> None:
    async with client(Recorder(envelope(403, "Operation Failed")), sleeps) as c:
        with pytest.raises(PermissionDenied, match="web_service_admin or admin"):
            await c.update("sys_rest_message", "a" * 32, {"use_mutual_auth": "true"})


async def test_redirects_are_never_followed(sleeps: SleepRecorder) -> None:
    recorder = Recorder(httpx.Response(302, headers={"Location": "https://login.example/sso?state=xyz"}))
    async with client(recorder, sleeps) as c:
        with pytest.raises(BadResponse, match="redirected") as caught:
            await c.get("sys_certificate", "a" * 32)
    assert "state=xyz" not in str(caught.value)
    assert [r.url.host for r in recorder.requests] == ["acme.service-now.com"]


async def test_a_body_that_is_not_json_is_a_bad_response(sleeps: SleepRecorder) -> None:
    recorder = Recorder(httpx.Response(200, text="<html>login</html>", headers={"Content-Type": "text/html"}))
    async with client(recorder, sleeps) as c:
        with pytest.raises(BadResponse, match="not JSON"):
            await c.list("sys_certificate")


async def test_a_result_of_the_wrong_shape_is_a_bad_response(sleeps: SleepRecorder) -> None:
    async with client(Recorder(httpx.Response(200, json={"result": "nope"})), sleeps) as c:
        with pytest.raises(BadResponse, match="not a list"):
            await c.list("sys_certificate")


async def test_an_oversized_body_is_refused(sleeps: SleepRecorder) -> None:
    recorder = Recorder(httpx.Response(200, content=b"x" * 5000))
    async with client(recorder, sleeps, max_body_bytes=1000) as c:
        with pytest.raises(BadResponse, match="1000"):
            await c.download_attachment("b" * 32)


async def test_429_is_retried_after_the_time_it_asks_for(sleeps: SleepRecorder) -> None:
    recorder = Recorder(
        envelope(429, "Rate limit exceeded", "Rate limit of 100 requests per hour", **{"Retry-After": "7"}),
        httpx.Response(201, json={"result": RECORD}),
    )
    async with client(recorder, sleeps) as c:
        # A 429 is refused before any work is done, so even a create without sys_id may be re-sent.
        created = await c.create("sys_certificate", {"name": "x"})
        assert created == RECORD
        assert c.stats.snapshot()["table.create"]["retries"] == 1
    assert len(sleeps.delays) == 1 and 7.0 <= sleeps.delays[0] <= 7.5


async def test_429_past_the_retry_budget_is_rate_limited(sleeps: SleepRecorder) -> None:
    recorder = Recorder(envelope(429, "Rate limit exceeded", **{"Retry-After": "100000"}))
    async with client(recorder, sleeps, retry=None) as c:
        with pytest.raises(RateLimited, match="after 6 attempts"):
            await c.get("sys_certificate", "a" * 32)
    assert len(recorder.requests) == 6
    assert max(sleeps.delays) <= 121  # Retry-After is capped


async def test_gateway_errors_on_a_create_without_sys_id_are_not_repeated(sleeps: SleepRecorder) -> None:
    recorder = Recorder(envelope(503, "Service Unavailable"), httpx.Response(201, json={"result": RECORD}))
    async with client(recorder, sleeps) as c:
        with pytest.raises(InstanceUnreachable, match="503"):
            await c.create("sys_certificate", {"name": "x"})
    assert recorder.methods() == ["POST /api/now/table/sys_certificate"]


async def test_a_create_with_sys_id_looks_before_sending_again(sleeps: SleepRecorder) -> None:
    recorder = Recorder(
        envelope(504, "Gateway Timeout"),  # the POST: the instance did the insert, the gateway gave up
        httpx.Response(200, json={"result": RECORD}),  # the GET by sys_id finds it
    )
    async with client(recorder, sleeps) as c:
        created = await c.create("sys_certificate", {"name": "x"}, sys_id="a" * 32)
    assert created == RECORD
    assert recorder.methods() == [
        "POST /api/now/table/sys_certificate",
        f"GET /api/now/table/sys_certificate/{'a' * 32}",
    ]


async def test_a_create_with_sys_id_is_sent_again_when_it_did_not_happen(sleeps: SleepRecorder) -> None:
    recorder = Recorder(
        httpx.ReadError("connection reset"),
        envelope(404, "No Record found"),
        httpx.Response(201, json={"result": RECORD}),
    )
    async with client(recorder, sleeps) as c:
        assert await c.create("sys_certificate", {"name": "x"}, sys_id="a" * 32) == RECORD
    assert [m.split()[0] for m in recorder.methods()] == ["POST", "GET", "POST"]


async def test_refused_connections_are_retried_even_for_unsafe_requests(sleeps: SleepRecorder) -> None:
    recorder = Recorder(httpx.ConnectError("refused"), httpx.Response(201, json={"result": RECORD}))
    async with client(recorder, sleeps) as c:
        assert await c.create("sys_certificate", {"name": "x"}) == RECORD
    assert len(recorder.requests) == 2 and len(sleeps.delays) == 1


async def test_a_dropped_upload_checks_the_record_before_uploading_again(sleeps: SleepRecorder) -> None:
    meta = {"sys_id": "c" * 32, "file_name": "ks.jks", "size_bytes": "5", "table_sys_id": "a" * 32}
    recorder = Recorder(
        httpx.RemoteProtocolError("server disconnected"),
        httpx.Response(200, json={"result": [meta]}),
        httpx.Response(200, content=b"12345"),
    )
    async with client(recorder, sleeps) as c:
        assert await c.upload_attachment("sys_certificate", "a" * 32, "ks.jks", b"12345") == meta
    assert recorder.methods() == [
        "POST /api/now/attachment/file",
        "GET /api/now/attachment",
        f"GET /api/now/attachment/{'c' * 32}/file",
    ]


@pytest.mark.parametrize(
    ("old_content", "replacing"),
    [(b"54321", ()), (b"12345", ("c" * 32,))],
    ids=["same-size-other-content", "identical-but-being-replaced"],
)
async def test_an_old_attachment_is_never_taken_for_a_lost_upload(
    sleeps: SleepRecorder, old_content: bytes, replacing: tuple[str, ...]
) -> None:
    old = {"sys_id": "c" * 32, "file_name": "ks.jks", "size_bytes": "5", "table_sys_id": "a" * 32}
    new = {**old, "sys_id": "d" * 32}

    def instance(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/file") and request.method == "GET":
            return httpx.Response(200, content=old_content)
        if request.method == "GET":
            return httpx.Response(200, json={"result": [old]})
        return httpx.Response(201, json={"result": new})

    recorder = Recorder(httpx.RemoteProtocolError("server disconnected"), instance)
    async with client(recorder, sleeps) as c:
        got = await c.upload_attachment("sys_certificate", "a" * 32, "ks.jks", b"12345", replacing=replacing)
    assert got == new
    assert [m.split()[0] for m in recorder.methods()].count("POST") == 2


async def test_tls_verification_failures_are_not_retried_and_say_what_to_do(sleeps: SleepRecorder) -> None:
    failure = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    failure.__cause__ = ssl.SSLCertVerificationError("self-signed certificate")
    recorder = Recorder(failure)
    async with client(recorder, sleeps) as c:
        with pytest.raises(InstanceUnreachable, match="TLS verification") as caught:
            await c.list("sys_certificate")
    assert "--ca-bundle" in str(caught.value)
    assert len(recorder.requests) == 1


async def test_delete_treats_a_404_after_an_ambiguous_failure_as_done(sleeps: SleepRecorder) -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"), envelope(404, "No Record found"))
    async with client(recorder, sleeps) as c:
        await c.delete("sys_certificate", "a" * 32, missing_ok=False)
    recorder = Recorder(envelope(404, "No Record found"))
    async with client(recorder, sleeps) as c:
        with pytest.raises(RecordNotFound):
            await c.delete("sys_certificate", "a" * 32, missing_ok=False)
        await c.delete("sys_certificate", "a" * 32)


async def test_credentials_never_reach_errors_or_logs(sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        # A hostile proxy that echoes the Authorization header (and the decoded password) back.
        header = request.headers["Authorization"]
        decoded = base64.b64decode(header.split()[1]).decode()
        return envelope(401, f"bad credentials {header}", f"you sent {decoded}")

    caplog.set_level(logging.DEBUG)
    recorder = Recorder(echo)
    async with client(recorder, sleeps) as c:
        with pytest.raises(AuthenticationFailed) as caught:
            await c.get("sys_certificate", "a" * 32)
        token = recorder.requests[0].headers["Authorization"].split()[1]
        texts = [str(caught.value), repr(caught.value), repr(c), repr(c.settings), caplog.text]
    for text in texts:
        assert CANARY_PASSWORD not in text
        assert token not in text
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    assert "GET /api/now/table/sys_certificate" in caplog.text  # the debug log does show method and path


async def test_transport_errors_are_mapped_from_none(sleeps: SleepRecorder) -> None:
    recorder = Recorder(httpx.ConnectError(f"refused for admin:{CANARY_PASSWORD}"))
    async with client(recorder, sleeps) as c:
        with pytest.raises(InstanceUnreachable) as caught:
            await c.list("sys_certificate")
    assert caught.value.__suppress_context__
    assert CANARY_PASSWORD not in str(caught.value)
    assert len(recorder.requests) == 6


async def test_a_resent_create_refused_as_duplicate_finds_the_record_that_landed_late(sleeps: SleepRecorder) -> None:
    recorder = Recorder(
        httpx.ReadError("connection reset"),  # POST: done by the instance, answer lost
        envelope(404, "No Record found"),  # GET: not visible yet
        envelope(400, "Operation Failed", "duplicate sys_id"),  # POST again: now it is there
        httpx.Response(200, json={"result": RECORD}),  # GET: found
    )
    async with client(recorder, sleeps) as c:
        assert await c.create("sys_certificate", {"name": "x"}, sys_id="a" * 32) == RECORD
    assert [m.split()[0] for m in recorder.methods()] == ["POST", "GET", "POST", "GET"]


async def test_a_duplicate_sys_id_without_an_earlier_ambiguity_is_an_error(sleeps: SleepRecorder) -> None:
    recorder = Recorder(envelope(400, "Operation Failed", "duplicate sys_id"))
    async with client(recorder, sleeps) as c:
        with pytest.raises(InstanceError, match="duplicate sys_id"):
            await c.create("sys_certificate", {"name": "x"}, sys_id="a" * 32)
    assert len(recorder.requests) == 1


async def test_an_instance_that_ignores_the_offset_does_not_loop_forever(sleeps: SleepRecorder) -> None:
    page = {"result": [{"sys_id": f"{i:032x}"} for i in range(2)]}
    recorder = Recorder(httpx.Response(200, json=page))
    async with client(recorder, sleeps) as c:
        with pytest.raises(BadResponse, match="sysparm_offset"):
            await c.list("sys_certificate", page_size=2)
    assert len(recorder.requests) == 2


async def test_a_create_whose_last_answer_is_lost_is_still_looked_up(sleeps: SleepRecorder) -> None:
    recorder = Recorder(httpx.ReadError("reset"), httpx.Response(200, json={"result": RECORD}))
    async with client(recorder, sleeps, retry=RetryPolicy(max_retries=0)) as c:
        assert await c.create("sys_certificate", {"name": "x"}, sys_id="a" * 32) == RECORD
    assert [m.split()[0] for m in recorder.methods()] == ["POST", "GET"]


async def test_when_the_look_up_fails_too_the_original_failure_is_reported(sleeps: SleepRecorder) -> None:
    recorder = Recorder(envelope(503, "Service Unavailable"), envelope(403, "Insufficient rights"))
    async with client(recorder, sleeps) as c:
        with pytest.raises(InstanceUnreachable, match="503"):
            await c.create("sys_certificate", {"name": "x"}, sys_id="a" * 32)
