"""Secrets an instance (or a proxy in front of it) echoes back never come out: a fault-injected instance quotes the
request it refuses (its body as sent, as a JSON string, URL-encoded, base64; a batch body, whose items carry their
bodies base64-encoded; an OAuth form; the request's headers) in its error message, and the run must show none of
the canaries (keystore password, instance password, OAuth client secret, private key), in any form, on stdout,
stderr, in log records, journals or report files, nor in an exception's str or repr. Journals and reports are
owner-only (0600) from their creation.

One data file per case in ``cases/echo/``: which request is echoed (``match``: a text its body holds), with which
status, in which encoding, and the command run.
"""

from __future__ import annotations

import base64
import json
import logging
import stat
import traceback
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.errors import InstanceError
from mtls_config.redaction import MASK
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from tests.reliability.harness import EXAMPLE, count, decoded_views, example_repo, read_body, replaying

CASES = sorted((Path(__file__).parent / "cases" / "echo").glob("*.json"))
# A quote, a backslash and an accent: the JSON body carries them escaped (\", \\, \u00e9), a URL as %22, %5C, %C3%A9.
KEYSTORE_PASSWORD = 'CANARY-ks-"pw\\é-5d1f0c9a'
INSTANCE_PASSWORD = "CANARY-instance-pw-0b7e44"
OAUTH_SECRET = "CANARY-oauth-secret-91ac2e"
USERS = {"admin": (INSTANCE_PASSWORD, ("admin",))}


def _key_lines() -> set[str]:
    key = (EXAMPLE / "demo-secrets" / "acme-client-key.pem").read_text().splitlines()
    return {line for line in key if len(line) >= 40}


CANARIES = {
    "keystore password": {KEYSTORE_PASSWORD},
    "instance password": {INSTANCE_PASSWORD},
    "oauth secret": {OAUTH_SECRET},
    "private key": _key_lines(),
}


def leaks(text: str) -> list[str]:
    """The canaries ``text`` shows, as they are or under up to two layers of encoding (a JSON body, URL-encoded by
    an echo; a batch item's base64 body, quoted as a JSON string)."""
    views = decoded_views(text)
    found = [label for label, values in CANARIES.items() if any(c in view for c in values for view in views)]
    count("secrets_found", len(found))
    return found


def _encode(body: bytes, encoding: str, headers: dict[str, str]) -> str:
    if encoding == "raw":
        return body.decode("utf-8", "replace")
    if encoding == "json":
        return json.dumps(body.decode("utf-8", "replace"))
    if encoding == "url":
        return urllib.parse.quote(body, safe="")
    if encoding == "base64":
        return base64.b64encode(body).decode()
    if encoding == "headers":
        return "; ".join(f"{k}: {v}" for k, v in headers.items())
    raise AssertionError(encoding)


def _mentions(body: bytes, needle: str) -> bool:
    """Whether the request body holds ``needle``, also inside a batch item's base64 body."""
    if needle.encode() in body:
        return True
    try:
        items = json.loads(body).get("rest_requests", [])
    except (ValueError, AttributeError):
        return False
    return any(needle.encode() in base64.b64decode(i.get("body", "")) for i in items if isinstance(i, dict))


class Echo:
    """ASGI wrapper of the emulator: a request matching the case is answered ``status`` with its body (or its
    headers) quoted, in the case's encoding, in the error; everything else goes to the emulator."""

    def __init__(self, app: Any, case: dict[str, Any]) -> None:
        self.app = app
        self.state = app.state
        self.case = case
        self.echoed = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if (self.case["match"] == "" or _mentions(body, self.case["match"])) and scope["method"] != "DELETE":
            self.echoed += 1
            said = _encode(body, self.case["encoding"], headers)
            if self.case.get("shape") == "oauth":
                answer = {"error": "invalid_client", "error_description": f"refused: {said}"}
            else:
                answer = {"error": {"message": "Request rejected", "detail": f"could not process: {said}"}}
            raw = json.dumps(answer).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": self.case["status"],
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": raw})
            return
        await self.app(scope, replaying(body), send)


