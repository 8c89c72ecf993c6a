"""Secret references (``fromEnv`` / ``fromFile``) and resolved secrets, which never show their value."""

from __future__ import annotations

import logging
import pickle
import traceback
from pathlib import Path

import pytest
from pydantic import ValidationError

from mtls_config.errors import SecretError, UnreadableFile
from mtls_config.secrets import MAX_SECRET_FILE_BYTES, SecretRef, SecretValue

CANARY = "canary-7Qx!-s3cret"


def test_from_env_reads_the_variable_at_resolve_time() -> None:
    ref = SecretRef.model_validate({"fromEnv": "KEYSTORE_PASSWORD"})
    value = ref.resolve(environ={"KEYSTORE_PASSWORD": CANARY})
    assert value.reveal() == CANARY.encode()
    assert value.reveal_text() == CANARY
    assert value.source == "env:KEYSTORE_PASSWORD"


def test_from_env_uses_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTLS_TEST_SECRET", CANARY)
    assert SecretRef(fromEnv="MTLS_TEST_SECRET").resolve().reveal_text() == CANARY


def test_from_env_keeps_whitespace_of_the_value() -> None:
    assert SecretRef(fromEnv="P").resolve(environ={"P": " pw \n"}).reveal() == b" pw \n"


def test_unset_variable_is_an_error_with_a_hint() -> None:
    with pytest.raises(SecretError) as caught:
        SecretRef(fromEnv="NOT_SET_ANYWHERE").resolve(environ={})
    assert caught.value.message == "environment variable NOT_SET_ANYWHERE is not set"
    assert caught.value.hint is not None
    assert "export NOT_SET_ANYWHERE" in caught.value.hint


def test_empty_variable_is_an_error() -> None:
    with pytest.raises(SecretError, match="environment variable EMPTY is empty"):
        SecretRef(fromEnv="EMPTY").resolve(environ={"EMPTY": ""})


def test_from_file_is_relative_to_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw.txt").write_text(CANARY)
    value = SecretRef(fromFile="secrets/pw.txt").resolve(base_dir=tmp_path)
    assert value.reveal_text() == CANARY
    assert value.source == "file:secrets/pw.txt"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"pw\n", b"pw"),
        (b"pw\r\n", b"pw"),
        (b"pw\n\n", b"pw\n"),  # only one trailing newline goes: the rest is the value
        (b"pw", b"pw"),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----",
        ),
    ],
)
def test_from_file_drops_one_trailing_newline(tmp_path: Path, content: bytes, expected: bytes) -> None:
    (tmp_path / "s").write_bytes(content)
    assert SecretRef(fromFile="s").resolve(base_dir=tmp_path).reveal() == expected


def test_from_file_absolute_path(tmp_path: Path) -> None:
    (tmp_path / "s").write_text("pw\n")
    assert SecretRef(fromFile=str(tmp_path / "s")).resolve(base_dir=Path("/nonexistent")).reveal() == b"pw"


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_empty_secret_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "s").write_bytes(content)
    with pytest.raises(SecretError, match="secret file s is empty"):
        SecretRef(fromFile="s").resolve(base_dir=tmp_path)


def test_missing_secret_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as caught:
        SecretRef(fromFile="nope.txt").resolve(base_dir=tmp_path)
    assert caught.value.message == "cannot read secret file nope.txt: No such file or directory"


def test_a_folder_is_not_a_secret_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(UnreadableFile) as caught:
        SecretRef(fromFile="d").resolve(base_dir=tmp_path)
    assert caught.value.message == "secret file d is a folder, not a regular file"


def test_oversized_secret_file_is_refused_unread(tmp_path: Path) -> None:
    with (tmp_path / "big").open("wb") as out:
        out.truncate(MAX_SECRET_FILE_BYTES + 1)
    with pytest.raises(UnreadableFile) as caught:
        SecretRef(fromFile="big").resolve(base_dir=tmp_path)
    assert caught.value.message == (
        f"secret file big is {MAX_SECRET_FILE_BYTES + 1} bytes; "
        f"a secret file may be at most {MAX_SECRET_FILE_BYTES} bytes (64 KiB)"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (CANARY, "a literal secret is not allowed in a spec"),
        (12345, "a literal secret is not allowed in a spec"),
        ({}, "a secret reference needs {fromEnv: VARIABLE} or {fromFile: path}"),
        ({"fromEnv": "A", "fromFile": "b"}, "give either fromEnv or fromFile, not both"),
        ({"fromEnv": "1BAD"}, "String should match pattern"),
        ({"fromFile": ""}, "String should have at least 1 character"),
        ({"fromVault": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_references(data: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SecretRef.model_validate(data)
    assert message in str(caught.value)
    assert CANARY not in str(caught.value.errors(include_input=False))


def test_describe_names_the_reference_not_the_value() -> None:
    assert SecretRef(fromEnv="A").describe() == "env:A"
    assert SecretRef(fromFile="x/y.txt").describe() == "file:x/y.txt"


# --- SecretValue hides itself ------------------------------------------------------------------------------


def secret() -> SecretValue:
    return SecretValue(CANARY.encode(), "env:KEYSTORE_PASSWORD")


def test_value_is_hidden_from_str_repr_and_formatting() -> None:
    value = secret()
    shown = [
        str(value),
        repr(value),
        f"{value}",
        f"{value!r}",
        f"{value!s}",
        f"{value:>40}",
        "%s" % value,  # noqa: UP031 - old-style formatting is what some loggers use
        "%r" % (value,),  # noqa: UP031
        "{}".format(value),  # noqa: UP032
        str([value]),
        str({"password": value}),
        repr((value,)),
    ]
    for text in shown:
        assert CANARY not in text
    assert repr(value) == "SecretValue(<hidden from env:KEYSTORE_PASSWORD>)"


def test_value_is_hidden_from_exceptions_and_tracebacks() -> None:
    value = secret()
    try:
        raise SecretError(f"cannot use {value}")
    except SecretError as exc:
        assert CANARY not in str(exc)
        assert CANARY not in repr(exc)
        assert CANARY not in "".join(traceback.format_exception(exc))
    try:
        raise ValueError(value)
    except ValueError as exc:
        assert CANARY not in "".join(traceback.format_exception(exc))


def test_value_is_hidden_from_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("mtls_config.test").debug("password is %s / %r", secret(), secret())
    assert "hidden from env:KEYSTORE_PASSWORD" in caplog.text
    assert CANARY not in caplog.text


def test_value_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret())


def test_equality_and_hash_follow_the_value_not_the_source() -> None:
    a = SecretValue(b"same", "env:A")
    b = SecretValue(b"same", "file:b")
    assert a == b
    assert hash(a) == hash(b)
    assert a != SecretValue(b"other", "env:A")
    assert a != "same"
    assert a != b"same"


def test_salted_digest_shows_change_without_the_value() -> None:
    value = secret()
    digest = value.salted_digest("stack-salt")
    assert digest.startswith("hmac-sha256:")
    assert CANARY not in digest
    assert digest == secret().salted_digest("stack-salt")
    assert digest != value.salted_digest("other-salt")
    assert digest != SecretValue(b"other", "env:X").salted_digest("stack-salt")


def test_from_env_holding_bytes_that_are_not_utf8() -> None:
    """On POSIX a variable may hold any bytes; Python hands undecodable ones over as surrogate escapes. The
    secret is those bytes (as a fromFile secret would be), not a UnicodeEncodeError traceback."""
    value = SecretRef(from_env="LATIN1_PW").resolve(environ={"LATIN1_PW": "caf\udce9-canary"})
    assert value.reveal() == b"caf\xe9-canary"
