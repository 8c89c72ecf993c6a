"""``checked_certificates`` and ``load_certificates`` read certificates as they always have (cryptography's PEM
reader, then every name, the key, the signature algorithm and the extensions touched for their errors), with
three cuts: one plain PEM block is decoded here and read as DER, its DER is not written again to be hashed, and a
name, key or set of extensions already read in the run (a self-signed certificate's issuer, a CA's name, a shared
key, the extensions one tool writes alike) is not read again. Each case here is checked against that reading, written out below as it was, in one run (``parsed_once``)
as a plan reads a stack's certificates: the same certificates with the same values, or the same error."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtls_config.errors import KeystoreError
from mtls_config.keystore import certs
from mtls_config.keystore.certs import (
    PEM_CERT_MARKER,
    checked_certificates,
    load_certificates,
    parsed_once,
    pem_certificate,
    plain_pem_der,
    unreadable_reason,
)
from tests.keystore.conftest import DER, Pki, key_pem, pem
from tests.pki import CA, dn

# the reading written out here parses in this module, which the package's filter of that warning does not cover
# (a damaged serial may turn negative)
pytestmark = pytest.mark.filterwarnings(
    "ignore:Parsed a serial number which wasn't positive:cryptography.utils.CryptographyDeprecationWarning"
)

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "examples" / "two-partners" / "certs"
CERT_PEM = (EXAMPLE / "acme-server-ca.pem").read_bytes()
CERT_DER = (EXAMPLE / "globex-server.der").read_bytes()

Reading = str | list[tuple[bytes, str, str, dt.datetime, dt.datetime, int]]


def as_read_before(data: bytes) -> Reading:
    """The reading before the cuts: cryptography's PEM reader for any PEM, each certificate checked whole. The
    error's message, or per certificate (DER, subject, short name, not before, not after, serial)."""
    stripped = data.lstrip()
    try:
        if stripped.startswith(b"-----BEGIN") or PEM_CERT_MARKER in data:
            if PEM_CERT_MARKER not in data:
                return "no certificate in this PEM data"
            try:
                found = x509.load_pem_x509_certificates(data)
            except (ValueError, x509.InvalidVersion):
                return "cannot parse the PEM certificate data (damaged base64 or not X.509)"
        elif not data:
            return "no certificate: the data is empty"
        else:
            try:
                found = [x509.load_der_x509_certificate(data)]
            except (ValueError, x509.InvalidVersion):
                return "not a certificate: neither PEM ('-----BEGIN CERTIFICATE-----') nor DER X.509"
        for index, cert in enumerate(found):
            reason = unreadable_reason(cert)  # no DER given: every part read
            if reason is not None:
                return f"certificate {index} cannot be read: {reason}"
        return [
            (
                cert.public_bytes(DER),
                cert.subject.rfc4514_string(),
                certs.short_name(cert),
                certs.not_before(cert),
                certs.not_after(cert),
                cert.serial_number,
            )
            for cert in found
        ]
    except KeystoreError as exc:  # pragma: no cover - the reading above raises none
        return exc.message


def as_read_now(data: bytes) -> Reading:
    try:
        checked = checked_certificates(data)
        loaded = load_certificates(data)
    except KeystoreError as exc:
        return exc.message
    assert [c.public_bytes(DER) for c in loaded] == [c.der for c in checked]
    for c in checked:
        assert c.sha256 == hashlib.sha256(c.der).digest()
        assert c.fingerprint == certs.fingerprint(x509.load_der_x509_certificate(c.der))
    return [(c.der, c.subject, c.short_name, c.not_before, c.not_after, c.serial) for c in checked]


def assert_read_as_before(data: bytes) -> None:
    before, now = as_read_before(data), as_read_now(data)
    if isinstance(before, str) and before == "no certificate in this PEM data":
        assert isinstance(now, str) and now.startswith(before)
    else:
        assert now == before


def _wrapped(der: bytes, width: int = 64, newline: bytes = b"\n") -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return newline.join([b"-----BEGIN CERTIFICATE-----", *lines, b"-----END CERTIFICATE-----"]) + newline


