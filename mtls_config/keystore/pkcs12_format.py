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
``read_bags`` reads back what cryptography's reader leaves out: the trust attribute, and a DSA key's bag
(which cryptography would load through its deprecated DSA API).
Pure: bytes in, bytes out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from mtls_config.errors import KeystoreError
from mtls_config.keystore import der
from mtls_config.secrets import SecretValue
from mtls_config.wording import plural

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
        return f"Pkcs12KeyEntry(alias={self.alias!r}, chain={plural(len(self.chain_der), 'cert')})"


@dataclass(frozen=True)
class Pkcs12TrustedCert:
    alias: str
    cert_der: bytes


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
    kdf = der.seq(
        der.oid(_PBKDF2),
        der.seq(der.octets(salt), der.integer(iterations), der.seq(der.oid(_HMAC_WITH_SHA256), der.NULL)),
    )
    algorithm = der.seq(der.oid(_PBES2), der.seq(kdf, der.seq(der.oid(_AES256_CBC), der.octets(iv))))
    return algorithm, ciphertext


# --- Structure ------------------------------------------------------------------------------------------------


def _attributes(*, alias: str | None, local_key_id: bytes | None = None, trusted: bool = False) -> bytes:
    attrs = []
    if alias is not None:
        attrs.append(
            der.seq(der.oid(_FRIENDLY_NAME), der.set_of(der.tlv(0x1E, alias.encode("utf-16-be"))))
        )  # BMPString
    if local_key_id is not None:
        attrs.append(der.seq(der.oid(_LOCAL_KEY_ID), der.set_of(der.octets(local_key_id))))
    if trusted:
        attrs.append(der.seq(der.oid(_ORACLE_TRUSTED_KEY_USAGE), der.set_of(der.oid(_ANY_EXTENDED_KEY_USAGE))))
    return der.set_of(*attrs) if attrs else b""


def _safe_bag(bag_type: str, value: bytes, attributes: bytes) -> bytes:
    return der.seq(der.oid(bag_type), der.explicit0(value), attributes)


def _cert_bag(cert_der: bytes, attributes: bytes) -> bytes:
    return _safe_bag(_CERT_BAG, der.seq(der.oid(_X509_CERTIFICATE), der.explicit0(der.octets(cert_der))), attributes)


def _data_content(content: bytes) -> bytes:
    return der.seq(der.oid(_DATA), der.explicit0(der.octets(content)))


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
    for index, cert_der in enumerate(key.chain_der):
        if cert_der in written:
            continue
        written.add(cert_der)
        if index == 0:
            bags.append(_cert_bag(cert_der, _attributes(alias=key.alias, local_key_id=local_key_id)))
        elif cert_der in trusted_by_der:
            bags.append(_cert_bag(cert_der, _attributes(alias=trusted_by_der[cert_der].alias, trusted=True)))
        else:
            bags.append(_cert_bag(cert_der, b""))
    for cert_der, cert in trusted_by_der.items():
        if cert_der not in written:
            written.add(cert_der)
            bags.append(_cert_bag(cert_der, _attributes(alias=cert.alias, trusted=True)))
    cert_contents = der.seq(*bags)
    cert_algorithm, cert_ciphertext = _encrypted(cert_contents, password_utf8, derive, b"certs", iterations)
    encrypted_certs = der.seq(
        der.oid(_ENCRYPTED_DATA),
        der.explicit0(der.seq(der.integer(0), der.seq(der.oid(_DATA), cert_algorithm, der.tlv(0x80, cert_ciphertext)))),
    )

    key_algorithm, key_ciphertext = _encrypted(key.pkcs8, password_utf8, derive, b"key", iterations)
    key_bag = _safe_bag(
        _SHROUDED_KEY_BAG,
        der.seq(key_algorithm, der.octets(key_ciphertext)),
        _attributes(alias=key.alias, local_key_id=local_key_id),
    )
    auth_safe = der.seq(encrypted_certs, _data_content(der.seq(key_bag)))

    mac_salt = derive.value(b"mac-salt", auth_safe, _SALT_BYTES)
    mac_key = pkcs12_kdf(password_bmp, mac_salt, 3, iterations, 32)
    digest = hmac.new(mac_key, auth_safe, hashlib.sha256).digest()
    mac_data = der.seq(
        der.seq(der.seq(der.oid(_SHA256), der.NULL), der.octets(digest)), der.octets(mac_salt), der.integer(iterations)
    )
    return der.seq(der.integer(3), _data_content(auth_safe), mac_data)


# --- Reading the bags ---------------------------------------------------------------------------------------------
# cryptography's load_pkcs12 gives each certificate its friendlyName but not its other bag attributes, and Java
# decides "trustedCertEntry" on Oracle's trust attribute alone; and it loads a DSA key through cryptography's
# deprecated DSA API (see dsa_keys). So the reader walks the bags itself,
# for what OpenSSL 3, keytool 17 and this writer produce: DER, and bags in plain or PBES2 (PBKDF2, AES-CBC)
# SafeContents. Anything else (legacy RC2/3DES, BER) is "unknown", never an error: the caller falls back.

