"""Watch a TLS handshake from the inside: CertificateRequest and its CA names, certificates, alerts.

Python's ``ssl`` gives no public way to see whether the server asked for a client certificate, which CA names
it advertised, or which alert it sent. The private ``SSLContext._msg_callback`` hook (CPython 3.8+, undocumented)
sees every handshake message and alert, decrypted, in TLS 1.2 and 1.3. We use it when it is there and say
"could not observe" when it is not (``HandshakeObserver.available``): no verify result depends on it silently.

Wire formats parsed (RFC 5246 7.4.2/7.4.4, RFC 8446 4.3.2/4.4.2/4.2.4):
- TLS 1.2 CertificateRequest: certificate_types<1..2^8-1>, signature_algorithms<2..2^16-2>,
  certificate_authorities<0..2^16-1> of DistinguishedName<1..2^16-1>.
- TLS 1.3 CertificateRequest: certificate_request_context<0..2^8-1>, extensions<2..2^16-1>; the CA names are
  extension 47 (certificate_authorities).
- Certificate: (1.3 only: request context<0..2^8-1>), certificate_list<0..2^24-1> of cert_data<1..2^24-1>
  (1.3: each followed by extensions<0..2^16-1>).

Parsing never raises into OpenSSL: a malformed message is recorded as unparsable.
Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import ssl
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

# TLS constants (IANA registries); the ssl module's enums for them are private.
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
HS_NEW_SESSION_TICKET = 4
HS_CERTIFICATE = 11
HS_CERTIFICATE_REQUEST = 13
EXT_CERTIFICATE_AUTHORITIES = 47
TLS13 = 0x0304

ALERT_NAMES = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}


class _Malformed(ValueError):
    pass


class _Reader:
    """A bounds-checked cursor over TLS vectors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Malformed("truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def vector(self, length_width: int) -> bytes:
        return self.take(self.uint(length_width))

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


@dataclass(frozen=True)
class CertificateRequestInfo:
    tls13: bool
    ca_names_der: tuple[bytes, ...]
    certificate_types: tuple[int, ...] = ()  # TLS 1.2 only


def parse_certificate_request(body: bytes, *, tls13: bool) -> CertificateRequestInfo:
    """Parse a CertificateRequest body (without the 4-byte handshake header)."""
    r = _Reader(body)
    names: list[bytes] = []
    if tls13:
        r.vector(1)  # certificate_request_context
        ext = _Reader(r.vector(2))
        while not ext.done:
            ext_type = ext.uint(2)
            ext_data = ext.vector(2)
            if ext_type == EXT_CERTIFICATE_AUTHORITIES:
                names.extend(_names(_Reader(_Reader(ext_data).vector(2))))
        return CertificateRequestInfo(True, tuple(names))
    types = tuple(r.vector(1))
    r.vector(2)  # supported_signature_algorithms
    names.extend(_names(_Reader(r.vector(2))))
    return CertificateRequestInfo(False, tuple(names), types)


def _names(r: _Reader) -> list[bytes]:
    out = []
    while not r.done:
        out.append(r.vector(2))
    return out


def parse_certificate_message(body: bytes, *, tls13: bool) -> list[bytes]:
    """The DER certificates in a Certificate message body, in the order sent."""
    r = _Reader(body)
    if tls13:
        r.vector(1)
    certs = _Reader(r.vector(3))
    out = []
    while not certs.done:
        out.append(certs.vector(3))
        if tls13:
            certs.vector(2)  # per-certificate extensions
    return out


# --- Distinguished names from DER -----------------------------------------------------------------------------
# cryptography can build a Name but not load one from DER, so a minimal DER walker reads the CA names.

_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1A: "ascii", 0x1E: "utf-16-be"}


def _der_item(r: _Reader) -> tuple[int, bytes]:
    tag = r.uint(1)
    first = r.uint(1)
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise _Malformed("unsupported DER length")
        length = r.uint(count)
    return tag, r.take(length)


def _oid(content: bytes) -> str:
    if not content:
        raise _Malformed("empty OID")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def name_attributes(der: bytes) -> list[list[tuple[str, str]]]:
    """A DER Name as RDNs of (dotted OID, string value). Raises ValueError when it is not a Name."""
    outer = _Reader(der)
    tag, content = _der_item(outer)
    if tag != 0x30 or not outer.done:
        raise _Malformed("not a SEQUENCE")
    rdns: list[list[tuple[str, str]]] = []
    seq = _Reader(content)
    while not seq.done:
        tag, rdn_content = _der_item(seq)
        if tag != 0x31:
            raise _Malformed("RDN is not a SET")
        rdn: list[tuple[str, str]] = []
        rdn_reader = _Reader(rdn_content)
        while not rdn_reader.done:
            tag, atv = _der_item(rdn_reader)
            if tag != 0x30:
                raise _Malformed("attribute is not a SEQUENCE")
            atv_reader = _Reader(atv)
            oid_tag, oid_content = _der_item(atv_reader)
            if oid_tag != 0x06:
                raise _Malformed("attribute type is not an OID")
            value_tag, value_content = _der_item(atv_reader)
            encoding = _STRING_TAGS.get(value_tag)
            value = value_content.decode(encoding, "replace") if encoding else "#" + value_content.hex()
            rdn.append((_oid(oid_content), value))
        rdns.append(rdn)
    return rdns


