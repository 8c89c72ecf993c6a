"""X.509 certificates: parse PEM/DER (one or many), describe them, and order/check a chain leaf -> root.

Pure: bytes in, values out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID

from mtls_config.errors import KeystoreError
from mtls_config.frozen import slot_maker
from mtls_config.keystore.dsa_keys import DsaPublicKey, certificate_public_key, is_dsa_certificate

PEM_CERT_MARKER = b"-----BEGIN CERTIFICATE-----"
_SHA256 = hashes.SHA256()
CertEncoding = Literal["der", "pem", "invalid"]

_EKU_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}


# cryptography warns as it loads a certificate whose serial number is not positive (negative or zero), and again
# on every read of its ``serial_number``: RFC 5280 forbids such serials and a future release will refuse them. We
# say it ourselves, in words a user can act on (lint rules K14 and T03; ``inspect`` marks the serial), so the Python
# warning would only repeat it on stderr with our file paths, or raise where warnings are errors.
#
# Hence one filter, added once as this module is imported, for exactly this message and category, and only for
# warnings attributed to mtls_config's own lines: cryptography warns at stacklevel 1, i.e. at the line of ours that
# called it, so an application that parses certificates itself still gets its own warnings. It covers every parse
# in the package, not only this module's: the PKCS12 reader (store.py), the live records (resources) and the
# server's chain (verify) load certificates through cryptography directly.
#
# Not ``warnings.catch_warnings`` around each parse: that swaps the process-wide filter list and puts the saved
# list back on exit, and plan's local work parses certificates in a worker thread while the event loop runs, so
# two overlapping blocks would restore each other's lists (dropping another caller's filters, or leaving ours in
# place for good). Reading the serial's sign from the DER ourselves would not do either: the load itself warns.
# Added at the front, as -W is at start-up, so it holds against PYTHONWARNINGS=error; filters set after import (an
# application's own, pytest's per test, which pyproject.toml mirrors) still come first and win.
NON_POSITIVE_SERIAL_WARNING = "Parsed a serial number which wasn't positive"
warnings.filterwarnings(
    "ignore",
    message=re.escape(NON_POSITIVE_SERIAL_WARNING),
    category=CryptographyDeprecationWarning,
    module=r"mtls_config\.",
)


def looks_like_pem(data: bytes) -> bool:
    return data.find(b"-----BEGIN ", 0, 4096) >= 0  # in data[:4096], without copying it


# Certificates already parsed and checked in the current run, by the SHA-256 of the bytes they came from: a plan
# parses each partner certificate for the desired state and again for lint. Keyed by content, so a changed file
# is simply another entry; only certificates (public) are kept, never the bytes (a file may hold a private key
# too, which T01 reports). Scoped to a block (``parsed_once``), not the process: 2500 cached certificates are
# 12 MB that a plan should hand back when it ends. Trust certificates are kept as ``CheckedCertificate``s
# (``checked_certificates``), a few plain values each, not cryptography's objects.
_parsed: ContextVar[dict[bytes, tuple[x509.Certificate, ...]] | None] = ContextVar("parsed_certificates", default=None)
_checked: ContextVar[dict[bytes, tuple[CheckedCertificate, ...]] | None] = ContextVar(
    "checked_certificates", default=None
)


@contextmanager
def parsed_once() -> Iterator[None]:
    """Within the block (and its thread, when run through ``asyncio.to_thread``), the same bytes parse once."""
    token = _parsed.set({})
    checked = _checked.set({})
    readable = _readable.set(_Readable())
    try:
        yield
    finally:
        _readable.reset(readable)
        _checked.reset(checked)
        _parsed.reset(token)


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data``: PEM (one or many blocks, text around them is ignored) or a single DER."""
    cache = _parsed.get()
    if cache is None:
        return _load_certificates(data)
    key = hashlib.sha256(data).digest()
    known = cache.get(key)
    if known is None:
        known = cache[key] = tuple(_load_certificates(data))
    return list(known)


