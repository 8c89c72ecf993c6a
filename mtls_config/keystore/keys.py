"""Private keys and CSRs: read a PEM key (encrypted or not), make a new key and a clientAuth CSR.

Key material only ever leaves this module as bytes the caller asked for; error messages never quote it.
Pure: bytes in, values out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Sequence
from typing import Literal, get_args

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from mtls_config.errors import KeystoreError, KeystorePasswordError
from mtls_config.keystore.dsa_keys import pkcs8_is_dsa
from mtls_config.keystore.pkcs12_format import decrypt_pkcs8
from mtls_config.secrets import SecretValue

KeyType = Literal["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"]
KEY_TYPES: tuple[str, ...] = get_args(KeyType)


def load_private_key(data: bytes, password: SecretValue | None = None) -> PrivateKeyTypes:
    """A PEM (PKCS#8 or traditional) or DER PKCS#8 private key, decrypted with ``password`` when encrypted."""
    secret = password.reveal() if password is not None else None
    encrypted = b"ENCRYPTED" in data[:200]
    if _is_dsa_key(data, password):
        # cryptography would load it through its deprecated DSA API; we do not make keystores from DSA keys.
        raise KeystoreError(
            "the private key is a DSA key: cryptography deprecates DSA and peers rarely accept it",
            hint="make a new key: 'mtls-config keystore new --key-type rsa2048' (or ec-p256)",
        )
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=secret)
        return serialization.load_der_private_key(data, password=secret)
    except TypeError:
        if secret is None:
            raise KeystoreError(
                "the private key is encrypted and no key password was given",
                hint="pass the key's password (e.g. --key-password-env VAR, or keyPassword in the spec)",
            ) from None
        raise KeystoreError("the private key is not encrypted, but a key password was given") from None
    except ValueError:
        if encrypted or secret is not None:
            raise KeystorePasswordError(
                "cannot decrypt the private key: wrong key password (or a damaged key file)"
            ) from None
        raise KeystoreError("not a private key: expected a PEM private key ('-----BEGIN PRIVATE KEY-----')") from None
    except UnsupportedAlgorithm:
        raise KeystoreError("unsupported private key type") from None


def _is_dsa_key(data: bytes, password: SecretValue | None) -> bool:
    """The key is DSA, asked of its encoding (PEM label, PKCS#8 algorithm) rather than of a loaded key."""
    if b"-----BEGIN DSA PRIVATE KEY-----" in data:
        return True
    body = data
    if b"-----BEGIN" in data:
        match = _PEM_KEY.search(data)
        if match is None:
            return False
        try:
            body = base64.b64decode(match.group(2), validate=False)
        except binascii.Error:
            return False
        if match.group(1) == b"ENCRYPTED ":
            plain = decrypt_pkcs8(body, password) if password is not None else None
            return plain is not None and pkcs8_is_dsa(plain)
    elif password is not None:
        plain = decrypt_pkcs8(body, password)
        body = plain if plain is not None else body
    return pkcs8_is_dsa(body)


_PEM_KEY = re.compile(rb"-----BEGIN (ENCRYPTED )?PRIVATE KEY-----([A-Za-z0-9+/=\s]*)-----END")


def pkcs8_der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate_private_key(key_type: KeyType) -> PrivateKeyTypes:
    if key_type.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise KeystoreError(f"unknown key type '{key_type}'; choose one of {', '.join(KEY_TYPES)}")


def parse_subject(subject: str) -> x509.Name:
    """An RFC 4514 / keytool-style distinguished name: ``CN=host,O=Org,C=US``."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError as exc:
        raise KeystoreError(
            f"cannot read subject '{subject}': {exc}", hint='e.g. "CN=client.example.com,O=Example,C=US"'
        ) from None
    if not list(name):
        raise KeystoreError("the subject is empty", hint='e.g. "CN=client.example.com,O=Example,C=US"')
    return name


def parse_san(value: str) -> x509.GeneralName:
    """``DNS:name`` (or a bare name), ``IP:addr``, ``email:addr`` or ``URI:uri``."""
    kind, sep, rest = value.partition(":")
    if not sep or kind.lower() not in {"dns", "ip", "email", "uri"}:
        kind, rest = "dns", value
    kind = kind.lower()
    if not rest:
        raise KeystoreError(f"empty subject alternative name '{value}'")
    if kind == "ip":
        try:
            return x509.IPAddress(ipaddress.ip_address(rest))
        except ValueError:
            raise KeystoreError(f"'{rest}' is not an IP address") from None
    if kind == "email":
        return x509.RFC822Name(rest)
    if kind == "uri":
        return x509.UniformResourceIdentifier(rest)
    return x509.DNSName(rest)


def new_key_and_csr(
    subject: str,
    sans: Sequence[str] = (),
    key_type: KeyType = "rsa2048",
    key_password: SecretValue | None = None,
) -> tuple[bytes, bytes]:
    """A new private key (PEM PKCS#8, encrypted when ``key_password`` is given) and a CSR (PEM) for it that
    asks for a client certificate: clientAuth EKU, digitalSignature key usage, SANs when given."""
    name = parse_subject(subject)
    key = generate_private_key(key_type)
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=is_rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([parse_san(s) for s in sans]), critical=False)
    csr = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]  # generate_private_key makes RSA or EC only
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(key_password.reveal())
        if key_password is not None
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)
