"""Within ``parsed_once``, load_certificates keeps what it parsed by the digest of the bytes: the same bytes parse
once, other bytes are other entries, failures are never kept, and neither are the bytes (a file may hold a
private key too). Outside the block nothing is kept."""

from __future__ import annotations

import pytest

from mtls_config.errors import KeystoreError
from mtls_config.keystore import certs
from mtls_config.keystore.certs import fingerprint, load_certificates, parsed_once
from tests.keystore.conftest import DER, Pki, key_pem, pem


def test_same_bytes_give_the_same_certificates_in_a_list_of_their_own(pki: Pki) -> None:
    data = pem(pki.ica, pki.root)
    with parsed_once():
        first = load_certificates(data)
        first.append(pki.ica)  # a caller's list is its own
        again = load_certificates(data)
        assert again[0] is first[0]  # parsed once
    assert [fingerprint(c) for c in again] == [fingerprint(pki.ica), fingerprint(pki.root)]


def test_nothing_is_kept_outside_the_block(pki: Pki) -> None:
    data = pem(pki.root)
    with parsed_once():
        inside = load_certificates(data)
    assert certs._parsed.get() is None
    assert load_certificates(data)[0] is not inside[0]
    assert load_certificates(data)[0] is not load_certificates(data)[0]


def test_other_bytes_of_the_same_certificate_and_other_certificates_are_read_as_they_are(pki: Pki) -> None:
    with parsed_once():
        assert [fingerprint(c) for c in load_certificates(pem(pki.root))] == [fingerprint(pki.root)]
        assert [fingerprint(c) for c in load_certificates(pki.root.public_bytes(DER))] == [fingerprint(pki.root)]
        assert [fingerprint(c) for c in load_certificates(pem(pki.ica))] == [fingerprint(pki.ica)]


def test_damaged_data_fails_every_time() -> None:
    damaged = b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
    with parsed_once():
        for _ in range(2):
            with pytest.raises(KeystoreError, match="cannot parse"):
                load_certificates(damaged)


def test_a_private_key_next_to_the_certificate_is_not_kept(pki: Pki) -> None:
    key = key_pem(pki.key("ec"))
    data = pem(pki.root) + key
    with parsed_once():
        assert [fingerprint(c) for c in load_certificates(data)] == [fingerprint(pki.root)]
        kept = certs._parsed.get()
        assert kept is not None and len(kept) == 1
        for digest, parsed in kept.items():
            assert len(digest) == 32 and key not in digest
            assert all(isinstance(c, type(pki.root)) for c in parsed)