@dataclass(frozen=True, slots=True)
class CheckedCertificate:
    """A certificate ``load_certificates`` accepts, as the plain values a trust store certificate's desired state,
    its lint and its comparison read: kept for a run by ``checked_certificates`` in place of cryptography's object
    (whose names, key and extensions, parsed by the checks, are several kB a certificate)."""

    der: bytes = field(repr=False)
    sha256: bytes  # of the DER
    subject: str  # RFC 4514, as ``Name.rfc4514_string`` writes it
    not_before: dt.datetime  # UTC
    not_after: dt.datetime  # UTC
    serial: int
    # The bytes it was read from are exactly its PEM text as ``pem_certificate`` writes it (as openssl does, and as
    # 'import' saves it): that text, decoded, is the PEM the instance is sent, without writing it out again.
    canonical_pem: bool = False

    @property
    def fingerprint(self) -> str:
        """As ``fingerprint`` gives it: upper-case hex pairs joined by ':'."""
        return self.sha256.hex(":").upper()

    @property
    def short_name(self) -> str:
        """As ``short_name`` gives it: read again from the DER, for the few messages that name a certificate."""
        return short_name(x509.load_der_x509_certificate(self.der))


def checked_certificates(data: bytes) -> tuple[CheckedCertificate, ...]:
    """``load_certificates`` (the same certificates and the same errors) as ``CheckedCertificate``s; within
    ``parsed_once`` the same bytes are parsed and checked once."""
    cache = _checked.get()
    key = hashlib.sha256(data).digest() if cache is not None else b""
    known = cache.get(key) if cache is not None else None
    if known is None:
        der = plain_pem_der(data)
        if der is not None:
            # One plain PEM block, as nearly every partner certificate comes: what ``_read_certificates`` does with
            # it (the same parse, checks and errors), without its steps for the other forms.
            try:
                cert = x509.load_der_x509_certificate(der)
            except (ValueError, x509.InvalidVersion):
                raise KeystoreError(_PEM_UNPARSED) from None
            reason, subject = _unreadable_reason(cert, der)
            if reason is not None:
                raise KeystoreError(f"certificate 0 cannot be read: {reason}")
            known = (_as_checked(cert, der, _is_pem_text(data), subject),)
        else:
            subjects: list[str | None] = []
            certs = _read_certificates(data, subjects)
            canonical = len(certs) == 1 and certs[0][1] is not None and _is_pem_text(data)
            known = tuple([_as_checked(c, d, canonical, text) for (c, d), text in zip(certs, subjects, strict=True)])
        if cache is not None:
            cache[key] = known
    return known


def _as_checked(
    cert: x509.Certificate, der: bytes | None, canonical_pem: bool = False, subject: str | None = None
) -> CheckedCertificate:
    if der is None:
        der = cert.public_bytes(serialization.Encoding.DER)
    return _checked_certificate(
        der,
        hashlib.sha256(der).digest(),
        subject if subject is not None else cert.subject.rfc4514_string(),
        _utc(cert.not_valid_before_utc),  # not_before(cert), not_after(cert)
        _utc(cert.not_valid_after_utc),
        cert.serial_number,
        canonical_pem,
    )


_checked_certificate = slot_maker(CheckedCertificate)  # one a partner certificate: its slots filled directly


def _is_pem_text(data: bytes) -> bool:
    """Whether ``data``, whose one certificate ``plain_pem_der`` read (one plain block with only whitespace around
    it), is that block and one newline: the text ``pem_certificate`` writes for it, byte for byte."""
    return data.startswith(_PEM_BEGIN) and data.endswith(_PEM_TEXT_END)


def _load_certificates(data: bytes) -> list[x509.Certificate]:
    return [cert for cert, _ in _read_certificates(data)]


