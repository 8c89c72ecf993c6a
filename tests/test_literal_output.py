"""Data is printed literally, in every output format: certificate subjects and fingerprints, spec names and
descriptions, the instance's error messages. Nothing in them is read as rich markup or an emoji code, and a
control character is shown as its escape (``\\x1b``), never sent raw to a terminal; JSON round-trips the exact
value, JUnit stays valid XML, Markdown keeps its table.

The fingerprint check compares ``keystore inspect`` with ``keytool -list -v`` character for character, for a
certificate whose SHA-256 holds ``:CD:`` and ``:AB:`` (rich's emoji codes for a CD and the AB blood type)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mtls_config.cli.main import main
from mtls_config.keystore import assemble_keystore
from mtls_config.literal import visible
from tests.client.servers import serve
from tests.keystore.conftest import STORE_PASSWORD, key_pem, keytool, pem, secret
from tests.pki import self_signed

# What a hostile or unlucky value holds: emoji codes, rich markup, an escape sequence (red, clear screen),
# BEL, a bare carriage return (it would overwrite the line), a bidirectional override.
HOSTILE = "A :cd: :ab: [bold]b[/bold] [/] [red]x[/red] \x1b[31mred\x1b[2J \x07bell \rcr \u202eevil Z"
SUBJECT = ":cd: :ab: [bold]b[/] [red]x[/red] \x1b[31mred \x07\rZ"  # a CN holds 64 characters at most
RAW = ("\x1b", "\x07", "\r", "\u202e")
EMOJI = ("\U0001f4bf", "\U0001f18e")  # what rich makes of :cd: and :ab:


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def assert_literal(text: str, value: str = HOSTILE) -> None:
    """``value`` appears as itself, its control characters escaped; nothing raw, no emoji."""
    assert visible(value) in text, text
    for char in (*RAW, *EMOJI):
        assert char not in text, (char, text)


# -- certificates ----------------------------------------------------------------------------------------------


def _self_signed(common_name: str, serial: int, key: Any) -> x509.Certificate:
    """Only what is given and basicConstraints: with a fixed Ed25519 key, the same certificate on every run."""
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return self_signed(
        common_name, key=key, serial=serial, not_before=start, days=36500, key_usage=None, ski=False
    ).cert


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def test_keystore_inspect_fingerprint_equals_keytools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Ed25519 signatures are deterministic: a fixed key, fixed dates and the first serial whose fingerprint holds
    # both codes give the same certificate on every run.
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    cert = next(
        c
        for serial in range(1, 5000)
        if ":CD:" in _fingerprint(c := _self_signed("fingerprint.test.example", serial, key))
        and ":AB:" in _fingerprint(c)
    )
    (tmp_path / "partner.pem").write_bytes(pem(cert))
    keytool("-importcert", "-noprompt", "-alias", "partner", "-file", "partner.pem", "-keystore", "trust.jks",
            "-storetype", "JKS", "-storepass", STORE_PASSWORD, cwd=tmp_path)  # fmt: skip
    listed = keytool("-list", "-v", "-keystore", "trust.jks", "-storepass", STORE_PASSWORD, cwd=tmp_path).stdout
    keytools = re.search(r"SHA256: ([0-9A-F:]+)", listed)
    assert keytools is not None, listed
    assert ":CD:" in keytools.group(1) and ":AB:" in keytools.group(1)

    code, out, err = run(["keystore", "inspect", str(tmp_path / "trust.jks")], capsys)
    assert code == 0, err
    ours = re.search(r"sha256: +(\S+)", out)
    assert ours is not None, out
    assert ours.group(1) == keytools.group(1)
    code, out, err = run(["cert", "inspect", str(tmp_path / "partner.pem")], capsys)
    assert code == 0, err
    assert f"sha256:   {keytools.group(1)}\n" in out
    code, out, _ = run(["cert", "inspect", str(tmp_path / "partner.pem"), "--json"], capsys)
    assert keytools.group(1) in json.dumps(json.loads(out))


@pytest.fixture
def hostile_files(tmp_path: Path) -> dict[str, Path]:
    """A self-signed client certificate whose subject is hostile, alone (PEM) and assembled into a JKS."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(SUBJECT, 7, key)
    (tmp_path / "hostile.pem").write_bytes(pem(cert))
    (tmp_path / "hostile.jks").write_bytes(assemble_keystore(key_pem(key), pem(cert), [], secret()))
    (tmp_path / "password").write_text(STORE_PASSWORD)
    return {"pem": tmp_path / "hostile.pem", "jks": tmp_path / "hostile.jks", "password": tmp_path / "password"}


def _strings(data: Any) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


