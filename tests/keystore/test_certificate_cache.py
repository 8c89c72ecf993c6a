"""load_certificates keeps what it parsed by the digest of the bytes: the same bytes parse once, other bytes are
other entries, failures are never kept, and neither are the bytes (a file may hold a private key too)."""

from __future__ import annotations

import pytest

from mtls_config.errors import KeystoreError
from mtls_config.keystore import certs
from mtls_config.keystore.certs import fingerprint, load_certificates
from tests.keystore.conftest import DER, Pki, key_pem, pem


def test_same_bytes_give_the_same_certificates_in_a_list_of_their_own(pki: Pki) -> None:
    data = pem(pki.ica, pki.root)
    first = load_certificates(data)
    first.append(pki.ica)  # a caller's list is its own
    again = load_certificates(data)
    assert [fingerprint(c) for c in again] == [fingerprint(pki.ica), fingerprint(pki.root)]


def test_other_bytes_of_the_same_certificate_and_other_certificates_are_read_as_they_are(pki: Pki) -> None:
    assert [fingerprint(c) for c in load_certificates(pem(pki.root))] == [fingerprint(pki.root)]
    assert [fingerprint(c) for c in load_certificates(pki.root.public_bytes(DER))] == [fingerprint(pki.root)]
    assert [fingerprint(c) for c in load_certificates(pem(pki.ica))] == [fingerprint(pki.ica)]


def test_damaged_data_fails_every_time() -> None:
    damaged = b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    for _ in range(2):
        with pytest.raises(KeystoreError, match="cannot parse"):
            load_certificates(damaged)


def test_a_private_key_next_to_the_certificate_is_not_kept(pki: Pki) -> None:
    key = key_pem(pki.key("ec"))
    data = pem(pki.root) + key
    assert [fingerprint(c) for c in load_certificates(data)] == [fingerprint(pki.root)]
    for digest, parsed in certs._parsed.items():
        assert len(digest) == 32 and key not in digest
        assert all(isinstance(c, type(pki.root)) for c in parsed)


def test_the_cache_is_bounded(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(certs, "_PARSED_MAX", 2)
    monkeypatch.setattr(certs, "_parsed", {})
    for data in (pem(pki.root), pem(pki.ica), pki.root.public_bytes(DER), pki.ica.public_bytes(DER)):
        load_certificates(data)
    assert len(certs._parsed) == 2
    assert [fingerprint(c) for c in load_certificates(pem(pki.root))] == [fingerprint(pki.root)]