def test_every_encoding_of_the_example_certificates_reads_as_before(pki: Pki) -> None:
    der = x509.load_pem_x509_certificate(CERT_PEM).public_bytes(DER)
    plain = _wrapped(der)
    cases = [
        CERT_PEM,
        CERT_DER,
        plain,
        b"\n  " + plain + b"\n\n",  # whitespace around the one block
        plain.rstrip(b"\n"),
        _wrapped(der, newline=b"\r\n"),
        _wrapped(der, width=76),
        _wrapped(der, width=10_000),
        b"the partner's CA\n" + plain + b"(end)\n",  # text around
        plain + _wrapped(CERT_DER),  # two blocks
        plain.replace(b"BEGIN CERTIFICATE", b"BEGIN X509 CERTIFICATE").replace(b"END CERT", b"END X509 CERT"),
        plain.replace(b"-----\n", b"-----\nProc-Type: 4,ENCRYPTED\n\n", 1),  # a header
        plain + key_pem(pki.key("ec")),
        key_pem(pki.key("ec")),
        CERT_DER + b"\x00",  # bytes after the DER
        b"",
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
        pem(pki.ica, pki.root),
        pem(pki.root),
    ]
    with parsed_once():
        for data in cases:
            assert_read_as_before(data)
            assert_read_as_before(data)  # again, as lint reads what the desired state read


def test_only_one_block_in_the_form_openssl_writes_is_decoded_here() -> None:
    der = CERT_DER
    assert plain_pem_der(_wrapped(der)) == der
    assert plain_pem_der(b"\n " + _wrapped(der) + b" \n") == der
    assert pem_certificate(der).encode() == _wrapped(der)
    for other in (
        _wrapped(der, width=76),
        _wrapped(der, newline=b"\r\n"),
        _wrapped(der) + _wrapped(der),
        b"text\n" + _wrapped(der),
        b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    ):
        assert plain_pem_der(other) is None
    # base64 whose last character carries bits the DER has not: cryptography's reader decides what it is
    body = base64.b64encode(der)
    assert body.endswith(b"=")  # 1 or 2 bytes in the last group: unused bits to set
    last = body.rstrip(b"=")[-1:]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    odd = body.rstrip(b"=")[:-1] + alphabet[alphabet.index(last) + 1 : alphabet.index(last) + 2]
    padded = odd + b"=" * (len(body) - len(body.rstrip(b"=")))
    damaged = b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(padded[i : i + 64] for i in range(0, len(padded), 64))
    damaged += b"\n-----END CERTIFICATE-----\n"
    assert plain_pem_der(damaged) is None
    with parsed_once():
        assert_read_as_before(damaged)


def _ca_with_country() -> tuple[CA, x509.Certificate]:
    ca = CA.root(dn("Checked Root", organization="Checked", country="US"), key_type="ec-p256")
    return ca, ca.issue("partner.example", key_type="ec-p256").cert


def test_a_damaged_name_or_key_fails_though_a_certificate_before_it_had_the_same_issuer_and_key() -> None:
    ca, leaf = _ca_with_country()
    der = leaf.public_bytes(DER)
    # the issuer's CN (a UTF8String) tagged NULL: cryptography reads the names only when asked for them
    cn = b"\x0c\x0cChecked Root"
    assert der.index(cn) < der.index(leaf.subject.public_bytes())  # the first is the issuer's
    damaged_issuer = der.replace(cn, b"\x05" + cn[1:], 1)
    # the EC point's first byte (0x04: uncompressed) made one no point has
    damaged_key = der.replace(b"\x03\x42\x00\x04", b"\x03\x42\x00\x05", 1)
    assert damaged_issuer != der and damaged_key != der
    with parsed_once():
        assert_read_as_before(pem_certificate(ca.cert.public_bytes(DER)).encode())
        assert_read_as_before(pem_certificate(der).encode())  # its issuer and key are known now
        for damaged in (damaged_issuer, damaged_key):
            before = as_read_before(damaged)
            assert isinstance(before, str) and before.startswith("certificate 0 cannot be read")
            assert_read_as_before(damaged)
            assert_read_as_before(pem_certificate(damaged).encode())


