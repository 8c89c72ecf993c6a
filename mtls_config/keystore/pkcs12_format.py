"""Write PKCS#12 (RFC 7292) keystores byte for byte, deterministically.

cryptography's ``pkcs12.serialize_key_and_certificates`` draws fresh salts and IVs on every call and cannot be
told otherwise, so the same inputs never give the same bytes. The subset a client keystore needs is small, so
we write it here: a PFX v3 whose authSafe holds

1. the certificates as certBags, in one SafeContents encrypted with PBES2 (as OpenSSL 3 and keytool 17 do by
   default: it keeps who the client is out of view of whoever holds only the file, and asks nothing more of the
   reader than the key bag already does);
2. the private key as a pkcs8ShroudedKeyBag, PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC);

then a MAC (HMAC-SHA256, key from the PKCS#12 KDF, RFC 7292 appendix B) over the authSafe. The key bag and the
leaf's certBag carry friendlyName (the alias) and localKeyId (SHA-1 of the leaf, as OpenSSL writes it); CA
certificates carry their own friendlyName and Oracle's trusted-key-usage attribute, without which Java lists
no trustedCertEntry (the leaf never gets it: on a key's own certificate it confuses readers, openssl#22215).
Java builds the key's chain from every certificate in the file, trusted or not, so each CA is written once.

Salts and IVs are derived from the inputs instead of drawn at random: see ``_Derivation`` for why that is safe.
DER is written by hand with the few helpers below: the structures are fixed and small, and a hand-written
encoder keeps the output fully determined by this file (pyasn1, a pyjks dependency we do not declare, would
add an API to learn and no safety: correctness is checked by OpenSSL, keytool and cryptography in the tests).

This writer does what it is told and checks next to nothing (``assemble.py`` is the careful caller).
``read_trusted_certificates`` reads back the one thing cryptography's reader leaves out: the trust attribute.
Pure: bytes in, bytes out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mtls_config.errors import KeystoreError
from mtls_config.secrets import SecretValue

PKCS12_ITERATIONS = 10_000  # PBKDF2 and MAC rounds; what keytool 17 writes
_SALT_BYTES = 16
_AES_BLOCK = 16

# Object identifiers (RFC 7292, RFC 8018, RFC 5652, NIST, Oracle).
_DATA = "1.2.840.113549.1.7.1"
_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
_FRIENDLY_NAME = "1.2.840.113549.1.9.20"
_LOCAL_KEY_ID = "1.2.840.113549.1.9.21"
_ORACLE_TRUSTED_KEY_USAGE = "2.16.840.1.113894.746875.1.1"
_ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0"
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_HMAC_WITH_SHA256 = "1.2.840.113549.2.9"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_SHA256 = "2.16.840.1.101.3.4.2.1"


@dataclass(frozen=True)
class Pkcs12KeyEntry:
    alias: str
    pkcs8: bytes  # the unencrypted PrivateKeyInfo (DER)
    chain_der: tuple[bytes, ...]  # leaf first

    def __repr__(self) -> str:
        return f"Pkcs12KeyEntry(alias={self.alias!r}, chain={len(self.chain_der)} certs)"


@dataclass(frozen=True)
class Pkcs12TrustedCert:
    alias: str
    cert_der: bytes


# --- DER ------------------------------------------------------------------------------------------------------


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _set_of(*parts: bytes) -> bytes:
    # DER orders SET OF members by their encodings (X.690 11.6).
    return _tlv(0x31, b"".join(sorted(parts)))


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # non-negative, minimal


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _explicit0(inner: bytes) -> bytes:
    return _tlv(0xA0, inner)


_NULL = b"\x05\x00"


# --- Key derivation and encryption ------------------------------------------------------------------------------


def _password_forms(password: SecretValue) -> tuple[bytes, bytes]:
    """(PBES2 form, PKCS#12 MAC form) of the password: UTF-8 for PBKDF2, as OpenSSL 3 and Java (PBKDF2KeyImpl)
    feed it; UTF-16BE plus two zero bytes (a NUL-terminated BMPString) for the RFC 7292 KDF."""
    try:
        text = password.reveal_text()
    except UnicodeDecodeError:
        raise KeystoreError("the keystore password is not UTF-8 text; PKCS12 needs a text password") from None
    return text.encode("utf-8"), text.encode("utf-16-be") + b"\x00\x00"


def pkcs12_kdf(password_bmp: bytes, salt: bytes, purpose_id: int, iterations: int, length: int) -> bytes:
    """RFC 7292 appendix B.2 with SHA-256 (u = 32, v = 64); ``purpose_id`` 3 makes a MAC key."""
    u, v = 32, 64

    def fill(data: bytes) -> bytes:
        if not data:
            return b""
        size = v * -(-len(data) // v)
        return (data * (size // len(data) + 1))[:size]

    diversifier = bytes([purpose_id]) * v
    block = bytearray(fill(salt) + fill(password_bmp))
    out = b""
    while len(out) < length:
        a = hashlib.sha256(diversifier + bytes(block)).digest()
        for _ in range(iterations - 1):
            a = hashlib.sha256(a).digest()
        out += a
        if len(out) >= length:
            break
        b = int.from_bytes((a * (v // u + 1))[:v], "big") + 1
        for start in range(0, len(block), v):
            chunk = (int.from_bytes(block[start : start + v], "big") + b) % (1 << (8 * v))
            block[start : start + v] = chunk.to_bytes(v, "big")
    return out[:length]


class _Derivation:
    """Salts and IVs derived from the inputs, so that the same inputs give the same file.

    Why this is safe. Each salt and IV is HMAC-SHA256(seed, purpose || what it protects), where the seed is
    PBKDF2-HMAC-SHA256(password, HMAC-SHA256(private key, label), same rounds as the file). So:
    - A (password, salt) pair, hence an AES key, and its IV repeat only when the same private key is stored
      again with the same password and the same plaintext (the key bag: that key; the certificates: the same
      certificates and aliases), and then the ciphertext repeats too: it shows "same content, same password",
      which the identical files show anyway. This is the synthetic-IV construction of deterministic encryption
      (as in AES-SIV and our JKS writer); CBC needs IVs its attacker cannot predict, and these are a PRF under a
      secret seed of the whole plaintext.
    - The seed needs the private key, so to anyone holding only the file the salts look random and tell nothing.
      Salts keyed by the password alone over public data (the certificates) would have been a password oracle
      at one HMAC per guess, skipping the 10,000 KDF rounds; here even a holder of the private key pays the
      full PBKDF2 per guess, as decrypting the key bag would cost anyway.
    - Different passwords give different salts (the seed depends on the password).
    """

    _LABEL = b"mtls-config/pkcs12-seed/v1"

    def __init__(self, pkcs8: bytes, password_utf8: bytes, iterations: int) -> None:
        key_secret = hmac.new(pkcs8, self._LABEL, hashlib.sha256).digest()
        self._seed = hashlib.pbkdf2_hmac("sha256", password_utf8, key_secret, iterations)

    def __repr__(self) -> str:
        return "_Derivation(<hidden>)"

    def value(self, purpose: bytes, protected: bytes, size: int) -> bytes:
        mac = hmac.new(self._seed, struct.pack(">I", len(purpose)) + purpose, hashlib.sha256)
        mac.update(protected)
        return mac.digest()[:size]


def _encrypted(
    plaintext: bytes, password_utf8: bytes, derive: _Derivation, purpose: bytes, iterations: int
) -> tuple[bytes, bytes]:
    """(AlgorithmIdentifier, ciphertext): PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018)."""
    salt = derive.value(purpose + b"/pbkdf2-salt", plaintext, _SALT_BYTES)
    iv = derive.value(purpose + b"/aes-iv", plaintext, _AES_BLOCK)
    key = hashlib.pbkdf2_hmac("sha256", password_utf8, salt, iterations, 32)
    padder = padding.PKCS7(_AES_BLOCK * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    kdf = _seq(_oid(_PBKDF2), _seq(_octets(salt), _int(iterations), _seq(_oid(_HMAC_WITH_SHA256), _NULL)))
    algorithm = _seq(_oid(_PBES2), _seq(kdf, _seq(_oid(_AES256_CBC), _octets(iv))))
    return algorithm, ciphertext


# --- Structure ------------------------------------------------------------------------------------------------


def _attributes(*, alias: str | None, local_key_id: bytes | None = None, trusted: bool = False) -> bytes:
    attrs = []
    if alias is not None:
        attrs.append(_seq(_oid(_FRIENDLY_NAME), _set_of(_tlv(0x1E, alias.encode("utf-16-be")))))  # BMPString
    if local_key_id is not None:
        attrs.append(_seq(_oid(_LOCAL_KEY_ID), _set_of(_octets(local_key_id))))
    if trusted:
        attrs.append(_seq(_oid(_ORACLE_TRUSTED_KEY_USAGE), _set_of(_oid(_ANY_EXTENDED_KEY_USAGE))))
    return _set_of(*attrs) if attrs else b""


def _safe_bag(bag_type: str, value: bytes, attributes: bytes) -> bytes:
    return _seq(_oid(bag_type), _explicit0(value), attributes)


def _cert_bag(cert_der: bytes, attributes: bytes) -> bytes:
    return _safe_bag(_CERT_BAG, _seq(_oid(_X509_CERTIFICATE), _explicit0(_octets(cert_der))), attributes)


def _data_content(content: bytes) -> bytes:
    return _seq(_oid(_DATA), _explicit0(_octets(content)))


def encode_pkcs12(
    key: Pkcs12KeyEntry,
    trusted: Sequence[Pkcs12TrustedCert],
    password: SecretValue,
    *,
    iterations: int = PKCS12_ITERATIONS,
) -> bytes:
    """The PKCS#12 file for one key entry and the trusted certificates, key password = store password.
    Certificates are written leaf first, then the chain in order, then trusted certificates outside the chain;
    a trusted certificate that is also in the chain is written once, as a trusted entry. Same inputs, same bytes."""
    if not key.chain_der:
        raise KeystoreError("a PKCS12 key entry needs its certificate (Java pairs key and certificate)")
    password_utf8, password_bmp = _password_forms(password)
    derive = _Derivation(key.pkcs8, password_utf8, iterations)
    trusted_by_der: dict[bytes, Pkcs12TrustedCert] = {}
    for cert in trusted:
        trusted_by_der.setdefault(cert.cert_der, cert)  # the first alias wins, wherever the certificate is written
    local_key_id = hashlib.sha1(key.chain_der[0]).digest()  # pairs key and leaf; an identifier, as OpenSSL writes it

    bags: list[bytes] = []
    written: set[bytes] = set()
    for index, der in enumerate(key.chain_der):
        if der in written:
            continue
        written.add(der)
        if index == 0:
            bags.append(_cert_bag(der, _attributes(alias=key.alias, local_key_id=local_key_id)))
        elif der in trusted_by_der:
            bags.append(_cert_bag(der, _attributes(alias=trusted_by_der[der].alias, trusted=True)))
        else:
            bags.append(_cert_bag(der, b""))
    for der, cert in trusted_by_der.items():
        if der not in written:
            written.add(der)
            bags.append(_cert_bag(der, _attributes(alias=cert.alias, trusted=True)))
    cert_contents = _seq(*bags)
    cert_algorithm, cert_ciphertext = _encrypted(cert_contents, password_utf8, derive, b"certs", iterations)
    encrypted_certs = _seq(
        _oid(_ENCRYPTED_DATA),
        _explicit0(_seq(_int(0), _seq(_oid(_DATA), cert_algorithm, _tlv(0x80, cert_ciphertext)))),
    )

    key_algorithm, key_ciphertext = _encrypted(key.pkcs8, password_utf8, derive, b"key", iterations)
    key_bag = _safe_bag(
        _SHROUDED_KEY_BAG,
        _seq(key_algorithm, _octets(key_ciphertext)),
        _attributes(alias=key.alias, local_key_id=local_key_id),
    )
    auth_safe = _seq(encrypted_certs, _data_content(_seq(key_bag)))

    mac_salt = derive.value(b"mac-salt", auth_safe, _SALT_BYTES)
    mac_key = pkcs12_kdf(password_bmp, mac_salt, 3, iterations, 32)
    digest = hmac.new(mac_key, auth_safe, hashlib.sha256).digest()
    mac_data = _seq(_seq(_seq(_oid(_SHA256), _NULL), _octets(digest)), _octets(mac_salt), _int(iterations))
    return _seq(_int(3), _data_content(auth_safe), mac_data)


# --- Reading the trust attribute ----------------------------------------------------------------------------------
# cryptography's load_pkcs12 gives each certificate its friendlyName but not its other bag attributes, and Java
# decides "trustedCertEntry" on Oracle's trust attribute alone. So the reader walks the certificate bags itself,
# for what OpenSSL 3, keytool 17 and this writer produce: DER, and bags in plain or PBES2 (PBKDF2, AES-CBC)
# SafeContents. Anything else (legacy RC2/3DES, BER) is "unknown", never an error: the caller falls back.

_AES_CBC_KEY_BYTES = {_oid("2.16.840.1.101.3.4.1.2"): 16, _oid("2.16.840.1.101.3.4.1.22"): 24, _oid(_AES256_CBC): 32}
_PBKDF2_PRF = {
    _oid("1.2.840.113549.2.7"): "sha1",
    _oid("1.2.840.113549.2.9"): "sha256",
    _oid("1.2.840.113549.2.10"): "sha384",
    _oid("1.2.840.113549.2.11"): "sha512",
}


class _Unreadable(Exception):
    """Bytes outside the subset read here (the caller falls back; nothing is reported from it)."""


def _der_items(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The TLVs of ``data`` as (tag, body, whole encoding); definite lengths only."""
    items: list[tuple[int, bytes, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise _Unreadable
        tag, first = data[pos], data[pos + 1]
        start = pos + 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or start + count > len(data):  # 0: BER indefinite length
                raise _Unreadable
            length = int.from_bytes(data[start : start + count], "big")
            start += count
        end = start + length
        if end > len(data):
            raise _Unreadable
        items.append((tag, data[start:end], data[pos:end]))
        pos = end
    return items


def _expect(data: bytes, *tags: int) -> list[tuple[int, bytes, bytes]]:
    """The TLVs of ``data``, at least as many as ``tags`` and starting with those tags."""
    items = _der_items(data)
    if len(items) < len(tags) or any(item[0] != tag for item, tag in zip(items, tags, strict=False)):
        raise _Unreadable
    return items


def _pbes2_decrypt(algorithm: bytes, ciphertext: bytes, password_utf8: bytes) -> bytes:
    oid, params = _expect(algorithm, 0x06, 0x30)[:2]
    if oid[2] != _oid(_PBES2):
        raise _Unreadable
    kdf, scheme = _expect(params[1], 0x30, 0x30)[:2]
    kdf_oid, kdf_params = _expect(kdf[1], 0x06, 0x30)[:2]
    scheme_oid, iv = _expect(scheme[1], 0x06, 0x04)[:2]
    if kdf_oid[2] != _oid(_PBKDF2) or scheme_oid[2] not in _AES_CBC_KEY_BYTES:
        raise _Unreadable
    salt, rounds, *rest = _expect(kdf_params[1], 0x04, 0x02)
    prf = "sha1"  # RFC 8018 default
    for tag, body, _raw in rest:
        if tag == 0x30:
            prf_oid = _expect(body, 0x06)[0][2]
            if prf_oid not in _PBKDF2_PRF:
                raise _Unreadable
            prf = _PBKDF2_PRF[prf_oid]
    iterations = int.from_bytes(rounds[1], "big")
    if not 0 < iterations <= 10_000_000 or len(iv[1]) != _AES_BLOCK or len(ciphertext) % _AES_BLOCK:
        raise _Unreadable
    key = hashlib.pbkdf2_hmac(prf, password_utf8, salt[1], iterations, _AES_CBC_KEY_BYTES[scheme_oid[2]])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv[1])).decryptor()
    unpadder = padding.PKCS7(_AES_BLOCK * 8).unpadder()
    try:
        return unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise _Unreadable from None


