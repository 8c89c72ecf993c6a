"""``mtls-config verify`` end to end: specs on disk, the embedded local instance holding the message, a real
TLS server on 127.0.0.1; text and JSON output, exit codes, and no secret in any output."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.keystore import assemble_keystore
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from tests.verify.conftest import PKI, PythonTLSServer, server_context

CANARY = "canary-Pa55word-7f3e9"


def write_repo(repo: Path, pki: PKI) -> None:
    (repo / "certs").mkdir()
    (repo / "secrets").mkdir()
    (repo / "certs" / "client.pem").write_bytes(pki.pem(pki.client.cert))
    (repo / "certs" / "client-cas.pem").write_bytes(pki.pem(pki.client_root.cert, pki.client_ica.cert))
    (repo / "certs" / "partner-ca.pem").write_bytes(pki.pem(pki.server_root.cert))
    (repo / "secrets" / "client-key.pem").write_bytes(
        pki.client.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (repo / "resources.yaml").write_text(
        """\
apiVersion: mtls-config/v1
kind: KeyStore
metadata: {name: partner client}
spec:
  build:
    key: {fromFile: secrets/client-key.pem}
    cert: certs/client.pem
    chain: [certs/client-cas.pem]
    alias: partner-client
  password: {fromEnv: VERIFY_TEST_KS_PASSWORD}
---
apiVersion: mtls-config/v1
kind: TrustStoreCert
metadata: {name: partner server CA}
spec: {file: certs/partner-ca.pem}
---
apiVersion: mtls-config/v1
kind: ProtocolProfile
metadata: {name: mauth}
spec: {keyStore: partner client}
---
apiVersion: mtls-config/v1
kind: MessageBinding
metadata: {name: partner-api}
spec:
  message: {type: rest, name: Partner API}
  protocolProfile: mauth
---
apiVersion: mtls-config/v1
kind: MessageBinding
metadata: {name: closed-api}
spec:
  message: {type: rest, name: Closed API}
  protocolProfile: mauth
