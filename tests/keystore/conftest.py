"""Shared material for the keystore tests: a session CA (root -> issuing CA, made with ``tests.pki``), cached client
keys, and the keytool procedure of the knowledge-base article run once per session.

Everything is made at test time in temporary folders; nothing here is a fixture file in git.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from mtls_config.keystore import JksPrivateKeyEntry, JksTrustedCertEntry, encode_jks
from mtls_config.secrets import SecretValue
from tests.pki import CA, KeyType, dn, new_key, pem
from tests.pki import private_key_pem as key_pem

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
YESTERDAY = NOW - dt.timedelta(days=1)
CLIENT_AUTH = (ExtendedKeyUsageOID.CLIENT_AUTH,)
STORE_PASSWORD = "store-pass-4471"  # test material only
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM


# A KeyStore spec document: format with name= and body= (the spec's file or build lines, indented two spaces).
KEYSTORE_DOC = """apiVersion: mtls-config/v1
kind: KeyStore
metadata: {{name: {name}}}
spec:
  format: jks
{body}
  password: {{fromEnv: SPEC_KS_PASSWORD}}
---
"""


def name(cn: str) -> x509.Name:
    return dn(cn, organization="Keystore Tests")


def pkcs8(key: Any) -> bytes:
    return key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def secret(text: str = STORE_PASSWORD) -> SecretValue:
    return SecretValue(text.encode(), "test")


def client_certificate(
    *, days: int = 365, start: dt.datetime | None = None, eku: Sequence[x509.ObjectIdentifier] | None = CLIENT_AUTH
) -> dict[str, Any]:
    """The options of the keystore tests' client certificates: a clientAuth EKU (``eku=None``: none), valid from
    a day before the session's NOW for ``days`` days."""
    return {"eku": eku or (), "not_before": start or YESTERDAY, "days": days}


@dataclass
class Pki:
    """A root CA and an issuing CA under it, both RSA 2048 (tests read the RSA signature OID of what the issuing
    CA signs) with an AKI even on the root, and cached client keys."""

    root_ca: CA
    issuing_ca: CA
    keys: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> x509.Certificate:
        return self.root_ca.cert

    @property
    def root_key(self) -> Any:
        return self.root_ca.key

    @property
    def ica(self) -> x509.Certificate:
        return self.issuing_ca.cert

    @property
    def ica_key(self) -> Any:
        return self.issuing_ca.key

    def key(self, kind: str) -> Any:
        if kind not in self.keys:
            key_types: dict[str, KeyType] = {"rsa": "rsa2048", "rsa1024": "rsa1024"}
            if kind not in key_types and not kind.startswith("ec"):
                raise ValueError(kind)
            self.keys[kind] = new_key(key_types.get(kind, "ec-p256"))
        return self.keys[kind]

    def leaf(self, key: Any, cn: str = "client.test.example", **kwargs: Any) -> x509.Certificate:
        """A client certificate for ``key`` from the issuing CA (options: see ``client_certificate``)."""
        return self.issuing_ca.sign(name(cn), key.public_key(), **client_certificate(**kwargs))

    def sign_csr(self, csr_pem: bytes, **kwargs: Any) -> x509.Certificate:
        return self.issuing_ca.sign_csr(csr_pem, **client_certificate(**kwargs))


@pytest.fixture(scope="session")
def pki() -> Pki:
    root = CA.root(name("Test Root CA"), key_type="rsa2048", aki=True, not_before=YESTERDAY, days=3650)
    issuing = root.child_ca(name("Test Issuing CA"), key_type="rsa2048", not_before=YESTERDAY, days=1825)
    return Pki(root, issuing)


def raw_store(pki: Pki, *, chain: list[Any] | None = None, key: Any = None, alias: str = "client",
              trusted: bool = True, chain_bytes: list[bytes] | None = None, password: str = STORE_PASSWORD) -> bytes:  # fmt: skip
    """A JKS written byte by byte, for mistakes keytool itself will not make."""
    key = key if key is not None else pki.key("ec")
    leaf = pki.leaf(pki.key("ec"))
    certs = chain if chain is not None else [leaf, pki.ica, pki.root]
    ders = chain_bytes if chain_bytes is not None else [c.public_bytes(DER) for c in certs]
    entries: list[Any] = [JksPrivateKeyEntry(alias, 0, pkcs8(key), tuple(ders))]
    if trusted:
        entries += [JksTrustedCertEntry("issuing", 0, pki.ica.public_bytes(DER)),
                    JksTrustedCertEntry("root", 0, pki.root.public_bytes(DER))]  # fmt: skip
    return encode_jks(entries, secret(password))


