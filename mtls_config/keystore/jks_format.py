"""Write the JKS file format byte for byte, deterministically.

pyjks can write JKS, but it stamps entries with the wall clock and encrypts keys with a random IV, so the same
inputs never give the same bytes. The format is small (sun.security.provider.JavaKeyStore), so we write it here
with the timestamps and IV the caller controls. Reading stays with pyjks (``store.py``).

This writer does what it is told: it lower-cases nothing and checks nothing (tests use it to build the broken
stores the lint rules must catch). ``assemble.py`` is the careful caller.

Pure: bytes in, bytes out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from mtls_config.errors import KeystoreError
from mtls_config.secrets import SecretValue
from mtls_config.wording import plural

JKS_MAGIC = b"\xfe\xed\xfe\xed"
JCEKS_MAGIC = b"\xce\xce\xce\xce"
_VERSION = 2
_TAG_PRIVATE_KEY = 1
_TAG_TRUSTED_CERT = 2
_WHITENING = b"Mighty Aphrodite"  # JavaKeyStore's integrity-digest salt, fixed by the format
# AlgorithmIdentifier{1.3.6.1.4.1.42.2.17.1.1 (Sun JKS key protector), NULL}, DER-encoded.
_SUN_JKS_ALGORITHM = bytes.fromhex("300e060a2b060104012a02110101 0500".replace(" ", ""))
_IV_LABEL = b"mtls-config/jks-key-iv/v1"


@dataclass(frozen=True)
class JksPrivateKeyEntry:
    alias: str
    timestamp_ms: int
    pkcs8: bytes = b""  # the unencrypted PrivateKeyInfo (DER); ignored when ``encrypted`` is given
    chain_der: tuple[bytes, ...] = ()
    key_password: SecretValue | None = None  # None: the store password
    encrypted: bytes | None = None  # an EncryptedPrivateKeyInfo to write verbatim (re-use of an existing entry)

    def __repr__(self) -> str:
        return f"JksPrivateKeyEntry(alias={self.alias!r}, chain={plural(len(self.chain_der), 'cert')})"


@dataclass(frozen=True)
class JksTrustedCertEntry:
    alias: str
    timestamp_ms: int
    cert_der: bytes


JksEntry = JksPrivateKeyEntry | JksTrustedCertEntry


def _java_password(password: SecretValue) -> bytes:
    # Java keeps passwords as char[]; JavaKeyStore hashes each char as two bytes, big-endian.
    try:
        text = password.reveal_text()
    except UnicodeDecodeError:
        raise KeystoreError("the keystore password is not UTF-8 text; JKS needs a text password") from None
    return text.encode("utf-16-be")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def _keystream(iv: bytes, password: bytes, length: int) -> bytes:
    out = bytearray()
    current = iv
    while len(out) < length:
        current = hashlib.sha1(password + current).digest()
        out += current
    return bytes(out[:length])


def synthetic_iv(password: SecretValue, pkcs8: bytes, chain_der: Sequence[bytes]) -> bytes:
    """The 20-byte IV for the JKS key protector, derived from what is being protected.

    Why this is safe: the protector is a SHA-1 keystream seeded by SHA1(password || IV) and XORed onto the key,
    so the one thing that must never happen is the same (password, IV) protecting two different keys. Here the
    IV is a keyed PRF (HMAC-SHA256 under the password) of the key and its chain, so an IV repeats only when the
    plaintext repeats, and then the ciphertext repeats too: that shows only "same key, same password", which
    the format's own check value SHA1(password || key) shows already. Without the password the IV is
    indistinguishable from random and tells nothing about the key. (This is the synthetic-IV construction of
    deterministic encryption, as in AES-SIV.)
    """
    mac = hmac.new(_java_password(password), _IV_LABEL, hashlib.sha256)
    for part in (pkcs8, *chain_der):
        mac.update(struct.pack(">I", len(part)))
        mac.update(part)
    return mac.digest()[:20]


def protect_key(pkcs8: bytes, password: SecretValue, iv: bytes) -> bytes:
    """Sun's JKS key protection (sun.security.provider.KeyProtector) as an EncryptedPrivateKeyInfo (DER)."""
    pw = _java_password(password)
    stream = _keystream(iv, pw, len(pkcs8))
    body = bytes(a ^ b for a, b in zip(pkcs8, stream, strict=True))
    check = hashlib.sha1(pw + pkcs8).digest()
    return _der(0x30, _SUN_JKS_ALGORITHM + _der(0x04, iv + body + check))


def _utf(text: str) -> bytes:
    # Java's DataOutputStream.writeUTF; aliases and "X.509" are plain ASCII in practice.
    data = text.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def _data(blob: bytes) -> bytes:
    return struct.pack(">I", len(blob)) + blob


def encode_jks(entries: Sequence[JksEntry], store_password: SecretValue) -> bytes:
    """The JKS file for ``entries``, in the order given. Same inputs, same bytes."""
    out = bytearray(JKS_MAGIC)
    out += struct.pack(">II", _VERSION, len(entries))
    for entry in entries:
        if isinstance(entry, JksTrustedCertEntry):
            out += struct.pack(">I", _TAG_TRUSTED_CERT) + _utf(entry.alias) + struct.pack(">q", entry.timestamp_ms)
            out += _utf("X.509") + _data(entry.cert_der)
            continue
        blob = entry.encrypted
        if blob is None:
            key_password = entry.key_password or store_password
            iv = synthetic_iv(key_password, entry.pkcs8, entry.chain_der)
            blob = protect_key(entry.pkcs8, key_password, iv)
        out += struct.pack(">I", _TAG_PRIVATE_KEY) + _utf(entry.alias) + struct.pack(">q", entry.timestamp_ms)
        out += _data(blob) + struct.pack(">I", len(entry.chain_der))
        for der in entry.chain_der:
            out += _utf("X.509") + _data(der)
    out += hashlib.sha1(_java_password(store_password) + _WHITENING + bytes(out)).digest()
    return bytes(out)