def canonical_name(rdns: list[list[tuple[str, str]]]) -> tuple[frozenset[tuple[str, str]], ...]:
    """A comparison key close to Java's X500Principal equality (RFC 2253 canonical form): string types
    ignored, case folded, inner whitespace collapsed."""

    def norm(value: str) -> str:
        return " ".join(unicodedata.normalize("NFKD", value).casefold().split())

    return tuple(frozenset((oid, norm(v)) for oid, v in rdn) for rdn in rdns)


def canonical_name_of(name: x509.Name) -> tuple[frozenset[tuple[str, str]], ...]:
    return canonical_name(name_attributes(name.public_bytes()))


def display_name(der: bytes) -> str:
    """RFC 4514 text of a DER Name, or its hex when it does not parse."""
    try:
        rdns = name_attributes(der)
        name = x509.Name(
            [
                x509.RelativeDistinguishedName([x509.NameAttribute(ObjectIdentifier(oid), v) for oid, v in rdn])
                for rdn in rdns
            ]
        )
        return name.rfc4514_string()
    except ValueError:
        return "#" + der.hex()


# --- The hook ---------------------------------------------------------------------------------------------------


@dataclass
class HandshakeObserver:
    """Collects what the message hook reports during one connection. Thread-safe enough for one connection:
    OpenSSL calls the hook on the thread doing the I/O."""

    available: bool = False
    certificate_request: CertificateRequestInfo | None = None
    certificate_request_unparsable: bool = False
    server_certificates_der: list[bytes] = field(default_factory=list)
    client_certificates_sent: int | None = None
    alerts_received: list[tuple[int, int]] = field(default_factory=list)  # (level, description)
    alerts_sent: list[tuple[int, int]] = field(default_factory=list)
    session_tickets: int = 0  # TLS 1.3: an OpenSSL-based server sends them once it accepted our certificate
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def attach(self, ctx: ssl.SSLContext) -> None:
        """Install the hook on ``ctx`` (one observer per context). Leaves ``available`` False if the private
        hook is missing or refuses the callback."""
        if not hasattr(ctx, "_msg_callback"):
            return
        try:
            ctx._msg_callback = self._on_message
        except (AttributeError, TypeError, NotImplementedError):
            return
        self.available = True

    def _on_message(
        self, conn: Any, direction: str, version: int, content_type: int, msg_type: int, data: bytes
    ) -> None:
        try:
            self._record(direction, int(version), int(content_type), bytes(data))
        except Exception:
            if int(content_type) == CONTENT_HANDSHAKE and data[:1] == bytes([HS_CERTIFICATE_REQUEST]):
                self.certificate_request_unparsable = True

    def _record(self, direction: str, version: int, content_type: int, data: bytes) -> None:
        with self._lock:
            if content_type == CONTENT_ALERT and len(data) >= 2:
                (self.alerts_received if direction == "read" else self.alerts_sent).append((data[0], data[1]))
                return
            if content_type != CONTENT_HANDSHAKE or len(data) < 4:
                return
            msg_type = data[0]
            body = data[4:]
            tls13 = version == TLS13
            if direction == "read" and msg_type == HS_NEW_SESSION_TICKET:
                self.session_tickets += 1
            elif direction == "read" and msg_type == HS_CERTIFICATE_REQUEST:
                try:
                    self.certificate_request = parse_certificate_request(body, tls13=tls13)
                except _Malformed:
                    self.certificate_request_unparsable = True
            elif msg_type == HS_CERTIFICATE:
                try:
                    certs = parse_certificate_message(body, tls13=tls13)
                except _Malformed:
                    return
                if direction == "read":
                    self.server_certificates_der = certs
                else:
                    self.client_certificates_sent = len(certs)

    @property
    def requested(self) -> bool:
        return self.certificate_request is not None or self.certificate_request_unparsable

    @property
    def last_alert_received(self) -> int | None:
        """The description code of the last fatal alert the server sent (close_notify ignored)."""
        for _level, description in reversed(self.alerts_received):
            if description != 0:
                return description
        return None