def _trust_in_bags(safe_contents: bytes, found: list[tuple[bytes, str | None]]) -> None:
    for _tag, bag, _raw in _expect(_expect(safe_contents, 0x30)[0][1]):
        bag_id, value, *attributes = _expect(bag, 0x06, 0xA0)
        if bag_id[2] != _oid(_CERT_BAG) or not attributes:
            continue
        cert_id, cert_value = _expect(_expect(value[1], 0x30)[0][1], 0x06, 0xA0)[:2]
        if cert_id[2] != _oid(_X509_CERTIFICATE):
            continue
        cert_der = _expect(cert_value[1], 0x04)[0][1]
        alias: str | None = None
        trusted = False
        for _t, attribute, _r in _expect(attributes[0][1]):
            attr_oid, values = _expect(attribute, 0x06, 0x31)[:2]
            if attr_oid[2] == _oid(_ORACLE_TRUSTED_KEY_USAGE):
                trusted = True
            elif attr_oid[2] == _oid(_FRIENDLY_NAME):
                names = _expect(values[1], 0x1E)
                alias = names[0][1].decode("utf-16-be", "replace")
        if trusted and (cert_der, alias) not in found:
            found.append((cert_der, alias))


def read_trusted_certificates(data: bytes, password: SecretValue) -> list[tuple[bytes, str | None]] | None:
    """The certificate bags that carry Oracle's trust attribute (Java lists each as a trustedCertEntry), as
    (DER, friendlyName) in file order; ``None`` when some part is outside what this reader decodes. Call it on a file that
    already opened with ``password`` (the MAC is not checked here)."""
    try:
        password_utf8 = password.reveal_text().encode("utf-8")
    except UnicodeDecodeError:
        return None
    found: list[tuple[bytes, str | None]] = []
    try:
        pfx = _expect(_expect(data, 0x30)[0][1], 0x02, 0x30)
        content_type, content = _expect(pfx[1][1], 0x06, 0xA0)[:2]
        if content_type[2] != _oid(_DATA):
            raise _Unreadable
        auth_safe = _expect(content[1], 0x04)[0][1]
        for _tag, info, _raw in _expect(_expect(auth_safe, 0x30)[0][1]):
            info_type, info_content = _expect(info, 0x06, 0xA0)[:2]
            if info_type[2] == _oid(_DATA):
                _trust_in_bags(_expect(info_content[1], 0x04)[0][1], found)
            elif info_type[2] == _oid(_ENCRYPTED_DATA):
                encrypted = _expect(_expect(info_content[1], 0x30)[0][1], 0x02, 0x30)[1]
                inner_type, algorithm, ciphertext = _expect(encrypted[1], 0x06, 0x30, 0x80)[:3]
                if inner_type[2] != _oid(_DATA):
                    raise _Unreadable
                _trust_in_bags(_pbes2_decrypt(algorithm[1], ciphertext[1], password_utf8), found)
            else:
                raise _Unreadable
    except _Unreadable:
        return None
    return found