def _repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stack whose keystore is built from the example's key (a fromFile secret) with the canary password."""
    repo = example_repo(tmp_path, monkeypatch, password=INSTANCE_PASSWORD)
    (repo / "demo-secrets" / "canary-password.txt").write_text(KEYSTORE_PASSWORD + "\n", encoding="utf-8")
    (repo / "resources" / "globex-orders.yaml").unlink()
    spec = repo / "resources" / "acme-payments.yaml"
    text = spec.read_text().replace("../demo-secrets/keystore-password.txt", "../demo-secrets/canary-password.txt")
    spec.write_text(text)
    return repo


@pytest.fixture
def served() -> Iterator[tuple[list[Echo], str]]:
    app = create_app(EmulatorConfig(users=USERS, oauth_clients={"mtls-cli": OAUTH_SECRET}))
    holder: list[Echo] = [Echo(app, {"match": "\0never", "status": 500, "encoding": "raw"})]

    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        await holder[0](scope, receive, send)

    dispatch.state = app.state  # type: ignore[attr-defined]
    with ThreadedServer(dispatch) as server:  # type: ignore[arg-type]
        yield holder, server.url


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_an_echoed_secret_never_comes_out(
    path: Path,
    tmp_path: Path,
    served: tuple[list[Echo], str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    holder, url = served
    echo = Echo(holder[0].app, case)
    holder[0] = echo
    caplog.set_level(logging.DEBUG)
    repo = _repo(tmp_path, monkeypatch)
    if case.get("oauth"):
        monkeypatch.setenv("SN_CLIENT_ID", "mtls-cli")
        monkeypatch.setenv("SN_CLIENT_SECRET", OAUTH_SECRET)

    code = main([*case["args"], "--instance", url])
    out, err = capsys.readouterr()
    logs = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    journals = sorted((repo / ".mtls-config" / "journal").glob("*.jsonl"))
    reports = [repo / name for name in case.get("files", [])]
    written = {str(p.relative_to(repo)): p.read_text(encoding="utf-8") for p in [*journals, *reports]}

    assert echo.echoed > 0, "the case's request was never sent: nothing was echoed"
    assert code == case["exit"], (code, out, err)
    assert "Traceback" not in out + err
    where = {"stdout": out, "stderr": err, "logs": logs, **written}
    found = {name: leaks(text) for name, text in where.items()}
    assert not any(found.values()), found
    # The echo did reach the output, masked: the test would pass vacuously if it were simply dropped.
    assert any(MASK in text for text in where.values()), "\n".join(
        f"--- {k}\n{v}" for k, v in where.items() if k != "logs"
    )
    for name in written:
        assert stat.S_IMODE((repo / name).stat().st_mode) == 0o600, name
    count("echoes_masked", echo.echoed)


@pytest.mark.anyio
async def test_an_exception_made_from_an_echo_holds_no_secret() -> None:
    """The error itself: str, repr, args and a formatted traceback of what the client raises."""
    password = SecretValue(KEYSTORE_PASSWORD.encode(), "env:KS_PASSWORD")
    sent: list[bytes] = []

    def echo(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        said = request.content.decode() + " " + request.headers.get("authorization", "")
        return httpx.Response(400, json={"error": {"message": "Invalid update", "detail": said}})

    settings = InstanceSettings(
        url="https://acme.service-now.com",
        auth=BasicAuth("admin", SecretValue(INSTANCE_PASSWORD.encode(), "env:SN_PASSWORD")),
    )
    async with InstanceClient(settings, transport=httpx.MockTransport(echo)) as client:
        with pytest.raises(InstanceError) as caught:
            await client.update("sys_certificate", "a" * 32, {"key_store_password": password.reveal_text()})
    assert sent and b"key_store_password" in sent[0]
    exc = caught.value
    texts = {
        "str": str(exc),
        "repr": repr(exc),
        "args": repr(exc.args),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    assert MASK in texts["str"]
    assert not {name: leaks(text) for name, text in texts.items() if leaks(text)}
