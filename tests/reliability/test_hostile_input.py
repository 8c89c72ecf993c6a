"""Hostile and malformed input: property-based tests over the spec loader and the keystore parsers. Whatever
the bytes, the answer is a result or a clear ``MtlsConfigError``: never another exception, never a hang
(each example is timed), and through the CLI never a traceback.

Examples are bounded (CI: a few hundred per property; ``MTLS_CONFIG_FULL=1``: ten times more) so the suite
stays fast; the figure ``inputs_tried`` counts them.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtls_config.cli.main import main
from mtls_config.errors import MtlsConfigError, SpecError
from mtls_config.keystore import load_certificates, load_key_entry, load_private_key, read_keystore
from mtls_config.secrets import SecretValue
from mtls_config.spec.loader import load_specs
from tests.reliability.harness import FULL, count

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners"
JKS = (EXAMPLE / "keystores" / "globex-client.jks").read_bytes()
PASSWORD = SecretValue((EXAMPLE / "demo-secrets" / "keystore-password.txt").read_text().strip().encode(), "test")
CERT_PEM = (EXAMPLE / "certs" / "acme-server-ca.pem").read_bytes()
CERT_DER = (EXAMPLE / "certs" / "globex-server.der").read_bytes()
KEY_PEM = (EXAMPLE / "demo-secrets" / "acme-client-key.pem").read_bytes()


def _pkcs12() -> bytes:
    material = load_key_entry(JKS, PASSWORD)
    return pkcs12.serialize_key_and_certificates(
        b"client",
        material.private_key,  # type: ignore[arg-type]
        material.chain[0],
        list(material.chain[1:]),
        serialization.BestAvailableEncryption(PASSWORD.reveal()),
    )


P12 = _pkcs12()
EXAMPLES = 2000 if FULL else 150
SLOW = 10.0  # seconds: any single input taking longer counts as a hang
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=not FULL
)


def survives(call: Callable[[], Any]) -> Any:
    """Run ``call``: a value or an ``MtlsConfigError`` is fine; anything else (or taking too long) fails."""
    count("inputs_tried")
    started = time.monotonic()
    try:
        return call()
    except MtlsConfigError as exc:
        assert str(exc).strip(), "an error without a message"
        return exc
    finally:
        assert time.monotonic() - started < SLOW, "took too long (a hang?)"


# -- keystore parsers -------------------------------------------------------------------------------------


def _damaged(original: bytes) -> st.SearchStrategy[bytes]:
    """Truncations, bit flips, spliced junk and random bytes after the real magic."""
    n = len(original)
    truncated = st.integers(0, n - 1).map(lambda i: original[:i])
    flipped = st.tuples(st.integers(0, n - 1), st.integers(1, 255)).map(
        lambda t: original[: t[0]] + bytes([original[t[0]] ^ t[1]]) + original[t[0] + 1 :]
    )
    spliced = st.tuples(st.integers(0, n), st.binary(max_size=64)).map(
        lambda t: original[: t[0]] + t[1] + original[t[0] :]
    )
    magic = st.binary(max_size=512).map(lambda b: original[:4] + b)
    return st.one_of(truncated, flipped, spliced, magic)


@SETTINGS
@given(st.one_of(st.binary(max_size=2048), _damaged(JKS), _damaged(P12)))
def test_keystore_reader_never_crashes(data: bytes) -> None:
    survives(lambda: read_keystore(data, PASSWORD))
    survives(lambda: read_keystore(data, None))


@SETTINGS
@given(st.one_of(_damaged(JKS), _damaged(P12)))
def test_key_entry_loader_never_crashes(data: bytes) -> None:
    survives(lambda: load_key_entry(data, PASSWORD))


@SETTINGS
@given(st.one_of(st.binary(max_size=1024), _damaged(CERT_PEM), _damaged(CERT_DER), _damaged(CERT_PEM + CERT_PEM)))
def test_certificate_loader_never_crashes(data: bytes) -> None:
    result = survives(lambda: load_certificates(data))
    if isinstance(result, list):
        assert all(isinstance(c, x509.Certificate) for c in result)


@SETTINGS
@given(st.one_of(st.binary(max_size=1024), _damaged(KEY_PEM)))
def test_private_key_loader_never_crashes(data: bytes) -> None:
    survives(lambda: load_private_key(data))
    survives(lambda: load_private_key(data, PASSWORD))


# -- spec loader --------------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=40,
)
KINDS = ("KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding", "Nope", "")
documents = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["mtls-config/v1", "v2", ""]),
        "kind": st.sampled_from(KINDS),
        "metadata": st.one_of(st.fixed_dictionaries({"name": st.text(max_size=20)}), values),
        "spec": values,
    }
)


class SpecRepo:
    """A throw-away spec repository per example (hypothesis and function-scoped tmp_path do not mix)."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="mtls-hostile-")
        self.root = Path(self.tmp.name)
        (self.root / ".git").mkdir()
        (self.root / "specs").mkdir()

    def load(self, name: str, content: bytes) -> Any:
        path = self.root / "specs" / name
        path.write_bytes(content)
        return survives(lambda: load_specs([self.root / "specs"], root=self.root))

    def __enter__(self) -> SpecRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.tmp.cleanup()


@SETTINGS
@given(st.binary(max_size=4096))
def test_spec_loader_survives_random_bytes(data: bytes) -> None:
    with SpecRepo() as repo:
        repo.load("x.yaml", data)