def test_damaged_extensions_fail_though_a_certificate_before_them_had_the_same_ones_readable() -> None:
    ca = CA.root(dn("Checked Root"), key_type="ec-p256")
    key = ca.issue("first.example").key
    first, second = (ca.sign(name, key.public_key()).public_bytes(DER) for name in ("a.example", "b.example"))
    # the key usage's BIT STRING tagged NULL: cryptography reads the extensions only when asked for them
    usage = b"\x04\x04\x03\x02\x07\x80"
    assert first.count(usage) == 1 and second.count(usage) == 1
    damaged = second.replace(usage, b"\x04\x04\x05" + usage[3:])
    with parsed_once():
        assert_read_as_before(first)
        assert_read_as_before(pem_certificate(second).encode())  # the same extensions: read as known
        for data in (damaged, pem_certificate(damaged).encode()):
            before = as_read_before(data)
            assert isinstance(before, str) and before.startswith("certificate 0 cannot be read")
            assert_read_as_before(data)
            with pytest.raises(KeystoreError, match=r"^certificate 0 cannot be read: "):
                checked_certificates(data)  # (alone: as_read_now asks load_certificates too)
        known = certs._readable.get()
        assert known is not None and len(known.extensions) == 1


def test_the_names_and_keys_read_are_kept_for_the_run_only_and_are_public() -> None:
    ca, leaf = _ca_with_country()
    data = pem_certificate(leaf.public_bytes(DER)).encode()
    checked_certificates(data)
    assert certs._readable.get() is None  # outside a run: nothing kept
    with parsed_once():
        checked_certificates(data)
        known = certs._readable.get()
        assert known is not None
        assert known.names == {leaf.subject.public_bytes(), ca.cert.subject.public_bytes()}
        spki = leaf.public_key().public_bytes(DER, certs.serialization.PublicFormat.SubjectPublicKeyInfo)
        assert known.keys == {spki}
        tbs = leaf.tbs_certificate_bytes
        assert known.extensions == {tbs[tbs.index(spki) + len(spki) :]}  # the [3] block: OIDs, flags, values
        cached = certs._checked.get()
        assert cached is not None and all(type(c) is certs.CheckedCertificate for v in cached.values() for c in v)
    assert certs._readable.get() is None and certs._checked.get() is None


def test_checked_certificates_are_kept_once_per_content_in_a_run() -> None:
    with parsed_once():
        first = checked_certificates(CERT_PEM)
        assert checked_certificates(CERT_PEM) is first
        assert checked_certificates(CERT_DER) is not first
    assert checked_certificates(CERT_PEM) is not checked_certificates(CERT_PEM)


def test_a_certificate_cryptography_cannot_read_whole_fails_with_its_reason(pki: Pki) -> None:
    with pytest.raises(KeystoreError, match="cannot parse"):
        checked_certificates(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")


def _damaged(original: bytes) -> st.SearchStrategy[bytes]:
    """Bit flips and truncations of a certificate's DER, as DER and as the one PEM block decoded here."""
    n = len(original)
    flipped = st.tuples(st.integers(0, n - 1), st.integers(1, 255)).map(
        lambda t: original[: t[0]] + bytes([original[t[0]] ^ t[1]]) + original[t[0] + 1 :]
    )
    truncated = st.integers(1, n - 1).map(lambda i: original[:i])
    return st.one_of(flipped, truncated).flatmap(lambda der: st.sampled_from([der, pem_certificate(der).encode()]))


_LEAF_DER = _ca_with_country()[1].public_bytes(DER)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_damaged(CERT_DER), _damaged(_LEAF_DER)), min_size=1, max_size=6))
def test_damaged_certificates_read_as_before_in_one_run(datas: list[bytes]) -> None:
    with parsed_once():
        assert_read_as_before(pem_certificate(CERT_DER).encode())
        assert_read_as_before(_LEAF_DER)
        for data in datas:
            assert_read_as_before(data)


def _body_as_written_back(data: bytes) -> bytes | None:
    """``plain_pem_der`` as it was: the body decoded, then written back line by line and compared."""
    block = data.strip()
    begin, end = b"-----BEGIN CERTIFICATE-----\n", b"\n-----END CERTIFICATE-----"
    if not (block.startswith(begin) and block.endswith(end)):
        return None
    body = block[len(begin) : -len(end)]
    try:
        der = base64.b64decode(body)  # as binascii.a2b_base64: what is not base64 is skipped
    except ValueError:
        return None
    encoded = base64.b64encode(der)
    return der if der and b"\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64)) == body else None


