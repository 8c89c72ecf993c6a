"""The one certificate builder of the test suite, ``tools/make_example_stack.py`` and the benchmarks.

``CA.root()`` makes a self-signed CA, ``ca.child_ca()`` an intermediate under it, ``ca.issue()`` a certificate
it signs (with a new key, or ``ca.sign()`` for a public key held elsewhere, such as a CSR's), ``self_signed()`` a
certificate that signs itself without being a CA (a pinned partner certificate). Shaped after trustme, the CA
that httpx's tests mint certificates with.

What a certificate holds is what its caller says. Every property a test may depend on is an option, with a
default for a well-formed certificate:

==================  ===========================================================================================
``key_type``        ``ec-p256`` (default), ``ec-p384``, ``rsa1024``, ``rsa2048``, ``rsa3072``, ``ed25519``;
                    or ``key=`` an existing private key
``ca``              basicConstraints (critical) with cA set as given; ``None``: no basicConstraints
``path_length``     basicConstraints' pathLenConstraint (CAs only)
``key_usage``       key usage bits by name (critical); default by role: ``key_cert_sign`` + ``crl_sign`` for
                    a CA, ``digital_signature`` otherwise; ``None``: no key usage
``eku``             extended key usage OIDs; empty (default): none
``san``             subject alternative names; empty (default): none
``ski``             subjectKeyIdentifier from the public key (default on)
``aki``             authorityKeyIdentifier from the issuer's key: default on for an issued certificate, off for a
                    self-signed one (RFC 5280 lets a self-signed certificate omit it; some tests need it either way)
``extensions``      ``False``: a certificate with no extension at all (old partner certificates are like that);
                    then none of the options above may be given
``not_before``      default: a day ago
``not_after``       default: ``not_before`` + ``days`` (365)
``serial``          default: random (``x509.random_serial_number``)
``hash_algorithm``  SHA-256 by default; Ed25519 keys sign without one
==================  ===========================================================================================

Throw-away material for tests, demos and benchmarks only. Imports cryptography alone (never ``mtls_config``: the
builder must not share code with what it tests), so ``tools/`` and ``bench/`` import it from a checkout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
KeyType = Literal["ec-p256", "ec-p384", "rsa1024", "rsa2048", "rsa3072", "ed25519"]
KeyUsageName = Literal[
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
]
CA_KEY_USAGE: tuple[KeyUsageName, ...] = ("key_cert_sign", "crl_sign")
SIGNING_KEY_USAGE: tuple[KeyUsageName, ...] = ("digital_signature",)
_BY_ROLE: Any = object()  # key_usage's default: chosen by the certificate's role
_EXTENSION_OPTIONS = ("ca", "path_length", "key_usage", "eku", "san", "ski", "aki")


def new_key(key_type: KeyType = "ec-p256") -> PrivateKey:
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    sizes = {"rsa1024": 1024, "rsa2048": 2048, "rsa3072": 3072}
    if key_type not in sizes:
        raise ValueError(f"unknown key type {key_type!r}")
    return rsa.generate_private_key(public_exponent=65537, key_size=sizes[key_type])


def dn(common_name: str, *, organization: str | None = None, country: str | None = None) -> x509.Name:
    """A distinguished name in the usual order: C, O, CN (``rfc4514_string()`` reverses it: CN first)."""
    attributes = []
    if country is not None:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _name(subject: x509.Name | str) -> x509.Name:
    return dn(subject) if isinstance(subject, str) else subject


def _key_usage(names: Sequence[KeyUsageName]) -> x509.KeyUsage:
    unknown = set(names) - set(get_args(KeyUsageName))
    if unknown:
        raise ValueError(f"unknown key usage {sorted(unknown)}")
    return x509.KeyUsage(
        digital_signature="digital_signature" in names,
        content_commitment="content_commitment" in names,
        key_encipherment="key_encipherment" in names,
        data_encipherment="data_encipherment" in names,
        key_agreement="key_agreement" in names,
        key_cert_sign="key_cert_sign" in names,
        crl_sign="crl_sign" in names,
        encipher_only=False,
        decipher_only=False,
    )


def build(
    subject: x509.Name | str,
    public_key: PublicKey,
    *,
    issuer: x509.Name,
    issuer_key: PrivateKey,
    self_issued: bool,
    ca: bool | None = False,
    path_length: int | None = None,
    key_usage: Sequence[KeyUsageName] | None = _BY_ROLE,
    eku: Sequence[x509.ObjectIdentifier] = (),
    san: Sequence[x509.GeneralName] = (),
    ski: bool = True,
    aki: bool | None = None,
    extensions: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 365,
    serial: int | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> x509.Certificate:
    """The certificate, signed by ``issuer_key``. The only place that calls ``x509.CertificateBuilder``."""
    start = not_before if not_before is not None else dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after if not_after is not None else start + dt.timedelta(days=days))
    )
    if extensions:  # in this order: BC, SKI, AKI, KU, EKU, SAN
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        if ski:
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        if aki if aki is not None else not self_issued:
            authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
            builder = builder.add_extension(authority, critical=False)
        usage = (CA_KEY_USAGE if ca else SIGNING_KEY_USAGE) if key_usage is _BY_ROLE else key_usage
        if usage is not None:
            builder = builder.add_extension(_key_usage(usage), critical=True)
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        return builder.sign(issuer_key, None)
    return builder.sign(issuer_key, hash_algorithm or hashes.SHA256())


def _check_options(options: dict[str, Any]) -> None:
    if options.get("extensions", True) is False:
        given = sorted(set(options) & set(_EXTENSION_OPTIONS))
        if given:
            raise ValueError(f"extensions=False leaves no room for {given}")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)

    @property
    def name(self) -> str:
        """The subject as RFC 4514 text (CN first)."""
        return self.cert.subject.rfc4514_string()

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def key_pem(self, password: bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM, encrypted when a password is given."""
        return private_key_pem(self.key, password)