def _read_certificates(
    data: bytes, subjects: list[str | None] | None = None
) -> list[tuple[x509.Certificate, bytes | None]]:
    """The certificates of ``data``, each checked (``unreadable_reason``), with its DER when that came without
    asking cryptography to write it again (the data is DER, or one plain PEM block). ``subjects`` is given each
    one's subject as RFC 4514 text when it was read here (``_plain_name_text``), else None."""
    certs: list[tuple[x509.Certificate, bytes | None]]
    if PEM_CERT_MARKER in data or data.lstrip().startswith(b"-----BEGIN"):
        if PEM_CERT_MARKER not in data:
            kind = _pem_kind(data)
            raise KeystoreError(f"no certificate in this PEM data (it holds a {kind} block)")
        der = plain_pem_der(data)
        try:
            if der is not None:
                certs = [(x509.load_der_x509_certificate(der), der)]
            else:
                certs = [(cert, None) for cert in x509.load_pem_x509_certificates(data)]
        except (ValueError, x509.InvalidVersion):
            raise KeystoreError(_PEM_UNPARSED) from None
    elif not data:
        raise KeystoreError("no certificate: the data is empty")
    else:
        try:
            certs = [(x509.load_der_x509_certificate(data), data)]  # the whole data or nothing: no bytes after it
        except (ValueError, x509.InvalidVersion):  # InvalidVersion is not a ValueError
            raise KeystoreError(
                "not a certificate: neither PEM ('-----BEGIN CERTIFICATE-----') nor DER X.509"
            ) from None
    for index, (cert, der) in enumerate(certs):
        reason, subject = _unreadable_reason(cert, der)
        if reason is not None:
            raise KeystoreError(f"certificate {index} cannot be read: {reason}")
        if subjects is not None:
            subjects.append(subject)
    return certs


_PEM_UNPARSED = "cannot parse the PEM certificate data (damaged base64 or not X.509)"
_PEM_BEGIN = PEM_CERT_MARKER + b"\n"
_PEM_END = b"\n-----END CERTIFICATE-----"
_PEM_TEXT_END = _PEM_END + b"\n"


def plain_pem_der(data: bytes) -> bytes | None:
    """The DER of ``data`` when it is one PEM certificate block in the form ``pem_certificate`` writes (as openssl
    does: 64 columns, LF) with only whitespace around it: the DER cryptography's PEM reader finds there, decoded
    here (cryptography reads it as DER) and so known without asking cryptography to write it again. None for anything else
    (several blocks, other line lengths, CRLF, headers, text around), which cryptography's reader reads."""
    block = data.strip()
    if not (block.startswith(_PEM_BEGIN) and block.endswith(_PEM_END)):
        return None
    body = block[len(_PEM_BEGIN) : -len(_PEM_END)]
    try:
        der = binascii.a2b_base64(body)
    except binascii.Error:
        return None
    # a2b_base64 skips what is not base64 (a second block's markers, say): only the body written back from the
    # DER, byte for byte, is the one block read as it is. That is ``_pem_body(der)``, checked without writing its
    # lines: the base64 of the DER with a newline after every 64 characters and nowhere else.
    encoded = binascii.b2a_base64(der, newline=False)
    breaks = (len(encoded) - 1) // 64
    if not der or len(body) != len(encoded) + breaks or body[64::65] != b"\n" * breaks:
        return None
    return der if body.replace(b"\n", b"") == encoded else None


def pem_certificate(der: bytes) -> str:
    """The PEM text of a DER certificate: 64 columns, LF, one newline at the end."""
    return (_PEM_BEGIN + _pem_body(der) + _PEM_TEXT_END).decode("ascii")


def _pem_body(der: bytes) -> bytes:
    encoded = binascii.b2a_base64(der, newline=False)
    return b"\n".join([encoded[i : i + 64] for i in range(0, len(encoded), 64)])


def unreadable_reason(cert: x509.Certificate) -> str | None:
    """Why a parsed certificate cannot be used, or None. cryptography parses the names, the key, the signature
    algorithm and the extensions only on first use, so an unknown algorithm or a damaged extension would surface later,
    as an exception in whichever check touches it first."""
    return _unreadable_reason(cert, None)[0]