_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


@st.composite
def _pem_like(draw: st.DrawFn) -> bytes:
    """One certificate's PEM block, re-wrapped, then a few bytes of its body changed, put in or taken out."""
    der = draw(st.sampled_from([CERT_DER, _LEAF_DER, CERT_DER[:3], CERT_DER[:4], CERT_DER[:5]]))
    width = draw(st.sampled_from([64, 64, 64, 63, 65, 76, 4]))
    body = bytearray(base64.b64encode(der))
    body = bytearray(b"\n".join(bytes(body[i : i + width]) for i in range(0, len(body), width)))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(body)))
        what = draw(st.sampled_from(["put", "drop", "change"]))
        if what == "put":
            body[at:at] = draw(st.sampled_from([b"\n", b" ", b"\r", b"=", b"A", b"-", b"\n\n"]))
        elif at < len(body):
            body[at : at + 1] = b"" if what == "drop" else _B64[draw(st.integers(0, 64)) :][:1]
    around = draw(st.sampled_from([(b"", b"\n"), (b"", b""), (b"\n ", b" \n"), (b"", b"\n\n")]))
    return around[0] + b"-----BEGIN CERTIFICATE-----\n" + bytes(body) + b"\n-----END CERTIFICATE-----" + around[1]


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_pem_like())
def test_one_plain_block_is_told_apart_as_when_its_lines_were_written_back(data: bytes) -> None:
    # the check reads the body's lines without writing the DER's again: the same blocks are the plain ones
    assert plain_pem_der(data) == _body_as_written_back(data)


def test_a_certificate_read_from_its_own_pem_text_says_so() -> None:
    text = pem_certificate(CERT_DER).encode()
    assert text == _wrapped(CERT_DER)
    with parsed_once():
        assert [c.canonical_pem for c in checked_certificates(text)] == [True]
        for other in (
            b" " + text,  # the same certificate, but not its text as it is sent
            text + b"\n",
            text[:-1],
            _wrapped(CERT_DER, newline=b"\r\n"),
            _wrapped(CERT_DER, width=76),
            CERT_DER,
            text + text,
        ):
            assert not any(c.canonical_pem for c in checked_certificates(other)), other[:40]


_NAME_OIDS = [
    x509.NameOID.COMMON_NAME,
    x509.NameOID.COUNTRY_NAME,
    x509.NameOID.ORGANIZATION_NAME,
    x509.NameOID.ORGANIZATIONAL_UNIT_NAME,
    x509.NameOID.LOCALITY_NAME,
    x509.NameOID.STATE_OR_PROVINCE_NAME,
    x509.NameOID.EMAIL_ADDRESS,
    x509.NameOID.SERIAL_NUMBER,
    *[x509.NameOID.COMMON_NAME] * 8,  # the usual names, more often
]
_STRING_TYPES = [
    x509.name._ASN1Type.UTF8String,
    x509.name._ASN1Type.PrintableString,
    x509.name._ASN1Type.IA5String,
    x509.name._ASN1Type.BMPString,
    *[x509.name._ASN1Type.UTF8String, x509.name._ASN1Type.PrintableString] * 4,
]
_PLAIN_TEXT = st.text(alphabet=st.sampled_from(list("Aaz09 .-'()/:=?")), min_size=1, max_size=12)
_SPOILED = st.tuples(_PLAIN_TEXT, st.sampled_from(list('#+,;<>\\"_*@é\x00 ')), _PLAIN_TEXT).map("".join)
_VALUE_TEXT = st.one_of(
    _PLAIN_TEXT,
    _SPOILED,  # plain but for one character, anywhere in it
    _SPOILED,
    st.tuples(st.sampled_from([" ", "#"]), _PLAIN_TEXT).map("".join),
    st.text(alphabet=st.sampled_from(list("Aaz09 .-'()/:=?#+,;<>\\\"_*@é")), min_size=0, max_size=70),
)