"""
    )


def seed_messages(repo: Path, endpoints: dict[str, str], method: dict[str, str] | None = None) -> None:
    """Create the REST messages in the repository's embedded local instance (where the CLI will look), with basic
    authentication as ServiceNow's docs set one up for mutual auth, and no method unless ``method`` gives one's
    fields (the specs bind the message alone, and a method's own box would decide for it)."""
    (repo / ".mtls-config").mkdir(exist_ok=True)
    app = create_app(
        EmulatorConfig(db_path=repo / ".mtls-config" / "instance.db", seed_data=True, auto_create_get_method=False)
    )
    settings = InstanceSettings(url="local", auth=BasicAuth("admin", SecretValue(b"admin", "test")))

    async def create() -> None:
        async with InstanceClient(settings, transport=httpx.ASGITransport(app=app)) as client:
            if method and method.get("use_mid_server"):  # a MID Server of that name, picked by its name
                await client.create("ecc_agent", {"name": method["use_mid_server"], "status": "Up"})
            for name, url in endpoints.items():
                made = await client.create(
                    "sys_rest_message", {"name": name, "rest_endpoint": url, "authentication_type": "basic"}
                )
                if method is not None:
                    fields = {"rest_message": made["sys_id"], "function_name": "get", "rest_endpoint": url, **method}
                    await client.create("sys_rest_message_fn", fields)

    asyncio.run(create())


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@pytest.fixture
def repo(spec_repo: Path, pki: PKI, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VERIFY_TEST_KS_PASSWORD", CANARY)
    monkeypatch.delenv("SN_INSTANCE", raising=False)
    write_repo(spec_repo, pki)
    return spec_repo


def test_verify_a_binding_reads_the_endpoint_from_the_instance(
    repo: Path, pki: PKI, python_server: Callable[..., PythonTLSServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = python_server(server_context(pki))
    # The profile's scheme stands for https, as on the instance.
    seed_messages(repo, {"Partner API": f"mauth://localhost:{server.port}/api/ping"})
    code = main(["verify", "partner-api"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.startswith("PASS  partner-api  https://localhost:")
    assert "endpoint from sys_rest_message 'Partner API'.rest_endpoint" in out
    assert "key from KeyStore/partner client (alias partner-client)" in out
    assert CANARY not in out + err


def test_verbose_shows_the_certificates_the_server_presented(
    repo: Path, pki: PKI, python_server: Callable[..., PythonTLSServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = python_server(server_context(pki))
    seed_messages(repo, {"Partner API": f"mauth://localhost:{server.port}/api/ping"})
    assert main(["verify", "partner-api"]) == 0
    plain = capsys.readouterr().out
    assert main(["verify", "partner-api", "-v"]) == 0
    out, err = capsys.readouterr()
    assert "presented" not in plain
    leaf = pki.server.cert
    sha256 = leaf.fingerprint(hashes.SHA256()).hex()
    assert "  the server presented 2 certificates:\n" in out
    assert f"    [0] {leaf.subject.rfc4514_string()}\n" in out
    assert f"        issuer {leaf.issuer.rfc4514_string()}; until " in out and f"        sha256 {sha256}\n" in out
    assert f"    [1] {pki.server_ica.cert.subject.rfc4514_string()}\n" in out
    for line in plain.splitlines():  # and all the plain report says (but the timings, which differ)
        assert re.sub(r"  \d+ ms$", "", line) in out, line
    assert CANARY not in out + err


def test_verify_all_as_json(
    repo: Path, pki: PKI, python_server: Callable[..., PythonTLSServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = python_server(server_context(pki))
    seed_messages(
        repo,
        {
            "Partner API": f"https://localhost:{server.port}/api",
            "Closed API": f"https://localhost:{free_port()}/api",
        },
    )
    code = main(["verify", "--all", "--json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    data = json.loads(out)
    assert data["ok"] is False
    by_name = {r["target"]: r for r in data["results"]}
    assert by_name["partner-api"]["ok"] is True
    assert by_name["partner-api"]["client_cert"]["certificates_sent"] == 3
    assert by_name["closed-api"]["diagnosis"]["code"] == "connection_refused"
    # the instance holds the message, not yet bound (a warning), then the handshake's stages
    assert [s["status"] for s in by_name["closed-api"]["stages"]] == [
        "warn", "ok", "fail", "skipped", "skipped", "skipped"
    ]  # fmt: skip
    assert CANARY not in out + err


def test_verify_says_first_that_the_instance_would_not_use_mutual_auth(
    repo: Path, pki: PKI, python_server: Callable[..., PythonTLSServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = python_server(server_context(pki))
    url = f"https://localhost:{server.port}/api"
    # the method is ticked without a profile (it uses its message's: it agrees), and goes through a MID Server
    seed_messages(repo, {"Partner API": url}, {"use_mutual_auth": "true", "use_mid_server": "mid-east"})
    code = main(["verify", "partner-api"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    lines = out.splitlines()
    assert lines[2].startswith(
        "  FAIL instance    the instance would not use mutual auth: HTTP method 'get' of REST message 'Partner API' "
        "(sys_rest_message_fn): goes through MID Server 'mid-east' (use_mid_server)"
    ), out
    assert all(f"ok   {stage}" in out for stage in ("dns", "connect", "tls", "client-cert", "http"))  # tried anyway
    assert "error instance-mid-server:" in out and "fix: clear use_mid_server" in out

    assert main(["verify", "partner-api", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["diagnosis"]["code"] == "instance-mid-server" and report["diagnosis"]["stage"] == "instance"
    assert [(s["name"], s["status"]) for s in report["stages"]][:2] == [("instance", "fail"), ("dns", "ok")]
    # with --endpoint the instance is not asked, and says nothing
    assert main(["verify", "partner-api", "--endpoint", url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in report["stages"]] == ["dns", "connect", "tls", "client-cert", "http"]


def test_verify_an_endpoint_with_a_keystore_file(
    tmp_path: Path,
    pki: PKI,
    python_server: Callable[..., PythonTLSServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KS_PW", CANARY)
    key_pem = pki.client.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    store = assemble_keystore(
        key_pem,
        pki.pem(pki.client.cert),
        [pki.pem(pki.client_ica.cert, pki.client_root.cert)],
        SecretValue(CANARY.encode(), "test"),
    )
    (tmp_path / "client.jks").write_bytes(store)
    (tmp_path / "partner-ca.pem").write_bytes(pki.pem(pki.server_root.cert))
    server = python_server(server_context(pki))
    args = ["verify", "--endpoint", f"https://127.0.0.1:{server.port}/", "--server-name", "localhost"]
    args += ["--keystore", "client.jks", "--password-env", "KS_PW", "--trust", "partner-ca.pem", "--json"]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True and report["server_name"] == "localhost"
    assert report["keystore"] == "client.jks" and report["trust"] == ["partner-ca.pem"]
    assert CANARY not in out + err

    monkeypatch.setenv("KS_PW", "wrong-" + CANARY)
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert "password" in err and CANARY not in out + err


def test_a_failure_prints_the_diagnosis_and_the_fix(
    repo: Path, pki: PKI, python_server: Callable[..., PythonTLSServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = python_server(server_context(pki, client_cas=None))  # does not ask for a client certificate
    code = main(["verify", "--endpoint", f"https://localhost:{server.port}/", "--keystore", "partner client"])
    out, _err = capsys.readouterr()
    assert code == 1
    assert out.startswith("FAIL")
    assert "error no_certificate_request [E01]: The server 'localhost' did not ask for a client certificate" in out
    assert "fix: Ask the partner to require client certificates" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify"], "nothing to verify"),
        (["verify", "no-such-binding"], "no MessageBinding named 'no-such-binding'"),
        (["verify", "--all", "--endpoint", "https://x/"], "--all verifies every binding"),
        (["verify", "--endpoint", "http://localhost/"], "does not start with https://"),
    ],
)
def test_usage_problems_exit_1_with_a_message(
    repo: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 1
    _out, err = capsys.readouterr()
    assert message in err


def test_verify_all_goes_on_past_a_binding_it_cannot_resolve(
    repo: Path, pki: PKI, python_server: Callable[..., PythonTLSServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = python_server(server_context(pki))
    seed_messages(repo, {"Partner API": f"https://localhost:{server.port}/api"})  # no "Closed API" message
    code = main(["verify", "--all"])
    out, _err = capsys.readouterr()
    assert code == 1
    assert "PASS  partner-api" in out
    assert "FAIL  closed-api: the REST message 'Closed API' does not exist on the instance" in out
    assert out.rstrip().endswith("1/2 passed")


def test_text_from_the_server_cannot_drive_the_terminal(
    tmp_path: Path,
    pki: PKI,
    python_server: Callable[..., PythonTLSServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The status line is the server's text: escape sequences in it (set the window title, clear the screen)
    are shown escaped, never written to the operator's terminal as they came."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KS_PW", CANARY)
    key_pem = pki.client.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    store = assemble_keystore(
        key_pem,
        pki.pem(pki.client.cert),
        [pki.pem(pki.client_ica.cert, pki.client_root.cert)],
        SecretValue(CANARY.encode(), "test"),
    )
    (tmp_path / "client.jks").write_bytes(store)
    (tmp_path / "partner-ca.pem").write_bytes(pki.pem(pki.server_root.cert))
    hostile = b"HTTP/1.1 200 \x1b]0;owned\x07\x1b[2J\x9b2J OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    server = python_server(server_context(pki), response=hostile)
    args = ["verify", "--endpoint", f"https://127.0.0.1:{server.port}/", "--server-name", "localhost"]
    code = main([*args, "--keystore", "client.jks", "--password-env", "KS_PW", "--trust", "partner-ca.pem"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "owned" in out  # the line is shown ...
    assert "\x1b" not in out + err and "\x07" not in out + err and "\x9b" not in out + err  # ... defused


def test_verify_an_oauth_provider_and_an_http_connection(
    repo: Path, pki: PKI, python_server: Callable[..., PythonTLSServer], capsys: pytest.CaptureFixture[str]
) -> None:
    """The other binding targets are verified as a REST message is: the endpoint read from the instance (the
    provider's token_url, the connection's connection_url), the instance's stage first, then the handshake."""
    server = python_server(server_context(pki))
    url = f"https://localhost:{server.port}/oauth/token"
    with (repo / "resources.yaml").open("a") as specs:
        specs.write(
            "---\napiVersion: mtls-config/v1\nkind: MessageBinding\nmetadata: {name: partner-token}\n"
            "spec:\n  message: {type: oauth, name: Partner OAuth}\n  protocolProfile: mauth\n"
            "---\napiVersion: mtls-config/v1\nkind: MessageBinding\nmetadata: {name: partner-flows}\n"
            "spec:\n  message: {type: connection, name: Partner Connection}\n  protocolProfile: mauth\n"
        )
    app = create_app(EmulatorConfig(db_path=repo / ".mtls-config" / "instance.db", seed_data=True))
    settings = InstanceSettings(url="local", auth=BasicAuth("admin", SecretValue(b"admin", "test")))

    async def create() -> None:
        async with InstanceClient(settings, transport=httpx.ASGITransport(app=app)) as client:
            profile = await client.create("sys_protocol_profile", {"protocol": "mauth", "default_port": "443"})
            bound = {"use_mutual_auth": "true", "protocol_name": profile["sys_id"]}
            await client.create("oauth_entity", {"name": "Partner OAuth", "token_url": url, **bound})
            await client.create(
                "http_connection", {"name": "Partner Connection", "connection_url": url.replace("/oauth/token", "")}
            )

    (repo / ".mtls-config").mkdir(exist_ok=True)
    asyncio.run(create())

    assert main(["verify", "partner-token", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["url"] == url
    assert [(s["name"], s["status"]) for s in report["stages"]][:2] == [("instance", "ok"), ("dns", "ok")]
    assert report["client_cert"]["certificates_sent"] == 3

    code = main(["verify", "partner-flows"])
    out, err = capsys.readouterr()
    assert code == 0, out + err  # not bound yet: a warning, and the handshake passes
    assert "endpoint from http_connection 'Partner Connection'.connection_url" in out
    assert "warn instance" in out, out
    assert (
        "instance-not-bound: HTTP connection 'Partner Connection' (http_connection): its mutual-auth tick is off, where "
        "the binding wants it on with profile 'mauth'"
    ) in out, out
    assert CANARY not in out + err