# Each keytool call starts a JVM; a client JIT and the serial GC halve the start-up on a small CI runner.
FAST_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto")


def keytool_path() -> str:
    path = shutil.which("keytool")
    if path is None:
        pytest.skip("keytool (a JDK) is not installed")
    return path


def keytool(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [keytool_path(), *FAST_JVM, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"keytool {' '.join(args[:2])} failed: {result.stdout}{result.stderr}")
    return result


def store_args(store: str, password: str = STORE_PASSWORD) -> list[str]:
    return ["-keystore", store, "-storepass", password]


@dataclass
class KeytoolRun:
    """The knowledge-base procedure done with keytool for one key algorithm, plus its classic mistakes."""

    folder: Path
    algorithm: str
    good: Path  # genkeypair -storetype JKS, certreq, CA reply imported after -trustcacerts root and issuing CA
    reply: x509.Certificate
    reply_under_new_alias: Path | None = None  # K07: the CA reply imported under another alias
    default_storetype: Path | None = None  # K01: genkeypair without -storetype (keytool 9+: PKCS12)
    separate_key_password: Path | None = None  # K04: -keypass differs from -storepass
    two_keys: Path | None = None  # K03: a second genkeypair in the same store
    # K15: the reply imported with its chain (reply + issuing CA + root) into a store without the CAs as trusted
    # entries; keytool warns "Top-level certificate in reply ... is not trusted" and, with -noprompt, installs it
    chain_reply_only: Path | None = None
    # K15 holds: the root alone imported with -trustcacerts, then the reply with its chain (the CA in the middle
    # is in the key entry's chain only)
    root_then_chain_reply: Path | None = None


def _procedure(folder: Path, algorithm: str, pki: Pki, mistakes: frozenset[str]) -> KeytoolRun:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "root.pem").write_bytes(pem(pki.root))
    (folder / "ica.pem").write_bytes(pem(pki.ica))
    alg = ["-keyalg", "RSA", "-keysize", "2048"] if algorithm == "RSA" else ["-keyalg", "EC", "-groupname", "secp256r1"]
    dname = f"CN=instance-{algorithm.lower()}.test.example,O=Keystore Tests"
    keytool("-genkeypair", "-storetype", "JKS", *store_args("client.jks"), "-keypass", STORE_PASSWORD,
            "-alias", "client", *alg, "-dname", dname, "-validity", "365", cwd=folder)  # fmt: skip
    keytool("-certreq", "-alias", "client", *store_args("client.jks"), "-file", "client.csr", cwd=folder)
    reply = pki.sign_csr((folder / "client.csr").read_bytes())
    (folder / "reply.pem").write_bytes(pem(reply))
    (folder / "reply-chain.pem").write_bytes(pem(reply, pki.ica, pki.root))
    if "K15" in mistakes:
        shutil.copy(folder / "client.jks", folder / "chain-reply-only.jks")
        shutil.copy(folder / "client.jks", folder / "root-then-chain.jks")
    for alias, file in (("rootca", "root.pem"), ("issuingca", "ica.pem")):
        keytool("-importcert", "-trustcacerts", "-noprompt", "-alias", alias, "-file", file,
                *store_args("client.jks"), cwd=folder)  # fmt: skip
    if "K07" in mistakes:
        shutil.copy(folder / "client.jks", folder / "reply-new-alias.jks")
    keytool("-importcert", "-trustcacerts", "-noprompt", "-alias", "client", "-file", "reply.pem",
            *store_args("client.jks"), cwd=folder)  # fmt: skip
    run = KeytoolRun(folder, algorithm, folder / "client.jks", reply)
    if "K15" in mistakes:
        keytool("-importcert", "-noprompt", "-alias", "client", "-file", "reply-chain.pem",
                *store_args("chain-reply-only.jks"), cwd=folder)  # fmt: skip
        run.chain_reply_only = folder / "chain-reply-only.jks"
        keytool("-importcert", "-trustcacerts", "-noprompt", "-alias", "rootca", "-file", "root.pem",
                *store_args("root-then-chain.jks"), cwd=folder)  # fmt: skip
        keytool("-importcert", "-trustcacerts", "-noprompt", "-alias", "client", "-file", "reply-chain.pem",
                *store_args("root-then-chain.jks"), cwd=folder)  # fmt: skip
        run.root_then_chain_reply = folder / "root-then-chain.jks"
    if "K07" in mistakes:
        keytool("-importcert", "-trustcacerts", "-noprompt", "-alias", "signed", "-file", "reply.pem",
                *store_args("reply-new-alias.jks"), cwd=folder)  # fmt: skip
        run.reply_under_new_alias = folder / "reply-new-alias.jks"
    if "K01" in mistakes:
        keytool("-genkeypair", *store_args("default.jks"), "-keypass", STORE_PASSWORD, "-alias", "client", *alg,
                "-dname", dname, "-validity", "365", cwd=folder)  # fmt: skip
        run.default_storetype = folder / "default.jks"
    if "K04" in mistakes:
        keytool("-genkeypair", "-storetype", "JKS", *store_args("keypass.jks"), "-keypass", "other-key-pass",
                "-alias", "client", *alg, "-dname", dname, "-validity", "365", cwd=folder)  # fmt: skip
        run.separate_key_password = folder / "keypass.jks"
    if "K03" in mistakes:
        shutil.copy(folder / "client.jks", folder / "two-keys.jks")
        keytool("-genkeypair", *store_args("two-keys.jks"), "-keypass", STORE_PASSWORD, "-alias", "second", *alg,
                "-dname", "CN=second", "-validity", "365", cwd=folder)  # fmt: skip
        run.two_keys = folder / "two-keys.jks"
    return run


