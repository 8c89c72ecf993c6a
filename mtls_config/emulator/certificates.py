"""What the instance derives from a certificate it is given (``sys_certificate``'s read-only columns), and the
self-signed certificate the emulator serves HTTPS with.

Uses ``cryptography`` directly. Must never import: ``mtls_config.keystore`` (the emulator judges certificates
independently of the code it tests), starlette, the client, the engine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class CertificateFacts:
    valid_from: dt.datetime
    expires: dt.datetime
    subject: str
    issuer: str
    serial_number: str


def read_certificate(data: bytes) -> CertificateFacts | None:
    """Facts of the first certificate in PEM text or DER bytes; None when it is not a certificate."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError:
        return None
    return CertificateFacts(
        valid_from=cert.not_valid_before_utc,
        expires=cert.not_valid_after_utc,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=format(cert.serial_number, "x"),
    )


def days_until(expires: str, now: dt.datetime) -> str:
    """``expires_in_days`` for an ``expires`` value in the instance's date format ("" when unknown)."""
    if not expires:
        return ""
    when = dt.datetime.strptime(expires, DATE_FORMAT).replace(tzinfo=dt.UTC)
    return str((when - now).days)


def self_signed_server_certificate(host: str = "127.0.0.1") -> tuple[bytes, bytes]:
    """A fresh (certificate PEM, private key PEM) for serving HTTPS on ``host``; valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mtls-config emulator")])
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt_names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
