"""The registry of the run's secrets: what it masks and what it leaves alone."""

from __future__ import annotations

import base64
import json
import urllib.parse

from mtls_config.client.failures import describe
from mtls_config.errors import InstanceError, Problem, SpecError
from mtls_config.redaction import MASK, REVEALED, SecretRegistry, redact
from mtls_config.secrets import SecretValue
from tests.reliability.harness import decoded_views

SECRET = 'Pa55-"w0rd\\ü-3e9c1a'


def test_a_secret_value_is_masked_in_the_forms_a_request_and_an_echo_give_it() -> None:
    SecretValue(SECRET.encode(), "env:KS")
    body = json.dumps({"key_store_password": SECRET}).encode()  # as the client sends it (escaped, ASCII)
    batch_item = base64.b64encode(b"{" + body).decode()  # inside a batch item, at some alignment
    shown = [
        SECRET,
        body.decode(),
        json.dumps(body.decode()),
        urllib.parse.quote(body, safe=""),
        urllib.parse.quote_plus(SECRET),
        base64.b64encode(b"xy" + body + b"z").decode(),
        batch_item,
        json.dumps({"rest_requests": [{"body": batch_item}]}),
        body.hex(),
    ]
    for text in shown:
        assert SECRET in "".join(decoded_views(text)), text  # the search would find it unmasked
        masked = redact(f"echo: {text} (end)")
        assert MASK in masked and SECRET not in "".join(decoded_views(masked)), (text, masked)


def test_errors_are_masked_when_made_and_messages_before_they_are_cut() -> None:
    SecretValue(SECRET.encode(), "env:KS")
    error = InstanceError(f"PATCH failed: {SECRET}", hint=f"the instance said {SECRET}")
    assert SECRET not in str(error) + repr(error) + repr(error.args) and MASK in str(error)
    spec = SpecError([Problem("a.yaml", 1, 1, "KeyStore/x", "spec.password", f"echo {SECRET}")])
    assert SECRET not in str(spec) and SECRET not in str(spec.problems[0])
    # Cut at 500 characters after masking: a secret straddling the cut is not left half-shown.
    long = "x" * 490 + SECRET
    assert "Pa55" not in describe(long, "")


def test_a_pem_key_is_masked_line_by_line() -> None:
    lines = [base64.b64encode(bytes([i]) * 48).decode() for i in range(3)]
    pem = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END PRIVATE KEY-----\n"
    SecretValue(pem.encode(), "file:key.pem")
    assert lines[1] not in redact(f"echo of a truncated body: ...{lines[1]}...")


def test_short_and_published_values_are_not_masked() -> None:
    registry = SecretRegistry()
    registry.add("abc")  # three characters: masking them would garble every message
    assert registry.redact("abc") == "abc"
    before = len(REVEALED)
    SecretValue(b"admin", "local instance default", published=True)
    assert len(REVEALED) == before
    assert redact("the user needs the admin role") == "the user needs the admin role"


def test_many_secrets_are_each_masked_and_other_text_is_left_alone() -> None:
    """A stack of a thousand keystores, each with its own password: every one is masked, in clear and base64,
    where it stands, and the text around them is kept."""
    registry = SecretRegistry()
    passwords = [f"keystore-password-{i:04d}-x9" for i in range(1000)]
    for password in passwords:
        registry.add(password)
    text = " | ".join(f"{i}: {p} / {base64.b64encode(p.encode()).decode()}" for i, p in enumerate(passwords[::97]))
    masked = registry.redact(text)
    assert not any(p in masked for p in passwords)
    assert masked.count(MASK) == 2 * len(passwords[::97])
    # base64: the groups made of the password's bytes alone; the last, partial one (1-2 bytes) may stay
    assert masked.startswith("0: ******** / ********") and " | 1: ******** / " in masked
    assert registry.redact("nothing to mask: keystore-password-1234") == "nothing to mask: keystore-password-1234"