@pytest.fixture(scope="session")
def keytool_runs(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> dict[str, KeytoolRun]:
    """The procedure for RSA and EC, run concurrently (each keytool call starts a JVM)."""
    keytool_path()
    base = tmp_path_factory.mktemp("keytool")
    with ThreadPoolExecutor(max_workers=2) as pool:
        # The classic mistakes are spread over both runs so that the two threads take about as long.
        rsa_run = pool.submit(_procedure, base / "rsa", "RSA", pki, frozenset({"K07", "K01"}))
        ec_run = pool.submit(_procedure, base / "ec", "EC", pki, frozenset({"K04", "K03", "K15"}))
        return {"RSA": rsa_run.result(), "EC": ec_run.result()}


@pytest.fixture(scope="session")
def assembled(pki: Pki) -> Callable[..., bytes]:
    """Assemble a good keystore for a cached key kind ('rsa' or 'ec')."""
    from mtls_config.keystore import assemble_keystore

    cache: dict[tuple[str, str], bytes] = {}

    def make(kind: str = "ec", fmt: str = "jks") -> bytes:
        if (kind, fmt) not in cache:
            key = pki.key(kind)
            leaf = pki.leaf(key, cn=f"assembled-{kind}.test.example")
            cache[(kind, fmt)] = assemble_keystore(
                key_pem(key),
                pem(leaf),
                [pem(pki.root), pem(pki.ica)],
                secret(),
                fmt=fmt,  # type: ignore[arg-type]
            )
        return cache[(kind, fmt)]

    return make


@dataclass(frozen=True)
class NonPositiveSerials:
    """Certificates whose serial number RFC 5280 forbids (some old and private CAs issued them), made with openssl:
    cryptography's builder refuses a serial that is not positive."""

    negative: Path  # a self-signed CA certificate, serial -5, PEM
    zero: Path  # a self-signed CA certificate, serial 0, PEM
    leaf: Path  # a client certificate issued by the session's issuing CA, serial -7, PEM
    leaf_key: Any


def openssl_path() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed")
    return path


@pytest.fixture(scope="session")
def non_positive_serials(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> NonPositiveSerials:
    openssl = openssl_path()
    folder = tmp_path_factory.mktemp("serials")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True, timeout=60)

    for label, serial in (("negative", "-5"), ("zero", "0")):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"{label}.key", "-out", f"{label}.pem", "-days", "365", "-subj", f"/O=Keystore Tests/CN=Old CA {label}",
            "-set_serial", serial)  # fmt: skip
    leaf_key = new_key("ec-p256")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name("negative.test.example"))
        .sign(leaf_key, hashes.SHA256())
    )
    (folder / "leaf.csr").write_bytes(csr.public_bytes(PEM))
    (folder / "ica.pem").write_bytes(pem(pki.ica))
    (folder / "ica.key").write_bytes(key_pem(pki.ica_key))
    (folder / "ext.cnf").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    )
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ica.pem", "-CAkey", "ica.key", "-set_serial", "-7",
        "-days", "365", "-sha256", "-extfile", "ext.cnf", "-out", "leaf.pem")  # fmt: skip
    return NonPositiveSerials(folder / "negative.pem", folder / "zero.pem", folder / "leaf.pem", leaf_key)