@pytest.mark.parametrize(
    "command",
    [
        ["cert", "inspect", "{pem}"],
        ["keystore", "inspect", "{jks}", "--password-file", "{password}"],
        ["keystore", "lint", "{jks}", "--password-file", "{password}"],
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_a_hostile_subject_is_shown_literally(
    hostile_files: dict[str, Path], command: list[str], as_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [part.format(**{k: str(v) for k, v in hostile_files.items()}) for part in command]
    code, out, err = run([*argv, *(["--json"] if as_json else [])], capsys)
    assert code in (0, 1), err
    if as_json:
        assert any(SUBJECT in s for s in _strings(json.loads(out))), out  # the exact value, JSON-escaped
        assert not any(char in out for char in RAW)
    else:
        assert_literal(out, SUBJECT)


# -- specs: names and descriptions, in plan, apply and drift, every format ------------------------------------


@pytest.fixture
def hostile_stack(example_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example stack with a TrustStoreCert named and described with hostile text (YAML escapes)."""
    target = example_repo
    monkeypatch.setenv("NO_COLOR", "1")
    quoted = json.dumps(HOSTILE)  # a JSON string is a YAML double-quoted scalar
    spec = target / "resources" / "acme-payments.yaml"
    text = spec.read_text()
    text = text.replace("name: Acme Payments server CA", f"name: {quoted}")
    text = text.replace("description: CA that issued Acme's API server certificate", f"description: {quoted}")
    spec.write_text(text)
    return target


def _drifted(stack: Path) -> None:
    spec = stack / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace(f"description: {json.dumps(HOSTILE)}", "description: changed"))


def test_names_and_descriptions_in_text_output(hostile_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["plan"], capsys)
    assert code == 2, err
    assert_literal(out)
    code, out, err = run(["apply", "--auto-approve"], capsys)
    assert code == 0, err
    assert_literal(out)
    _drifted(hostile_stack)
    code, out, err = run(["drift"], capsys)
    assert code == 2, err
    assert_literal(out)  # the name in the address, the description in the change
    code, out, err = run(["plan", "--verbose"], capsys)
    assert_literal(out)


def test_names_and_descriptions_in_json(hostile_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "--format", "json"], capsys)
    assert code == 2
    assert any(HOSTILE in s for s in _strings(json.loads(out)))
    run(["apply", "--auto-approve"], capsys)
    _drifted(hostile_stack)
    code, out, _ = run(["drift", "--format", "json"], capsys)
    assert code == 2
    assert any(HOSTILE in s for s in _strings(json.loads(out)))


def test_names_and_descriptions_in_markdown(hostile_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "--format", "markdown"], capsys)
    assert code == 2
    for char in RAW:
        assert char not in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "[bold]" in line]
    assert rows, out
    for row in rows:
        # a pipe in data is escaped, so the row keeps its four cells; the data sits in a code span, whole
        assert len(re.split(r"(?<!\\)\|", row)) == 6, row
        assert visible(HOSTILE) in row.replace("\\|", "|")
    run(["apply", "--auto-approve"], capsys)
    _drifted(hostile_stack)
    code, out, _ = run(["drift", "--format", "markdown"], capsys)
    assert code == 2
    assert visible(HOSTILE) in out
    for char in RAW:
        assert char not in out


def test_names_and_descriptions_in_junit(hostile_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["apply", "--auto-approve"], capsys)
    _drifted(hostile_stack)
    code, out, _ = run(["drift", "--format", "junit"], capsys)
    assert code == 2
    root = ET.fromstring(out)  # valid XML 1.0: no raw control characters
    names = [case.get("name", "") for case in root.iter("testcase")]
    assert f"TrustStoreCert/{visible(HOSTILE)}" in names
    failure = next(case for case in root.iter("testcase") if HOSTILE[:5] in case.get("name", "")).find("failure")
    # a field value is shown as a JSON literal, as in the plan: quoted, its controls JSON-escaped
    assert failure is not None and visible(json.dumps(HOSTILE, ensure_ascii=False)) in (failure.text or "")


def test_a_hostile_name_in_a_spec_error_is_shown_literally(
    hostile_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = hostile_stack / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("keyStore: Acme Payments client", f"keyStore: {json.dumps(HOSTILE)}"))
    code, _, err = run(["validate"], capsys)
    assert code == 1
    assert_literal(err)


# -- the instance's own words ----------------------------------------------------------------------------------


class Refusing:
    """An 'instance' that answers every request with a 403 whose error message and detail are hostile."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = json.dumps({"error": {"message": HOSTILE, "detail": HOSTILE}, "status": "failure"}).encode()
        await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize("command", [["plan"], ["drift"], ["apply", "--auto-approve"], ["lock", "status"]])
def test_an_instance_error_message_is_shown_literally(
    hostile_stack: Path, command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SN_USERNAME", "admin")
    monkeypatch.setenv("SN_PASSWORD", "admin")
    with serve(Refusing()) as url:
        code, out, err = run([*command, "--instance", url], capsys)
    assert code == 1
    assert_literal(out + err)


def test_an_instance_error_in_drift_junit_and_markdown_is_literal(
    hostile_stack: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SN_USERNAME", "admin")
    monkeypatch.setenv("SN_PASSWORD", "admin")
    with serve(Refusing()) as url:
        for fmt in ("junit", "markdown", "json"):
            code, out, err = run(["drift", "--format", fmt, "--instance", url], capsys)
            assert code == 1
            for char in (*RAW, *EMOJI):
                assert char not in out + err, fmt
            if fmt == "junit" and out.strip():
                ET.fromstring(out)


def test_the_console_reads_no_markup_and_no_emoji(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.text import Text

    from mtls_config.cli.console import fail, stderr, stdout

    stdout().print(HOSTILE)
    # rich's Text drops BEL and CR as it is built, so data is escaped before it becomes Text (render.py does)
    stdout().print(Text("label: ", style="bold").append(visible(HOSTILE), style="cyan"))
    stdout().print(Text("raw: ", style="bold").append("\x1b[2J\u202e", style="cyan"))
    fail(HOSTILE, hint=HOSTILE)
    out, err = capsys.readouterr()
    assert_literal(out.splitlines()[0] + "\n")
    assert_literal(err)
    assert "label: " + visible(HOSTILE) in out
    assert "raw: \\x1b[2J\\u202e" in out  # what rich keeps in a Text, the console still escapes
    stderr().print("[bold]not bold[/bold] :cd:")
    assert capsys.readouterr().err == "[bold]not bold[/bold] :cd:\n"