@SETTINGS
@given(st.lists(documents, min_size=1, max_size=4), st.integers(0, 10_000))
def test_spec_loader_survives_random_and_truncated_documents(docs: list[dict[str, Any]], cut: int) -> None:
    text = yaml.safe_dump_all(docs, sort_keys=False).encode()
    with SpecRepo() as repo:
        repo.load("whole.yaml", text)
        repo.load("whole.yaml", text[: cut % (len(text) + 1)])


@SETTINGS
@given(
    st.lists(st.sampled_from(["..", ".", "specs", "a", "..%2f", "/etc", "~", "\\..", "nul\x00", "../.."]), max_size=8)
)
def test_file_references_never_leave_the_repository(parts: list[str]) -> None:
    reference = "/".join(parts) or "."
    with SpecRepo() as repo:
        secret_outside = Path(repo.tmp.name).parent / f"outside-{os.getpid()}.txt"
        doc = {
            "apiVersion": "mtls-config/v1",
            "kind": "TrustStoreCert",
            "metadata": {"name": "t"},
            "spec": {"format": "der", "file": reference},
        }
        result = repo.load("t.yaml", yaml.safe_dump(doc).encode())
        if not isinstance(result, MtlsConfigError):
            # Accepted: then it must name a file inside the repository.
            for resource in result.resources:
                target = (repo.root / "specs" / resource.spec.file).resolve()
                assert target.is_relative_to(repo.root.resolve()), reference
        assert not secret_outside.exists()


def _cert_doc(file: str) -> bytes:
    doc = {"apiVersion": "mtls-config/v1", "kind": "TrustStoreCert", "metadata": {"name": "t"}}
    doc["spec"] = {"format": "der", "file": file}
    return yaml.safe_dump(doc).encode()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("deep-flow", b"a: " + b"[" * 5000 + b"]" * 5000, "nested more than"),
        ("deep-block", b"".join(b"  " * i + b"k:\n" for i in range(200)) + b"  " * 200 + b"v\n", "nested more than"),
        (
            "alias-bomb",
            b'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n".encode() for i in range(8)
            ),
            "aliases",
        ),
        ("huge", b"a: " + b"x" * (1024 * 1024 + 10), "at most"),
        ("nul", b"kind: KeyStore\x00\n", "binary"),
        ("latin1", b"kind: K\xe9yStore\n", "UTF-8"),
        ("traversal", _cert_doc("../../../../etc/passwd"), "outside the spec repository"),
        ("absolute", _cert_doc("/etc/passwd"), "absolute path"),
        ("tag", b"!!python/object/apply:os.system ['echo pwned']\n", ""),
    ],
)
def test_known_hostile_spec_files_get_a_clear_error(name: str, content: bytes, expected: str) -> None:
    with SpecRepo() as repo:
        result = repo.load(f"{name}.yaml", content)
        assert isinstance(result, SpecError), result
        assert expected in str(result), str(result)


def test_a_symlink_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    with SpecRepo() as repo:
        outside = tmp_path / "server.der"
        outside.write_bytes(CERT_DER)
        (repo.root / "specs" / "server.der").symlink_to(outside)
        result = repo.load("t.yaml", _cert_doc("server.der"))
        assert isinstance(result, SpecError) and "symbolic link" in str(result), result
        (repo.root / "specs" / "loop").symlink_to(repo.root / "specs" / "loop")
        result = repo.load("t.yaml", _cert_doc("loop"))
        assert isinstance(result, SpecError), result


@pytest.mark.parametrize(
    "content",
    [b"a: " + b"[" * 5000, b"\xff\xfe\x00garbage", b"*unknown_alias\n", b"kind: [\n", b"- - - - -\n" * 100],
)
def test_validate_on_hostile_files_exits_1_without_a_traceback(
    content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "bad.yaml").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    count("inputs_tried")
    assert main(["validate", "bad.yaml"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "bad.yaml" in err


def test_a_certificate_with_an_invalid_version_is_a_keystore_error() -> None:
    """Regression: cryptography's InvalidVersion is not a ValueError and escaped as a traceback."""
    marker = CERT_DER.index(b"\xa0\x03\x02\x01\x02")  # [0] EXPLICIT INTEGER 2 (v3)
    damaged = CERT_DER[: marker + 4] + b"\x03" + CERT_DER[marker + 5 :]
    with pytest.raises(MtlsConfigError, match="not a certificate"):
        load_certificates(damaged)
    pem_damaged = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(damaged) + b"-----END CERTIFICATE-----\n"
    with pytest.raises(MtlsConfigError, match="cannot parse"):
        load_certificates(pem_damaged)


def test_a_pkcs12_with_trailing_bytes_is_read_without_library_warnings() -> None:
    """Regression: cryptography's BER-fallback UserWarning escaped (an exception where warnings are errors)."""
    contents = read_keystore(P12 + b"\x00", PASSWORD)
    assert contents.store_type == "pkcs12" and contents.private_key_entries


def test_a_jks_whose_encrypted_key_is_damaged_is_a_keystore_error() -> None:
    """Regression: pyjks decodes the decrypted key with pyasn1, whose errors escaped as tracebacks."""
    escaped = []
    for offset in range(2300, 2400):  # the encrypted private key entry of this store
        for flip in (0x80, 0x81, 0x83):
            data = JKS[:offset] + bytes([JKS[offset] ^ flip]) + JKS[offset + 1 :]
            try:
                load_key_entry(data, PASSWORD)
            except MtlsConfigError:
                pass
            except Exception as exc:  # the failure this test is about
                escaped.append((offset, flip, type(exc).__name__))
    count("inputs_tried", 100 * 3)
    assert not escaped, escaped[:5]
