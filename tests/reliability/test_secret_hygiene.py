"""Secret hygiene across every command: canary secrets (the instance password, an OAuth client secret, the
keystore password, the key password, the private key's bytes) go in; none may come out in stdout, stderr,
log records (captured at DEBUG), plan files, journals, reports, imported specs, schemas or the text of any
exception, in clear or in the encodings a leak would take (base64, hex, URL-encoding, Basic auth header).
Files that hold key material are written 0600.

Commands covered: validate (text and json), schema, keystore new|assemble|inspect|export-cert|lint, cert inspect, plan (text,
json, markdown, --out), apply (specs and saved plan), drift (text, json, junit, markdown, --out), import,
verify, lock status|release, emulator seed|reset|serve, each on its success path and on failure paths (wrong
instance password, wrong OAuth secret, wrong keystore password).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import stat
import traceback
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mtls_config.cli.main import main
from mtls_config.client import InstanceClient
from mtls_config.emulator import EmulatorConfig, create_app
from mtls_config.emulator.server import ThreadedServer
from mtls_config.keystore import load_key_entry
from mtls_config.secrets import SecretValue
from mtls_config.settings import BasicAuth, InstanceSettings
from tests.client.servers import make_tls_files, serve
from tests.keystore.conftest import Pki, pem, pki  # noqa: F401 - the session CA fixture
from tests.reliability.harness import count

INSTANCE_PASSWORD = "CANARY-instance-pw-4b1e9d"
OAUTH_SECRET = "CANARY-oauth-secret-8c2f71"
KEYSTORE_PASSWORD = "CANARY-keystore-pw-d93a05"
KEY_PASSWORD = "CANARY-key-pw-5e77c2"
USERS = {"admin": (INSTANCE_PASSWORD, ("admin",))}
OAUTH = {"mtls-cli": OAUTH_SECRET}


def _encodings(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        raw.hex(),
        urllib.parse.quote(secret),
        base64.b64encode(b"admin:" + raw).decode().rstrip("="),
    }


class Leaks:
    """Everything a run produced, scanned for every canary."""

    def __init__(self) -> None:
        self.canaries: dict[str, set[str]] = {}
        self.scanned = 0

    def add_secret(self, label: str, value: str) -> None:
        self.canaries[label] = _encodings(value)

    def add_key_bytes(self, label: str, der: bytes, public: bytes = b"") -> None:
        # Any 24-byte window of the key's DER, in base64 (PEM) or hex, would be a leak of key bytes; except the
        # windows that hold bytes of ``public``, the public key the DER carries too (an EC key's PKCS#8 holds its
        # point), which the certificate rightly shows: a window of it matched a certificate's base64 whenever the
        # two happened to be aligned alike (a false leak, about one run in many).
        shared = der.find(public) if public else -1
        skip = range(shared - 23, shared + len(public)) if shared >= 0 else range(0)
        forms = set()
        for start in range(0, max(1, len(der) - 24), 12):
            if start not in skip:
                forms.add(der[start : start + 24].hex())
        b64 = base64.b64encode(der).decode()
        forms.update(b64[i : i + 32] for i in range(0, len(b64) - 32, 16) if (i * 3 // 4) not in skip)
        self.canaries[label] = forms

    def scan(self, where: str, text: str, *, tally: bool = True) -> list[str]:
        self.scanned += 1
        found = [f"{label} in {where}" for label, forms in self.canaries.items() if any(f in text for f in forms)]
        if tally:
            count("secrets_found", len(found))
        return found


@pytest.fixture
def leaks() -> Leaks:
    found = Leaks()
    for label, value in (
        ("instance password", INSTANCE_PASSWORD),
        ("oauth secret", OAUTH_SECRET),
        ("keystore password", KEYSTORE_PASSWORD),
        ("key password", KEY_PASSWORD),
    ):
        found.add_secret(label, value)
    return found


@pytest.fixture
def served() -> Iterator[ThreadedServer]:
    app = create_app(EmulatorConfig(users=USERS, oauth_clients=OAUTH, oauth_client_credentials_user="admin"))
    with ThreadedServer(app) as server:
        yield server


class Session:
    def __init__(
        self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, leaks: Leaks, url: str
    ) -> None:
        self.capsys, self.caplog, self.leaks, self.url = capsys, caplog, leaks, url
        self.found: list[str] = []
        self.commands = 0

    def __call__(self, *argv: str, instance: bool = False, expect: int | None = 0) -> tuple[int, str]:
        args = [*argv, "--instance", self.url] if instance else list(argv)
        self.caplog.clear()
        code = main(args)
        out, err = self.capsys.readouterr()
        logs = "\n".join(f"{r.getMessage()} {r.args!r}" for r in self.caplog.records)
        self.commands += 1
        count("commands_scanned")
        name = " ".join(argv[:2])
        self.found += self.leaks.scan(f"stdout of '{name}'", out)
        self.found += self.leaks.scan(f"stderr of '{name}'", err)
        self.found += self.leaks.scan(f"logs of '{name}'", logs)
        assert "Traceback" not in out + err, out + err
        if expect is not None:
            assert code == expect, (args, code, out, err)
        return code, out + err


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# A refused OAuth grant leaves one of anyio's connect attempts unawaited at shutdown (reported; not a leak).
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <coroutine object connect_tcp:pytest.PytestUnraisableExceptionWarning",
    "ignore:coroutine 'connect_tcp.<locals>.try_connect' was never awaited:RuntimeWarning",
)
def test_no_command_leaks_a_secret(
    tmp_path: Path,
    served: ThreadedServer,
    pki: Pki,  # noqa: F811
    leaks: Leaks,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "specs").mkdir()
    (repo / "keys").mkdir()
    monkeypatch.chdir(repo)
    for var in ("SN_INSTANCE", "SN_CLIENT_ID", "SN_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("SN_USERNAME", "admin")
    monkeypatch.setenv("SN_PASSWORD", INSTANCE_PASSWORD)
    monkeypatch.setenv("KS_PASSWORD", KEYSTORE_PASSWORD)
    monkeypatch.setenv("KEY_PASSWORD", KEY_PASSWORD)
    monkeypatch.setenv("WRONG_PASSWORD", "not-the-password")
    run = Session(capsys, caplog, leaks, served.url)

    # Keystore chores (steps A1-A4, D), with the key and store passwords as canaries.
    run("keystore", "new", "--subject", "CN=hygiene.example,O=Tests,C=US", "--key-type", "ec-p256",
        "--key-out", "keys/client.key", "--csr-out", "keys/client.csr", "--key-password-env", "KEY_PASSWORD")  # fmt: skip
    (repo / "keys" / "signed.pem").write_bytes(pem(pki.sign_csr((repo / "keys" / "client.csr").read_bytes())))
    (repo / "keys" / "chain.pem").write_bytes(pem(pki.ica, pki.root))
    run("keystore", "assemble", "--key", "keys/client.key", "--key-password-env", "KEY_PASSWORD",
        "--cert", "keys/signed.pem", "--chain", "keys/chain.pem", "--password-env", "KS_PASSWORD",
        "--alias", "client", "--out", "specs/client.jks")  # fmt: skip
    material = load_key_entry(
        (repo / "specs" / "client.jks").read_bytes(), SecretValue(KEYSTORE_PASSWORD.encode(), "test")
    )
    der = material.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    point = material.private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    leaks.add_key_bytes("private key bytes", der, public=point)
    run("keystore", "inspect", "specs/client.jks", "--password-env", "KS_PASSWORD")
    run("keystore", "inspect", "specs/client.jks", "--password-env", "WRONG_PASSWORD", expect=None)
    run("keystore", "lint", "specs/client.jks", "--password-env", "KS_PASSWORD", expect=None)
    run("keystore", "lint", "specs/client.jks", "--password-env", "KS_PASSWORD", "--format", "json", expect=None)
    run("keystore", "export-cert", "specs/client.jks", "--out", "keys/public.pem", "--password-env", "KS_PASSWORD")
    (repo / "specs" / "partner-ca.pem").write_bytes(pem(pki.root))
    run("cert", "inspect", "specs/partner-ca.pem")

    # Specs that use them, against an instance whose password is a canary.
    (repo / "mtls-config.yaml").write_text("stack: hygiene\nspecs: [specs]\n")
    (repo / "specs" / "stack.yaml").write_text(
        "apiVersion: mtls-config/v1\nkind: KeyStore\nmetadata: {name: hygiene client}\n"
        "spec: {file: client.jks, password: {fromEnv: KS_PASSWORD}}\n---\n"
        "apiVersion: mtls-config/v1\nkind: TrustStoreCert\nmetadata: {name: hygiene partner CA}\n"
        "spec: {format: pem, file: partner-ca.pem}\n---\n"
        "apiVersion: mtls-config/v1\nkind: ProtocolProfile\nmetadata: {name: hygienem}\n"
        "spec: {keyStore: hygiene client}\n---\n"
        "apiVersion: mtls-config/v1\nkind: MessageBinding\nmetadata: {name: globex-orders}\n"
        "spec: {message: {type: soap, name: Globex Orders}, functions: all, protocolProfile: hygienem}\n"
    )
    run("validate")
    run("validate", "--format", "json", "--verbose")
    run("schema", "--out", "schemas")
    run("plan", instance=True, expect=2)
    run("plan", "--json", instance=True, expect=2)
    run("plan", "--format", "markdown", instance=True, expect=2)
    run("plan", "--out", "plan.json", instance=True, expect=2)
    run("apply", "plan.json", "--verbose", instance=True)
    run("drift", instance=True)
    # A rotated keystore password (the store re-assembled with it): plan, saved plan, apply.
    rotated = KEYSTORE_PASSWORD + "-rotated"
    leaks.add_secret("rotated keystore password", rotated)
    monkeypatch.setenv("KS_PASSWORD", rotated)
    run("keystore", "assemble", "--key", "keys/client.key", "--key-password-env", "KEY_PASSWORD",
        "--cert", "keys/signed.pem", "--chain", "keys/chain.pem", "--password-env", "KS_PASSWORD",
        "--alias", "client", "--out", "keys/rotated.jks")  # fmt: skip
    (repo / "specs" / "client.jks").write_bytes((repo / "keys" / "rotated.jks").read_bytes())
    run("plan", "--out", "rotate.json", instance=True, expect=2)
    run("apply", "rotate.json", instance=True)
    for fmt in ("text", "json", "junit", "markdown"):
        run("drift", "--format", fmt, "--out", f"drift.{fmt}", instance=True, expect=None)
    monkeypatch.setenv("MTLS_KEYSTORE_PASSWORD_HYGIENE_CLIENT", KEYSTORE_PASSWORD)

    # import, by another stack, of a keystore made by hand (the names of this stack's records are its own, and
    # import leaves them, saying whose they are): downloads the keystore file.
    async def hand_made() -> None:
        settings = InstanceSettings(
            url=served.url, auth=BasicAuth("admin", SecretValue(INSTANCE_PASSWORD.encode(), "t"))
        )
        async with InstanceClient(settings) as c:
            values = {"name": "hand-made client", "type": "key_store", "key_store_password": KEYSTORE_PASSWORD}
            ks = await c.create("sys_certificate", values, input_display_value=True)
            jks = (repo / "specs" / "client.jks").read_bytes()
            await c.upload_attachment("sys_certificate", ks["sys_id"], "hand-made.jks", jks)

    asyncio.run(hand_made())
    (repo / "other").mkdir()
    (repo / "other" / "mtls-config.yaml").write_text("stack: other\nspecs: [imported]\n")
    monkeypatch.chdir(repo / "other")
    _, text = run("import", "--out", "imported", instance=True)
    assert "imported KeyStore/hand-made client" in text and "belongs to stack 'hygiene'" in text, text
    run("import", "--out", "imported-again", "--format", "json", instance=True)
    monkeypatch.chdir(repo)
    run("lock", "status", instance=True)
    run("lock", "release", instance=True)

    # verify: a real handshake against a local TLS server (it fails at some stage: the output still must not leak).
    tls = make_tls_files(tmp_path)
    with serve(create_app(EmulatorConfig(users=USERS)), tls) as partner:
        run("verify", "--endpoint", f"{partner}/", "--keystore", "specs/client.jks", "--password-env", "KS_PASSWORD",
            "--trust", str(tls.ca_bundle), "--timeout", "5", expect=None)  # fmt: skip
        run("verify", "--all", "--timeout", "2", instance=True, expect=None)

    # Failure paths: the wrong instance password, a refused OAuth secret, the wrong keystore password.
    monkeypatch.setenv("SN_PASSWORD", INSTANCE_PASSWORD + "-wrong")
    leaks.add_secret("wrong instance password", INSTANCE_PASSWORD + "-wrong")
    _, text = run("plan", instance=True, expect=1)
    assert "refused the credentials" in text
    monkeypatch.delenv("SN_USERNAME")
    monkeypatch.delenv("SN_PASSWORD")
    monkeypatch.setenv("SN_CLIENT_ID", "mtls-cli")
    monkeypatch.setenv("SN_CLIENT_SECRET", OAUTH_SECRET)
    run("drift", instance=True, expect=None)
    monkeypatch.setenv("SN_CLIENT_SECRET", OAUTH_SECRET + "-wrong")
    leaks.add_secret("wrong oauth secret", OAUTH_SECRET + "-wrong")
    run("plan", instance=True, expect=1)
    monkeypatch.setenv("KS_PASSWORD", "not-the-keystore-password")
    run("plan", instance=True, expect=None)
    run("emulator", "reset", "--db", "scratch.db", expect=None)
    run("emulator", "seed", "--db", "scratch.db", expect=None)

    # Files: plans, journals, reports, imported specs, schemas -- everything except the key material itself.
    key_material = {".jks", ".p12", ".pfx", ".key", ".db"}
    for path in _files(repo):
        if path.suffix in key_material or ".git" in path.parts:
            continue
        run.found += leaks.scan(str(path.relative_to(repo)), path.read_text(encoding="utf-8", errors="replace"))
        count("files_scanned")
    assert list((repo / ".mtls-config" / "journal").glob("*.jsonl")), "no journal was written"
    assert (repo / "plan.json").is_file() and (repo / "other" / "imported").is_dir()

    # Files holding private keys (or the local instance's passwords) are readable by their owner only.
    secret_files = [p for p in _files(repo) if p.suffix in key_material and ".git" not in p.parts]
    assert {p.suffix for p in secret_files} >= {".jks", ".key"}
    loose = [f"{p.relative_to(repo)} {oct(_mode(p))}" for p in secret_files if _mode(p) & 0o077]
    assert not loose, f"key material readable by others: {loose}"

    assert run.commands >= 30
    assert not run.found, run.found


def test_exception_text_carries_no_secret(leaks: Leaks) -> None:
    """Library errors raised with secrets at hand: their message, repr, and full formatted chain."""
    from mtls_config.errors import MtlsConfigError
    from mtls_config.keystore import read_keystore
    from mtls_config.settings import BasicAuth, InstanceSettings

    secret = SecretValue(KEYSTORE_PASSWORD.encode(), "env:KS_PASSWORD")
    texts = [repr(secret), str(secret), f"{secret}", f"{secret!r}"]
    settings = InstanceSettings(url="https://acme.service-now.com", auth=BasicAuth("admin", secret))
    texts += [repr(settings), str(settings)]
    for data in (b"\xfe\xed\xfe\xed" + b"\x00" * 40, b"not a keystore", b""):
        try:
            read_keystore(data, secret)
        except MtlsConfigError as exc:
            texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    found = [hit for text in texts for hit in leaks.scan("exception text", text)]
    assert not found, found


def test_the_scanner_finds_planted_leaks(leaks: Leaks) -> None:
    """The check above could fail: each encoding of a canary, and a slice of key bytes, is found."""
    der = bytes(range(256))
    leaks.add_key_bytes("key bytes", der)
    planted = {
        "plain": f"password={KEYSTORE_PASSWORD}",
        "base64": base64.b64encode(OAUTH_SECRET.encode()).decode(),
        "hex": INSTANCE_PASSWORD.encode().hex(),
        "url": urllib.parse.quote("x" + KEY_PASSWORD + "/"),
        "basic": "Authorization: Basic " + base64.b64encode(f"admin:{INSTANCE_PASSWORD}".encode()).decode(),
        "key hex": der[100:140].hex(),
        "key base64": base64.b64encode(der).decode()[40:100],
    }
    for name, text in planted.items():
        assert leaks.scan(name, text, tally=False), name
    assert not leaks.scan("clean", "nothing to see: (sensitive) sha256:abcd", tally=False)


def test_emulator_serve_keeps_its_password_to_itself(tmp_path: Path, leaks: Leaks) -> None:
    """``emulator serve`` runs until interrupted: run it as its own process with a canary password, use it with
    a wrong and the right password, stop it with Ctrl-C (SIGINT), and scan everything it printed."""
    import os
    import signal
    import subprocess
    import time

    import httpx

    from mtls_config.emulator.server import free_port
    from tests.reliability.cli_runner import CLI, base_env

    port = free_port()
    env = base_env(EMULATOR_PASSWORD=INSTANCE_PASSWORD)
    argv = [*CLI, "emulator", "serve", "--port", str(port), "--user", "ops", "--password-env", "EMULATOR_PASSWORD"]
    argv += ["--db", str(tmp_path / "served.db")]
    server = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/api/now/table/sys_user"
        deadline = time.monotonic() + 30
        while True:  # wait until it listens (a connection refused means: not yet)
            try:
                wrong = httpx.get(url, auth=("ops", "guess"), timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        right = httpx.get(url, auth=("ops", INSTANCE_PASSWORD), timeout=5)
        assert (wrong.status_code, right.status_code) == (401, 200)
        found = leaks.scan("emulator answers", wrong.text + right.text + str(dict(wrong.headers)))
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    found += leaks.scan("emulator serve stdout", out) + leaks.scan("emulator serve stderr", err)
    assert "Traceback" not in out + err
    assert not os.stat(tmp_path / "served.db").st_mode & 0o077
    count("commands_scanned")
    assert not found, found