def _unreadable_reason(cert: x509.Certificate, der: bytes | None) -> tuple[str | None, str | None]:
    """``unreadable_reason``, and the subject as RFC 4514 text when it was read here rather than by cryptography
    (a plain name, ``_plain_name_text``: what cryptography reads without error and writes the same).

    ``der``, the certificate's DER when the caller has it, spares the names, keys and extensions already read: a
    self-signed certificate's issuer is its subject, and within ``parsed_once`` a name, key or set of extensions read
    in another certificate (their CA's name, a key two certificates share, the same extensions written by one tool)
    is not read again. Each is read from its own bytes alone, so the same bytes read the same way: about 7 us a
    name, 10 us an EC key and 9 us a CA's basic constraints."""
    parts = _encoded_parts(der) if der is not None else None
    known = _readable.get() if parts is not None else None
    subject = _plain_name_text(parts.subject) if parts is not None else None
    try:
        if subject is None:
            cert.subject  # noqa: B018  # each touched for its parse error
        if parts is None or (parts.issuer != parts.subject and (known is None or parts.issuer not in known.names)):
            cert.issuer  # noqa: B018
        if parts is None or known is None or parts.key not in known.keys:
            certificate_key(cert)
        cert.signature_hash_algorithm  # noqa: B018
        if parts is None or known is None or parts.extensions not in known.extensions:
            cert.extensions  # noqa: B018
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        # the last two are not ValueErrors: a damaged certificate that repeats an extension raised them untouched
        return str(exc) or type(exc).__name__, None
    if parts is not None and known is not None:
        known.names.update((parts.subject, parts.issuer))
        known.keys.add(parts.key)
        known.extensions.add(parts.extensions)
    return None, subject


# The attributes of a plain name (``_plain_name_text``), by the encoding of their OID: the short name cryptography
# writes for it, and the lengths it takes without a warning (``_NAMEOID_LENGTH_LIMIT``).
_PLAIN_ATTRIBUTES = {
    b"\x06\x03\x55\x04\x03": ("CN", 1, 64),
    b"\x06\x03\x55\x04\x06": ("C", 2, 2),
    b"\x06\x03\x55\x04\x07": ("L", 1, 255),
    b"\x06\x03\x55\x04\x08": ("ST", 1, 255),
    b"\x06\x03\x55\x04\x0a": ("O", 1, 255),
    b"\x06\x03\x55\x04\x0b": ("OU", 1, 255),
}
_UTF8_STRING, _PRINTABLE_STRING = 0x0C, 0x13
# A value RFC 4514 writes as it is (nothing to escape: no leading '#' or space, no trailing space, none of
# \ " + , ; < > NUL), in characters a PrintableString may hold, so that either string type reads it the same.
_PLAIN_VALUE = re.compile(rb"[A-Za-z0-9'()./:=?-](?:[A-Za-z0-9 '()./:=?-]*[A-Za-z0-9'()./:=?-])?")


def _plain_name_text(name: bytes) -> str | None:
    """The RFC 4514 text cryptography writes for the DER name ``name`` (``Name.rfc4514_string``), when the name is
    plain: each RDN one attribute of those above, a UTF8String or PrintableString value of plain characters and a
    length cryptography takes without a word. Most certificates' names are: reading them here spares building
    cryptography's objects for them (about 5 us a name). None for any other name, which cryptography reads."""
    try:
        if name[0] != 0x30 or _tlv_end(name, 0) != len(name):
            return None
        texts: list[str] = []
        pos = _value_start(name, 0)
        while pos < len(name):
            # SET { SEQUENCE { OID, value } }, every length in short form (what a plain name's parts need)
            if name[pos] != 0x31 or name[pos + 2] != 0x30 or name[pos + 4] != 0x06:
                return None
            end = pos + 2 + name[pos + 1]
            oid_end = pos + 6 + name[pos + 5]
            value_end = oid_end + 2 + name[oid_end + 1]
            if name[pos + 1] >= 0x80 or name[pos + 3] >= 0x80 or name[pos + 5] >= 0x80 or name[oid_end + 1] >= 0x80:
                return None
            if (
                pos + 4 + name[pos + 3] != end
                or value_end != end
                or name[oid_end] not in (_UTF8_STRING, _PRINTABLE_STRING)
            ):
                return None
            attribute = _PLAIN_ATTRIBUTES.get(name[pos + 4 : oid_end])
            value = name[oid_end + 2 : end]
            if attribute is None or not attribute[1] <= len(value) <= attribute[2] or not _PLAIN_VALUE.fullmatch(value):
                return None
            texts.append(f"{attribute[0]}={value.decode('ascii')}")
            pos = end
    except IndexError:
        return None
    return ",".join(reversed(texts)) if texts and pos == len(name) else None


