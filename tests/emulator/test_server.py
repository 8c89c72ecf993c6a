"""The emulator over a real socket: plain HTTP and HTTPS (self-signed certificate for 127.0.0.1), dropped
connections closing the socket, a curl doc test against the vendor docs' shapes, and the serve command's guards."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from mtls_config.cli.main import main
from mtls_config.emulator import create_app
from mtls_config.emulator.server import ThreadedServer, is_loopback
from tests.emulator.conftest import assert_matches, emulator_config


def test_plain_http_over_a_socket(served: ThreadedServer) -> None:
    with httpx.Client(base_url=served.url, auth=("admin", "admin")) as client:
        r = client.get(
            "/api/now/table/sys_rest_message", params={"sysparm_fields": "name", "sysparm_query": "ORDERBYname"}
        )
    assert r.status_code == 200
    assert r.json() == {"result": [{"name": "Acme Payments API"}, {"name": "Weather Service"}]}
    assert r.headers["X-Total-Count"] == "2"


def test_https_with_the_self_signed_certificate(served_tls: ThreadedServer) -> None:
    assert served_tls.url.startswith("https://127.0.0.1:") and served_tls.ca_file is not None
    with httpx.Client(
        base_url=served_tls.url, auth=("admin", "admin"), verify=ssl.create_default_context(cafile=served_tls.ca_file)
    ) as client:
        r = client.get("/api/now/table/sys_protocol_profile/0123456789abcdef0123456789abcdef")
        assert r.status_code == 404
        r = client.post("/api/now/table/sys_properties", json={"name": "tls.works"})
        # reference links carry the base URL the request came in on
        assert r.headers["Location"].startswith(served_tls.url + "/api/now/table/sys_properties/")
    with httpx.Client(base_url=served_tls.url) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get("/api/now/table/sys_user")


def test_dropped_connection_closes_the_socket() -> None:
    app = create_app(emulator_config())
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, auth=("admin", "admin")) as client:
        client.patch(f"{server.url}/_emulator/faults", json={"drop_rate": 1.0})
        with pytest.raises(httpx.TransportError):
            client.post("/api/now/table/sys_properties", json={"name": "dropped"})
        client.patch(f"{server.url}/_emulator/faults", json={"drop_rate": 0.0, "lost_response_rate": 1.0})
        with pytest.raises(httpx.TransportError):
            client.post("/api/now/table/sys_properties", json={"name": "lost"})
        client.patch(f"{server.url}/_emulator/faults", json={"lost_response_rate": 0.0})
        assert client.get("/api/now/table/sys_user").status_code == 200
    assert [p["name"] for p in app.state.backend.records("sys_properties")] == ["lost"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_answers_match_the_vendor_docs(served: ThreadedServer, tmp_path: Path) -> None:
    """The docs' curl examples (table-api.md, attachment-api.md), sent as written, get answers of the docs' shape."""

    def curl(*args: str) -> tuple[int, dict[str, str], str]:
        out = subprocess.run(
            ["curl", "-sS", "-i", "--user", "admin:admin", *args], capture_output=True, check=True, timeout=20
        ).stdout.decode("latin-1")
        head, _, body = out.partition("\r\n\r\n")
        head = head.replace("\r\n", "\n")
        lines = head.split("\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    url = served.url
    # Table API - POST: curl ... --header "Accept:application/json" --header "Content-Type:application/json" --data "{...}"
    status, headers, body = curl(
        f"{url}/api/now/table/sys_certificate",
        "--request", "POST",
        "--header", "Accept:application/json",
        "--header", "Content-Type:application/json",
        "--data", "{'name':'curl-ks','type':'key_store'}".replace("'", '"'),
    )  # fmt: skip
    assert status == 201 and headers["content-type"] == "application/json;charset=UTF-8"
    assert body.startswith('{"result":{')  # compact JSON, as in the docs' samples from a real instance
    created = json.loads(body)["result"]
    assert headers["location"] == f"{url}/api/now/table/sys_certificate/{created['sys_id']}"
    # Table API - GET with sysparm_limit=1: {"result":[{...all strings...}]} with X-Total-Count and Link
    status, headers, body = curl(
        f"{url}/api/now/table/sys_rest_message?sysparm_limit=1",
        "--request",
        "GET",
        "--header",
        "Accept:application/json",
    )
    assert status == 200 and "x-total-count" in headers and 'rel="next"' in headers["link"]
    record = json.loads(body)["result"][0]
    assert all(isinstance(v, str) or set(v) == {"link", "value"} for v in record.values())
    # Attachment API - POST /file with --data-binary, then GET metadata
    (tmp_path / "ks.jks").write_bytes(b"\xfe\xed\xfe\xed" + b"x" * 60)
    status, headers, body = curl(
        f"{url}/api/now/attachment/file?table_name=sys_certificate&table_sys_id={created['sys_id']}&file_name=ks.jks",
        "--request", "POST",
        "--header", "Accept:application/json",
        "--header", "Content-Type: application/octet-stream",
        "--data-binary", f"@{tmp_path / 'ks.jks'}",
    )  # fmt: skip
    assert status == 201
    meta = json.loads(body)["result"]
    documented = ["table_sys_id", "size_bytes", "download_link", "sys_updated_on", "sys_id", "image_height", "sys_created_on",
                  "file_name", "sys_created_by", "compressed", "average_image_color", "sys_updated_by", "sys_tags",
                  "table_name", "image_width", "sys_mod_count", "content_type", "size_compressed"]  # fmt: skip
    assert set(documented) <= set(meta) and meta["size_bytes"] == "64"
    status, headers, body = curl(
        f"{url}/api/now/attachment/{meta['sys_id']}/file", "--request", "GET", "--header", "Accept:*/*"
    )
    assert status == 200 and body.encode("latin-1") == (tmp_path / "ks.jks").read_bytes()
    assert json.loads(headers["x-attachment-metadata"])["sys_id"] == meta["sys_id"]
    # Table API - DELETE: 204, no body
    status, _, body = curl(
        f"{url}/api/now/table/sys_certificate/{created['sys_id']}",
        "--request",
        "DELETE",
        "--header",
        "Accept:application/json",
    )
    assert status == 204 and body == ""
    # An error, in the documented envelope
    status, _, body = curl(
        f"{url}/api/now/table/sys_certificate/{created['sys_id']}", "--header", "Accept:application/json"
    )
    assert status == 404
    assert_matches(json.loads(body), {"error": {"message": "No Record found", "detail": "<any>"}, "status": "failure"})


def test_serve_refuses_a_public_address_with_default_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "serve", "--host", "0.0.0.0", "--port", "1"]) == 1
    assert "refusing" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ignore-field", "sys_properties.nope"], "cannot ignore 'sys_properties.nope'"),
        (["--absent-column", "sys_rest_message.sys_scope"], "inherited"),
    ],
)
def test_serve_refuses_unknown_fields_and_columns(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "serve", "--port", "1", *flags]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_serve_needs_the_password_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("EMU_TEST_PW", raising=False)
    assert main(["emulator", "serve", "--user", "ops", "--password-env", "EMU_TEST_PW", "--port", "1"]) == 1
    assert "EMU_TEST_PW" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_command_prints_url_and_user(tmp_path: Path) -> None:
    """Run the real command in a subprocess, read its banner, make one request, stop it."""
    import os
    import signal
    import sys
    import time

    from mtls_config.emulator.server import free_port

    port = free_port()
    env = {**os.environ, "EMU_SERVE_PW": "canary-Serve-Pa55"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mtls_config.cli.main import run; run()", "emulator", "serve", "--port", str(port),
         "--user", "ops", "--password-env", "EMU_SERVE_PW", "--ignore-field", "sys_properties.value",
         "--ignore-field", "sys_properties.description"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(2)]
        assert banner[0].strip() == f"emulated instance: http://127.0.0.1:{port}"
        assert "ops" in banner[1] and "canary-Serve-Pa55" not in banner[1]
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/now/table/sys_user", auth=("ops", "canary-Serve-Pa55"))
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert r.status_code == 200 and r.json()["result"][0]["user_name"] == "ops"
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/now/table/sys_properties",
            json={"name": "kept", "value": "dropped", "description": "dropped too"},
            auth=("ops", "canary-Serve-Pa55"),
        )
        assert r.status_code == 201  # the write answers 201, and the ignored fields keep their value
        assert (r.json()["result"]["name"], r.json()["result"]["value"], r.json()["result"]["description"]) == (
            "kept",
            "",
            "",
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
