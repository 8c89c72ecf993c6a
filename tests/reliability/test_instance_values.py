"""Every value from the instance is checked before use: an answer nested 100 000 deep, a ``sys_mod_count`` of
``1e999``, a number of 5000 digits, a ``sys_id`` such as ``../sys_user/x`` (which httpx would normalise into
another table), a field holding a list, a batch status of infinity. Each gives a clear error (or, for a lock
record nobody can read, a lock of unknown holder), never a traceback, and no request ever leaves for a path that
is not the API's.

One data file per case in ``cases/instance_values/``: which request to answer (``match``: method and a path
pattern) with what (``body`` as JSON, or ``raw`` text; ``@NESTED@`` stands for an array nested ``nested`` deep and
``@DIGITS@`` for a number of ``digits`` digits), the command, what its output must hold, and (``never_requested``)
tables no request's path may name.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from mtls_config.cli.main import main
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from tests.reliability.harness import count, example_repo

CASES = sorted((Path(__file__).parent / "cases" / "instance_values").glob("*.json"))
API_PATH = re.compile(
    r"^/(api/now/(v1/batch|(v\d+/)?(table/[a-z0-9_]+(/[0-9a-f]{32})?|attachment(/file|/[0-9a-f]{32}(/file)?)?))|oauth_token\.do)$"
)


class Answering:
    """ASGI wrapper of the emulator: requests matching the case get the case's answer; every path is recorded."""

    def __init__(self, app: Any, case: dict[str, Any]) -> None:
        self.app = app
        self.state = app.state
        self.case = case
        self.paths: list[str] = []
        self.answered = 0
        self.lock = threading.Lock()
        self.body = _answer(case)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.lock:
            self.paths.append(scope["path"])
        match = self.case["match"]
        if scope["method"] == match["method"] and re.match(match["path"], scope["path"]):
            with self.lock:
                self.answered += 1
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": self.body})
            return
        await self.app(scope, receive, send)


def _answer(case: dict[str, Any]) -> bytes:
    nested = "[" * case.get("nested", 0) + "]" * case.get("nested", 0)
    digits = "7" * case.get("digits", 0)
    text = case["raw"] if "raw" in case else json.dumps(case["body"])
    return text.replace("@NESTED@", nested).replace("@DIGITS@", digits).encode()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return example_repo(tmp_path, monkeypatch)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_hostile_value_from_the_instance_is_refused_clearly(
    path: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    answering = Answering(create_app(EmulatorConfig()), case)
    with ThreadedServer(answering) as server:  # type: ignore[arg-type]
        code = main([*case["args"], "--instance", server.url])
    out, err = capsys.readouterr()
    assert answering.answered > 0, "the case's request was never made"
    assert "Traceback" not in out + err and "RecursionError" not in out + err, out + err
    assert code == case["exit"], (code, out, err)
    for line in case["output"]:
        assert line in out + err, f"missing from the output:\n{line}\n--- it was:\n{out}{err}"
    stray = [p for p in answering.paths if not API_PATH.match(p)]
    assert not stray, f"requests left for paths that are not the API's: {stray}"
    for table in case.get("never_requested", []):  # a path segment: sys_user_has_role is not sys_user
        assert not [p for p in answering.paths if table in p.split("/")], answering.paths
    count("inputs_tried")