class _EncodedParts(NamedTuple):
    issuer: bytes
    subject: bytes
    key: bytes  # the SubjectPublicKeyInfo
    # The rest of the TBSCertificate: the unique IDs and the extensions ([1], [2], [3]), which cryptography reads
    # (``Certificate.extensions``) from the [3] alone. Empty for a certificate without them.
    extensions: bytes


@dataclass
class _Readable:
    """The encodings of names and keys read without error in this run (``parsed_once``): public, and small."""

    names: set[bytes] = field(default_factory=set)
    keys: set[bytes] = field(default_factory=set)
    extensions: set[bytes] = field(default_factory=set)


_readable: ContextVar[_Readable | None] = ContextVar("readable_parts", default=None)


def _encoded_parts(der: bytes) -> _EncodedParts | None:
    """The encodings of a certificate's issuer, subject, key and what follows them, found by their place in its DER
    (RFC 5280 4.1): cryptography parsed it, so its lengths hold. None if they do not."""
    try:
        tbs = _value_start(der, 0)  # into the Certificate
        tbs_end = _tlv_end(der, tbs)
        pos = _value_start(der, tbs)  # into its TBSCertificate
        if der[pos] == 0xA0:  # [0] version
            pos = _tlv_end(der, pos)
        pos = _tlv_end(der, _tlv_end(der, pos))  # serialNumber, signature
        issuer_end = _tlv_end(der, pos)
        subject_start = _tlv_end(der, issuer_end)  # validity
        subject_end = _tlv_end(der, subject_start)
        key_end = _tlv_end(der, subject_end)
    except IndexError:
        return None
    if not key_end <= tbs_end <= len(der):
        return None
    return _EncodedParts(
        der[pos:issuer_end], der[subject_start:subject_end], der[subject_end:key_end], der[key_end:tbs_end]
    )


def _value_start(der: bytes, pos: int) -> int:
    first = der[pos + 1]
    return pos + 2 if first < 0x80 else pos + 2 + (first & 0x7F)


def _tlv_end(der: bytes, pos: int) -> int:
    first = der[pos + 1]
    if first < 0x80:
        return pos + 2 + first
    count = first & 0x7F
    return pos + 2 + count + int.from_bytes(der[pos + 2 : pos + 2 + count], "big")


def parse_stored_certificate(raw: bytes) -> tuple[x509.Certificate | None, CertEncoding]:
    """A certificate as a keystore stores it (should be DER). PEM is parsed too but reported as such; one that
    does not parse, or only partly (``unreadable_reason``), is "invalid"."""
    try:
        cert = x509.load_der_x509_certificate(raw)
        return (cert, "der") if unreadable_reason(cert) is None else (None, "invalid")
    except (ValueError, x509.InvalidVersion):
        pass
    if PEM_CERT_MARKER in raw:
        try:
            cert = x509.load_pem_x509_certificate(raw)
            return (cert, "pem") if unreadable_reason(cert) is None else (None, "invalid")
        except (ValueError, x509.InvalidVersion):
            return None, "invalid"
    return None, "invalid"


def _pem_kind(data: bytes) -> str:
    start = data.find(b"-----BEGIN ")
    end = data.find(b"-----", start + 11)
    if start < 0 or end < 0:
        return "non-certificate"
    label = data[start + 11 : end].decode("ascii", "replace")
    return "private key" if "PRIVATE KEY" in label else repr(label)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, upper-case hex pairs joined by ':' (as keytool and browsers show it)."""
    return cert.fingerprint(_SHA256).hex(":").upper()


def cert_sha256(cert: x509.Certificate) -> str:
    """SHA-256 of the DER as plain lower-case hex (for canonical models and comparisons)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def spki_sha256(public_key: Any) -> str:
    """Hex SHA-256 of a public key's SubjectPublicKeyInfo (DER)."""
    if isinstance(public_key, DsaPublicKey):
        return hashlib.sha256(public_key.spki_der()).hexdigest()
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def certificate_key(cert: x509.Certificate) -> Any:
    """The certificate's public key; a DSA key as ``DsaPublicKey``, never through cryptography's deprecated DSA
    API (see ``dsa_keys``). Raises ValueError (or UnsupportedAlgorithm) when the key cannot be read."""
    return certificate_public_key(cert) if is_dsa_certificate(cert) else cert.public_key()


