"""Regenerate the DEMO key material of the example stack in specs/examples/two-partners/.

Everything written here is throw-away demo material for the embedded local instance: a demo CA, the
instance's demo client keys and the partners' demo certificates. No real party's key is involved.
The Globex keystore is built the way users build theirs: with mtls-config's own assemble (deterministic
JKS, key password = store password, CA chain as trusted entries), then linted.

    python tools/make_example_stack.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mtls_config.keystore import assemble_keystore, export_certificate, lint_keystore, read_keystore
from mtls_config.secrets import SecretValue

STACK = Path(__file__).resolve().parent.parent / "specs" / "examples" / "two-partners"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DEMO_PASSWORD = "demo-keystore-password"


def name(cn: str, org: str = "Example Demo (not a real party)") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def cert(subject, key, issuer, issuer_key, *, ca: bool, days: int, eku=None, san=None) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in san]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def pem(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.PEM)


def main() -> None:
    (STACK / "certs").mkdir(parents=True, exist_ok=True)
    (STACK / "keystores").mkdir(parents=True, exist_ok=True)
    (STACK / "demo-secrets").mkdir(parents=True, exist_ok=True)

    root_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    root = cert(name("Demo Root CA"), root_key, name("Demo Root CA"), root_key, ca=True, days=3650)
    ica_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ica = cert(name("Demo Issuing CA"), ica_key, root.subject, root_key, ca=True, days=1825)

    # Partner 1 (REST, "Acme Payments"): our client key is assembled from parts by mtls-config (build:).
    acme_key = ec.generate_private_key(ec.SECP256R1())
    acme_leaf = cert(
        name("instance-client.acme-payments.example"),
        acme_key,
        ica.subject,
        ica_key,
        ca=False,
        days=730,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    (STACK / "demo-secrets" / "acme-client-key.pem").write_bytes(
        acme_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (STACK / "certs" / "acme-client.pem").write_bytes(pem(acme_leaf))
    (STACK / "certs" / "demo-issuing-ca.pem").write_bytes(pem(ica))
    (STACK / "certs" / "demo-root-ca.pem").write_bytes(pem(root))

    # Partner 2 (SOAP, "Globex Orders"): a ready-made JKS file, as the KB procedure produces.
    globex_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    globex_leaf = cert(
        name("instance-client.globex.example"),
        globex_key,
        ica.subject,
        ica_key,
        ca=False,
        days=730,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    der = serialization.Encoding.DER
    password = SecretValue(DEMO_PASSWORD.encode(), "demo")
    globex_jks = assemble_keystore(
        globex_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        pem(globex_leaf),
        [pem(root), pem(ica)],
        password,
        alias="globex-client",
        fmt="jks",
    )
    findings = [f for f in lint_keystore(globex_jks, password, declared_format="jks") if f.severity != "info"]
    if findings:
        raise SystemExit("the demo keystore does not lint clean:\n" + "\n".join(str(f) for f in findings))
    contents = read_keystore(globex_jks, password)
    assert export_certificate(contents, alias="globex-client", fmt="der") == globex_leaf.public_bytes(der)
    (STACK / "keystores" / "globex-client.jks").write_bytes(globex_jks)
    (STACK / "demo-secrets" / "keystore-password.txt").write_text(DEMO_PASSWORD + "\n")

    # The partners' server certificates we trust (one PEM, one DER), from their own demo CA.
    partner_ca_key = ec.generate_private_key(ec.SECP384R1())
    partner_ca = cert(
        name("Partner Demo Root CA", "Partners Demo"), partner_ca_key, name("Partner Demo Root CA", "Partners Demo"),
        partner_ca_key, ca=True, days=3650,
    )  # fmt: skip
    (STACK / "certs" / "acme-server-ca.pem").write_bytes(pem(partner_ca))
    globex_server_key = ec.generate_private_key(ec.SECP256R1())
    globex_server = cert(
        name("orders.globex.example", "Partners Demo"), globex_server_key, partner_ca.subject, partner_ca_key,
        ca=False, days=825, eku=[ExtendedKeyUsageOID.SERVER_AUTH], san=["orders.globex.example"],
    )  # fmt: skip
    (STACK / "certs" / "globex-server.der").write_bytes(globex_server.public_bytes(der))


if __name__ == "__main__":
    main()