def private_key_pem(key: PrivateKey, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@dataclass(frozen=True)
class CA(Issued):
    """A certificate authority: its certificate and key, and what it signs."""

    @classmethod
    def root(
        cls, subject: x509.Name | str, *, key: PrivateKey | None = None, key_type: KeyType = "ec-p256", **options: Any
    ) -> CA:
        """A self-signed CA (basicConstraints cA=true; no AKI unless ``aki=True``)."""
        _check_options(options)
        key = key if key is not None else new_key(key_type)
        name = _name(subject)
        options.setdefault("ca", True)
        cert = build(name, key.public_key(), issuer=name, issuer_key=key, self_issued=True, **options)
        return cls(cert, key)

    def child_ca(
        self, subject: x509.Name | str, *, key: PrivateKey | None = None, key_type: KeyType = "ec-p256", **options: Any
    ) -> CA:
        """An intermediate CA signed by this one."""
        options.setdefault("ca", True)
        issued = self.issue(subject, key=key, key_type=key_type, **options)
        return CA(issued.cert, issued.key)

    def issue(
        self, subject: x509.Name | str, *, key: PrivateKey | None = None, key_type: KeyType = "ec-p256", **options: Any
    ) -> Issued:
        """A certificate signed by this CA, for ``key`` or a new key of ``key_type``."""
        key = key if key is not None else new_key(key_type)
        return Issued(self.sign(subject, key.public_key(), **options), key)

    def sign(self, subject: x509.Name | str, public_key: PublicKey, **options: Any) -> x509.Certificate:
        """A certificate for a public key whose private half is held elsewhere."""
        _check_options(options)
        return build(subject, public_key, issuer=self.cert.subject, issuer_key=self.key, self_issued=False, **options)

    def sign_csr(self, csr_pem: bytes, **options: Any) -> x509.Certificate:
        """Sign a PEM CSR (its signature checked first) with the CSR's subject and public key."""
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("the CSR's signature does not verify")
        public_key = csr.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
        return self.sign(csr.subject, public_key, **options)


def self_signed(
    subject: x509.Name | str, *, key: PrivateKey | None = None, key_type: KeyType = "ec-p256", **options: Any
) -> Issued:
    """A certificate that signs itself without being a CA (basicConstraints cA=false unless ``ca`` says
    otherwise): a pinned partner certificate, a keytool-style self-signed key entry."""
    _check_options(options)
    key = key if key is not None else new_key(key_type)
    name = _name(subject)
    cert = build(name, key.public_key(), issuer=name, issuer_key=key, self_issued=True, **options)
    return Issued(cert, key)


def pem(*certs: x509.Certificate) -> bytes:
    """Certificates as one PEM bundle, in the order given."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