def cert_spki_sha256(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the certificate's SubjectPublicKeyInfo: what pairs a certificate with its private key."""
    return spki_sha256(certificate_key(cert))


def describe_certificate_key(cert: x509.Certificate) -> tuple[str, int | None, str | None]:
    """(algorithm, size in bits, curve name) of the certificate's key."""
    return describe_public_key(certificate_key(cert))


def describe_public_key(public_key: Any) -> tuple[str, int | None, str | None]:
    """(algorithm, size in bits, curve name) of a public (or private) key."""
    if isinstance(public_key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RSA", public_key.key_size, None
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return "EC", public_key.curve.key_size, public_key.curve.name
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519", 256, None
    if isinstance(public_key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448", 456, None
    if isinstance(public_key, DsaPublicKey):
        return "DSA", public_key.key_size, None
    return type(public_key).__name__, None, None


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def utc_text(value: dt.datetime) -> str:
    """A UTC time as the instance shows a certificate's dates: "YYYY-MM-DD HH:MM:SS"."""
    if value.year >= 1000:  # strftime's %Y does not pad a year to four digits, this does
        # isoformat(" ", "seconds")[:19], without writing the offset that is cut off (0.9 -> 0.6 us a certificate)
        return "%04d-%02d-%02d %02d:%02d:%02d" % (  # noqa: UP031  # an f-string of six padded fields: twice as slow
            value.year, value.month, value.day, value.hour, value.minute, value.second,
        )  # fmt: skip
    return value.strftime("%Y-%m-%d %H:%M:%S")


def not_before(cert: x509.Certificate) -> dt.datetime:
    return _utc(cert.not_valid_before_utc)


def not_after(cert: x509.Certificate) -> dt.datetime:
    return _utc(cert.not_valid_after_utc)


def extended_key_usages(cert: x509.Certificate) -> tuple[str, ...] | None:
    """EKU names, or None when the certificate has no EKU extension (any purpose)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return None
    return tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in ext.value)


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer`` signed ``cert``: names chain and the signature verifies."""
    if cert.issuer != issuer.subject:
        return False
    if is_dsa_certificate(issuer):
        return _verify_dsa_signature(cert, issuer)
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return False
    except (ValueError, TypeError):
        # cryptography refuses legacy signature algorithms (SHA-1) outright; such chains still exist in the
        # wild and must be ordered and then flagged (K12), not reported as broken.
        return _verify_legacy_signature(cert, issuer)
    return True


def _verify_dsa_signature(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    # Any hash (SHA-1 as well as SHA-2): DSA-signed chains are legacy by nature, and ordered before K12 flags them.
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or cert.signature_algorithm_oid.dotted_string not in _DSA_SIGNATURES:
        return False
    try:
        public_key = certificate_public_key(issuer)
    except ValueError:
        return False
    return public_key.verify(cert.signature, cert.tbs_certificate_bytes, algorithm)


# dsa-with-sha1 (RFC 3279), dsa-with-sha224/256 (RFC 5758) and -sha384/512 (NIST)
_DSA_SIGNATURES = frozenset({"1.2.840.10040.4.3", *(f"2.16.840.1.101.3.4.3.{n}" for n in range(1, 5))})


def _verify_legacy_signature(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    algorithm = cert.signature_hash_algorithm
    if algorithm is None:
        return False
    public_key = issuer.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)


def subject_alt_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = []
    for general in ext.value:
        if isinstance(general, x509.DNSName):
            names.append(f"DNS:{general.value}")
        elif isinstance(general, x509.IPAddress):
            names.append(f"IP:{general.value}")
        elif isinstance(general, x509.RFC822Name):
            names.append(f"email:{general.value}")
        elif isinstance(general, x509.UniformResourceIdentifier):
            names.append(f"URI:{general.value}")
        else:
            names.append(str(general.value))
    return tuple(names)


@dataclass(frozen=True)
class CertificateInfo:
    """What a person checks on a certificate, as plain values."""

    subject: str
    issuer: str
    serial: str  # hex, upper-case, as keytool shows it
    serial_positive: bool  # RFC 5280 forbids a negative or zero serial (lint K14/T03); Java accepts one
    not_before: dt.datetime
    not_after: dt.datetime
    sha256: str  # AA:BB:... fingerprint of the DER
    key_algorithm: str
    key_size: int | None
    key_curve: str | None
    signature_algorithm: str
    extended_key_usage: tuple[str, ...] | None  # None: no EKU extension
    subject_alt_names: tuple[str, ...]
    is_ca: bool
    self_signed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "serial_positive": self.serial_positive,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "sha256": self.sha256,
            "key_algorithm": self.key_algorithm,
            "key_size": self.key_size,
            "key_curve": self.key_curve,
            "signature_algorithm": self.signature_algorithm,
            "extended_key_usage": list(self.extended_key_usage) if self.extended_key_usage is not None else None,
            "subject_alt_names": list(self.subject_alt_names),
            "is_ca": self.is_ca,
            "self_signed": self.self_signed,
        }


def signature_algorithm_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    name = getattr(oid, "_name", None)
    return name if isinstance(name, str) and name != "Unknown OID" else oid.dotted_string


def serial_hex(cert: x509.Certificate) -> str:
    return serial_number_hex(cert.serial_number)


def serial_number_hex(serial: int) -> str:
    """The serial number in upper-case hex, as keytool shows it ("-5" for a negative one)."""
    return format(serial, "X")


def serial_is_positive(cert: x509.Certificate) -> bool:
    return serial_number_is_positive(cert.serial_number)


def serial_number_is_positive(serial: int) -> bool:
    """RFC 5280 4.1.2.2 requires a positive serial; some old and private CAs issued negative or zero ones."""
    return serial > 0


def certificate_info(cert: x509.Certificate) -> CertificateInfo:
    algorithm, size, curve = describe_certificate_key(cert)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=serial_hex(cert),
        serial_positive=serial_is_positive(cert),
        not_before=not_before(cert),
        not_after=not_after(cert),
        sha256=fingerprint(cert),
        key_algorithm=algorithm,
        key_size=size,
        key_curve=curve,
        signature_algorithm=signature_algorithm_name(cert),
        extended_key_usage=extended_key_usages(cert),
        subject_alt_names=subject_alt_names(cert),
        is_ca=is_ca(cert),
        self_signed=is_self_signed(cert),
    )


def dedupe(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen: dict[bytes, x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(cert.fingerprint(_SHA256), cert)
    return list(seen.values())


def build_chain(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """Order ``pool`` behind ``leaf`` by following issuers (name and signature). Returns (chain leaf->..., unused)."""
    chain = [leaf]
    remaining = [c for c in dedupe(pool) if c.fingerprint(_SHA256) != leaf.fingerprint(_SHA256)]
    while not is_self_signed(chain[-1]):
        parent = next((c for c in remaining if issued_by(chain[-1], c)), None)
        if parent is None:
            break
        chain.append(parent)
        remaining.remove(parent)
    return chain, remaining


def chain_break(chain: Sequence[x509.Certificate]) -> int | None:
    """Index i where chain[i] is not issued by chain[i+1] (name or signature), or None when the chain links."""
    for i in range(len(chain) - 1):
        if not issued_by(chain[i], chain[i + 1]):
            return i
    return None


def short_name(cert: x509.Certificate) -> str:
    """The subject's CN when there is one, else the whole subject: short enough for a one-line message."""
    return short_dn(cert.subject)


def short_dn(name: x509.Name) -> str:
    """A distinguished name's CN when it has one, else the whole name (a certificate's issuer, say)."""
    cns = name.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    if cns:
        value = cns[0].value
        return f"CN={value if isinstance(value, str) else value.decode('utf-8', 'replace')}"
    return name.rfc4514_string() or "(empty subject)"