@st.composite
def _names(draw: st.DrawFn) -> bytes:
    """A name's DER as cryptography writes it (plain or not), or with a byte of it changed or cut."""
    rdns = []
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 2, 3]))):
        chosen = [
            (draw(st.sampled_from(_NAME_OIDS)), draw(_VALUE_TEXT), draw(st.sampled_from(_STRING_TYPES)))
            for _ in range(draw(st.sampled_from([1, 1, 1, 1, 1, 2])))
        ]
        if len({(oid, value) for oid, value, _type in chosen}) == len(chosen):
            rdns.append(chosen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lengths cryptography warns about are made too: they must not read here
        try:
            der = _name_der(rdns)
        except ValueError:  # a value its string type cannot hold: the same name in UTF8Strings
            der = _name_der([[(oid, value, x509.name._ASN1Type.UTF8String) for oid, value, _ in rdn] for rdn in rdns])
    change = draw(st.sampled_from(["none", "none", "none", "flip", "cut"]))
    if change == "flip":
        at = draw(st.integers(0, len(der) - 1))
        der = der[:at] + bytes([der[at] ^ draw(st.integers(1, 255))]) + der[at + 1 :]
    elif change == "cut":
        der = der[: draw(st.integers(0, len(der) - 1))]
    return der


def _name_der(rdns: list[list[tuple[x509.ObjectIdentifier, str, x509.name._ASN1Type]]]) -> bytes:
    return x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(o, v, t, _validate=False) for o, v, t in rdn])
            for rdn in rdns
        ]
    ).public_bytes()


@settings(max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_names())
def test_a_name_read_here_is_one_cryptography_reads_without_a_word_and_writes_the_same(der: bytes) -> None:
    text = certs._plain_name_text(der)
    if text is None:
        return  # read by cryptography, as before
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a length cryptography would warn about is not plain
        assert x509.Name.from_bytes(der).rfc4514_string() == text


def test_the_usual_names_are_read_here() -> None:
    for name in (
        dn("partner-0.example"),
        dn("Checked Root", organization="Checked", country="US"),
        x509.Name.from_rfc4514_string("CN=api.partner.example,OU=Integration,O=Partner Ltd.,L=Zurich,ST=ZH,C=CH"),
    ):
        assert certs._plain_name_text(name.public_bytes()) == name.rfc4514_string()
    cn, o, utf8 = x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME, x509.name._ASN1Type.UTF8String
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for other in (
            [[(cn, "a,b", utf8)]],  # escaped in RFC 4514
            [[(cn, "x", utf8), (o, "y", utf8)]],  # a multi-valued RDN
            [[(cn, " lead", utf8)]],
            [[(x509.NameOID.EMAIL_ADDRESS, "a@b.example", x509.name._ASN1Type.IA5String)]],
            [[(cn, "x" * 65, utf8)]],  # cryptography warns about the length
            [[(cn, "partnér", utf8)]],
            [],
        ):
            assert certs._plain_name_text(_name_der(other)) is None, other


def test_pem_is_told_by_a_begin_line_within_the_first_4096_bytes() -> None:
    marker = b"-----BEGIN "
    for at, expected in ((0, True), (4096 - len(marker), True), (4096 - len(marker) + 1, False), (5000, False)):
        data = b"x" * at + marker + b"CERTIFICATE-----\n"
        assert certs.looks_like_pem(data) is expected == (marker in data[:4096]), at
    assert not certs.looks_like_pem(b"") and not certs.looks_like_pem(CERT_DER)


@settings(max_examples=500, deadline=None)
@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 1),
        max_value=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5)), dt.timezone(dt.timedelta(hours=14))]),
    )
)
def test_a_date_is_written_as_isoformat_wrote_it_to_the_second(value: dt.datetime) -> None:
    """``utc_text`` writes a certificate's dates field by field: what ``isoformat`` wrote before, cut at the
    seconds (microseconds and offset dropped), for any year from 1000 on, and ``strftime``'s text before that."""
    expected = value.isoformat(" ", "seconds")[:19] if value.year >= 1000 else value.strftime("%Y-%m-%d %H:%M:%S")
    assert certs.utc_text(value) == expected
