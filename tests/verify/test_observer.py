"""The TLS message parsers and the Java-parity rule, on crafted wire bytes and real certificates."""

from __future__ import annotations

import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from mtls_config.verify.javaparity import java_would_send, matching_issuers
from mtls_config.verify.observer import (
    HandshakeObserver,
    canonical_name,
    canonical_name_of,
    display_name,
    name_attributes,
    parse_certificate_message,
    parse_certificate_request,
)
from tests.verify.conftest import PKI


def vec(width: int, data: bytes) -> bytes:
    return len(data).to_bytes(width, "big") + data


def names_block(*names: x509.Name) -> bytes:
    return vec(2, b"".join(vec(2, n.public_bytes()) for n in names))


def test_tls12_certificate_request(pki: PKI) -> None:
    body = vec(1, b"\x01\x40") + vec(2, b"\x04\x03\x08\x04") + names_block(pki.client_root.cert.subject)
    info = parse_certificate_request(body, tls13=False)
    assert info.certificate_types == (1, 64)
    assert [display_name(d) for d in info.ca_names_der] == [pki.client_root.name]


def test_tls13_certificate_request_extension_47(pki: PKI) -> None:
    sigalgs = struct.pack(">HH", 13, 4) + vec(2, b"\x04\x03")
    cas = struct.pack(">H", 47) + vec(2, names_block(pki.client_root.cert.subject, pki.client_ica.cert.subject))
    body = vec(1, b"") + vec(2, sigalgs + cas)
    info = parse_certificate_request(body, tls13=True)
    assert [display_name(d) for d in info.ca_names_der] == [pki.client_root.name, pki.client_ica.name]


def test_tls13_certificate_request_without_names() -> None:
    body = vec(1, b"") + vec(2, struct.pack(">HH", 13, 4) + vec(2, b"\x04\x03"))
    assert parse_certificate_request(body, tls13=True).ca_names_der == ()


@pytest.mark.parametrize("tls13", [False, True])
def test_certificate_message(pki: PKI, tls13: bool) -> None:
    ders = [pki.client.cert.public_bytes(serialization.Encoding.DER)]
    entries = b"".join(vec(3, d) + (vec(2, b"") if tls13 else b"") for d in ders)
    body = (vec(1, b"") if tls13 else b"") + vec(3, entries)
    assert parse_certificate_message(body, tls13=tls13) == ders


def test_truncated_certificate_request_is_recorded_not_raised() -> None:
    observer = HandshakeObserver()
    observer._on_message(None, "read", 0x0303, 22, 13, bytes([13, 0, 0, 9]) + b"\x05\x01")
    assert observer.requested and observer.certificate_request is None
    assert observer.certificate_request_unparsable


def test_a_malformed_message_never_raises_into_openssl() -> None:
    observer = HandshakeObserver()
    observer._on_message(None, "read", 0x0304, 22, 11, bytes([11, 0, 0, 5]) + b"\x00\x00\x00\x09\x01")
    observer._on_message(None, "read", 0x0304, 22, 13, b"")
    assert observer.server_certificates_der == [] and observer.certificate_request is None


def test_alerts_are_recorded_by_direction() -> None:
    observer = HandshakeObserver()
    observer._on_message(None, "read", 0x0303, 21, 2, b"\x02\x30")
    observer._on_message(None, "write", 0x0303, 21, 2, b"\x02\x2a")
    assert observer.last_alert_received == 48
    assert observer.alerts_sent == [(2, 42)]


def test_name_parser_agrees_with_cryptography() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Grüne Wiese, GmbH"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Issuing CA 2"),
        ]
    )
    assert display_name(name.public_bytes()) == name.rfc4514_string()
    assert name_attributes(name.public_bytes())[0] == [("2.5.4.6", "DE")]


def test_canonical_names_ignore_case_and_spacing() -> None:
    a = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Client  Root CA")])
    b = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client root ca")])
    assert canonical_name_of(a) == canonical_name_of(b)
    assert canonical_name(name_attributes(a.public_bytes())) != canonical_name_of(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other CA")])
    )


def test_garbage_name_is_shown_as_hex() -> None:
    assert display_name(b"\x04\x01x") == "#040178"


# The rule, case by case: which key-entry chains SunX509 presents for which advertised CA names.
PARITY_CASES = [
    ("leaf only, root advertised", ["client"], ["client_root"], False),
    ("leaf only, intermediate advertised", ["client"], ["client_ica"], True),
    ("full chain, root advertised", ["client", "client_ica", "client_root"], ["client_root"], True),
    ("leaf+intermediate, root advertised", ["client", "client_ica"], ["client_root"], True),
    ("nothing advertised", ["client"], [], True),
    ("foreign CA advertised", ["client", "client_ica"], ["foreign_root"], False),
]


@pytest.mark.parametrize(
    ("chain", "advertised", "sends"), [c[1:] for c in PARITY_CASES], ids=[c[0] for c in PARITY_CASES]
)
def test_java_parity(pki: PKI, chain: list[str], advertised: list[str], sends: bool) -> None:
    certs = [getattr(pki, c).cert for c in chain]
    names = [getattr(pki, a).cert.subject.public_bytes() for a in advertised]
    assert java_would_send(certs, names) is sends
    assert bool(matching_issuers(certs, names)) is (sends and bool(advertised))