_AES_CBC_KEY_BYTES = {
    der.oid("2.16.840.1.101.3.4.1.2"): 16,
    der.oid("2.16.840.1.101.3.4.1.22"): 24,
    der.oid(_AES256_CBC): 32,
}
_PBKDF2_PRF = {
    der.oid("1.2.840.113549.2.7"): "sha1",
    der.oid("1.2.840.113549.2.9"): "sha256",
    der.oid("1.2.840.113549.2.10"): "sha384",
    der.oid("1.2.840.113549.2.11"): "sha512",
}


def _pbes2_decrypt(algorithm: bytes, ciphertext: bytes, password_utf8: bytes) -> bytes:
    oid, params = der.expect(algorithm, 0x06, 0x30)[:2]
    if oid[2] != der.oid(_PBES2):
        raise der.Unreadable
    kdf, scheme = der.expect(params[1], 0x30, 0x30)[:2]
    kdf_oid, kdf_params = der.expect(kdf[1], 0x06, 0x30)[:2]
    scheme_oid, iv = der.expect(scheme[1], 0x06, 0x04)[:2]
    if kdf_oid[2] != der.oid(_PBKDF2) or scheme_oid[2] not in _AES_CBC_KEY_BYTES:
        raise der.Unreadable
    salt, rounds, *rest = der.expect(kdf_params[1], 0x04, 0x02)
    prf = "sha1"  # RFC 8018 default
    for tag, body, _raw in rest:
        if tag == 0x30:
            prf_oid = der.expect(body, 0x06)[0][2]
            if prf_oid not in _PBKDF2_PRF:
                raise der.Unreadable
            prf = _PBKDF2_PRF[prf_oid]
    iterations = int.from_bytes(rounds[1], "big")
    if not 0 < iterations <= 10_000_000 or len(iv[1]) != _AES_BLOCK or len(ciphertext) % _AES_BLOCK:
        raise der.Unreadable
    key = hashlib.pbkdf2_hmac(prf, password_utf8, salt[1], iterations, _AES_CBC_KEY_BYTES[scheme_oid[2]])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv[1])).decryptor()
    unpadder = padding.PKCS7(_AES_BLOCK * 8).unpadder()
    try:
        return unpadder.update(decryptor.update(ciphertext) + decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise der.Unreadable from None


@dataclass(frozen=True)
class Pkcs12Bag:
    """A certificate bag (``value`` = DER) or a shrouded key bag (``value`` = the decrypted PKCS#8), with the bag
    attributes Java and OpenSSL read: friendlyName (the alias), localKeyId (pairs a key with its certificate) and
    Oracle's trust attribute."""

    kind: Literal["key", "cert"]
    value: bytes = field(repr=False)
    alias: str | None
    local_key_id: bytes | None
    trusted: bool = False


def decrypt_pkcs8(encrypted: bytes, password: SecretValue) -> bytes | None:
    """The PrivateKeyInfo inside a PBES2 (PBKDF2, AES-CBC) EncryptedPrivateKeyInfo (DER), as OpenSSL 3 writes an
    encrypted key; ``None`` for another encryption or a wrong password."""
    try:
        algorithm, ciphertext = der.expect(der.expect(encrypted, 0x30)[0][1], 0x30, 0x04)[:2]
        return _pbes2_decrypt(algorithm[1], ciphertext[1], password.reveal_text().encode("utf-8"))
    except (der.Unreadable, UnicodeDecodeError):
        return None


def _bag_attributes(attributes: list[tuple[int, bytes, bytes]]) -> tuple[str | None, bytes | None, bool]:
    alias: str | None = None
    local_key_id: bytes | None = None
    trusted = False
    for _t, attribute, _r in der.expect(attributes[0][1]) if attributes else ():
        attr_oid, values = der.expect(attribute, 0x06, 0x31)[:2]
        if attr_oid[2] == der.oid(_ORACLE_TRUSTED_KEY_USAGE):
            trusted = True
        elif attr_oid[2] == der.oid(_FRIENDLY_NAME):
            alias = der.expect(values[1], 0x1E)[0][1].decode("utf-16-be", "replace")
        elif attr_oid[2] == der.oid(_LOCAL_KEY_ID):
            local_key_id = der.expect(values[1], 0x04)[0][1]
    return alias, local_key_id, trusted


def _bags_in(safe_contents: bytes, password_utf8: bytes, keys: bool, found: list[Pkcs12Bag]) -> None:
    for _tag, bag, _raw in der.expect(der.expect(safe_contents, 0x30)[0][1]):
        bag_id, value, *attributes = der.expect(bag, 0x06, 0xA0)
        if bag_id[2] == der.oid(_CERT_BAG):
            cert_id, cert_value = der.expect(der.expect(value[1], 0x30)[0][1], 0x06, 0xA0)[:2]
            if cert_id[2] == der.oid(_X509_CERTIFICATE):
                cert_der = der.expect(cert_value[1], 0x04)[0][1]
                found.append(Pkcs12Bag("cert", cert_der, *_bag_attributes(attributes)))
        elif keys and bag_id[2] == der.oid(_SHROUDED_KEY_BAG):
            algorithm, ciphertext = der.expect(der.expect(value[1], 0x30)[0][1], 0x30, 0x04)[:2]
            pkcs8 = _pbes2_decrypt(algorithm[1], ciphertext[1], password_utf8)
            alias, local_key_id, _trusted = _bag_attributes(attributes)
            found.append(Pkcs12Bag("key", pkcs8, alias, local_key_id))


def _auth_safe(data: bytes) -> tuple[bytes, list[tuple[int, bytes, bytes]]]:
    """(the authSafe's bytes, which the MAC covers; the PFX's remaining fields, macData among them)."""
    pfx = der.expect(der.expect(data, 0x30)[0][1], 0x02, 0x30)
    content_type, content = der.expect(pfx[1][1], 0x06, 0xA0)[:2]
    if content_type[2] != der.oid(_DATA):
        raise der.Unreadable
    return der.expect(content[1], 0x04)[0][1], pfx[2:]


def read_bags(data: bytes, password: SecretValue, *, keys: bool = False) -> list[Pkcs12Bag] | None:
    """The certificate bags (and with ``keys`` the decrypted key bags) in file order, for what OpenSSL 3, keytool
    17 and this writer produce: DER, bags in plain or PBES2 (PBKDF2, AES-CBC) SafeContents. ``None`` when some
    part is outside what this reader decodes, or a key bag does not decrypt. The MAC is not checked here
    (``mac_verifies``)."""
    try:
        password_utf8 = password.reveal_text().encode("utf-8")
    except UnicodeDecodeError:
        return None
    found: list[Pkcs12Bag] = []
    try:
        auth_safe, _rest = _auth_safe(data)
        for _tag, info, _raw in der.expect(der.expect(auth_safe, 0x30)[0][1]):
            info_type, info_content = der.expect(info, 0x06, 0xA0)[:2]
            if info_type[2] == der.oid(_DATA):
                _bags_in(der.expect(info_content[1], 0x04)[0][1], password_utf8, keys, found)
            elif info_type[2] == der.oid(_ENCRYPTED_DATA):
                encrypted = der.expect(der.expect(info_content[1], 0x30)[0][1], 0x02, 0x30)[1]
                inner_type, algorithm, ciphertext = der.expect(encrypted[1], 0x06, 0x30, 0x80)[:3]
                if inner_type[2] != der.oid(_DATA):
                    raise der.Unreadable
                plain = _pbes2_decrypt(algorithm[1], ciphertext[1], password_utf8)
                _bags_in(plain, password_utf8, keys, found)
            else:
                raise der.Unreadable
    except der.Unreadable:
        return None
    return found


def mac_verifies(data: bytes, password: SecretValue) -> bool | None:
    """The PFX's HMAC-SHA256 integrity MAC (RFC 7292 appendix B KDF) holds with ``password``; ``None`` when the
    file has another MAC (or none), which this reader does not check."""
    try:
        _password_utf8, password_bmp = _password_forms(password)
        auth_safe, rest = _auth_safe(data)
        if not rest:
            return None
        mac_fields = der.expect(rest[0][1], 0x30, 0x04)
        digest_algorithm, digest = der.expect(mac_fields[0][1], 0x30, 0x04)[:2]
        if der.expect(digest_algorithm[1], 0x06)[0][2] != der.oid(_SHA256):
            return None
        iterations = der.read_integer(mac_fields[2][1]) if len(mac_fields) > 2 else 1
        if not 0 < iterations <= 10_000_000:
            return None
        key = pkcs12_kdf(password_bmp, mac_fields[1][1], 3, iterations, 32)
    except (der.Unreadable, KeystoreError):
        return None
    return hmac.compare_digest(hmac.new(key, auth_safe, hashlib.sha256).digest(), digest[1])


def trusted_certificates(bags: Sequence[Pkcs12Bag]) -> list[tuple[bytes, str | None]]:
    """(DER, friendlyName) of the certificate bags that carry Oracle's trust attribute, in file order."""
    found: list[tuple[bytes, str | None]] = []
    for bag in bags:
        if bag.kind == "cert" and bag.trusted and (bag.value, bag.alias) not in found:
            found.append((bag.value, bag.alias))
    return found
