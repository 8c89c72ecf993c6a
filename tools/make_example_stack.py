"""Regenerate the DEMO key material of the example stack in specs/examples/two-partners/.

Everything written here is throw-away demo material for the embedded local instance: a demo CA, the
instance's demo client keys and the partners' demo certificates. No real party's key is involved.
The Globex keystore is built the way users build theirs: with mtls-config's own assemble (deterministic
JKS, key password = store password, CA chain as trusted entries), then linted. The certificates come from
the test suite's one certificate builder, ``tests/pki.py``: run this from a checkout.

    python tools/make_example_stack.py                 # rewrites specs/examples/two-partners/
    python tools/make_example_stack.py --out DIR       # writes the same layout under DIR
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

CHECKOUT = Path(__file__).resolve().parent.parent
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))  # tests.pki, when run as a script from anywhere in the checkout

from mtls_config.keystore import assemble_keystore, export_certificate, lint_keystore, read_keystore  # noqa: E402
from mtls_config.secrets import SecretValue  # noqa: E402
from tests.pki import CA, KeyUsageName, dn  # noqa: E402

STACK = CHECKOUT / "specs" / "examples" / "two-partners"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DEMO_PASSWORD = "demo-keystore-password"
DEMO_ORG = "Example Demo (not a real party)"
PARTNERS_ORG = "Partners Demo"
# Every demo certificate is valid from a day ago and has an AKI, the roots too; leaves may also encipher keys.
LEAF_KEY_USAGE: tuple[KeyUsageName, ...] = ("digital_signature", "key_encipherment")


def name(cn: str, org: str = DEMO_ORG) -> x509.Name:
    return dn(cn, organization=org, country="US")


def lifetime(days: int) -> dict[str, dt.datetime]:
    return {"not_before": NOW - dt.timedelta(days=1), "not_after": NOW + dt.timedelta(days=days)}


def write(stack: Path) -> None:
    for folder in ("certs", "keystores", "demo-secrets"):
        (stack / folder).mkdir(parents=True, exist_ok=True)

    root = CA.root(name("Demo Root CA"), key_type="rsa3072", aki=True, **lifetime(3650))
    ica = root.child_ca(name("Demo Issuing CA"), key_type="rsa2048", **lifetime(1825))
    client = {"key_usage": LEAF_KEY_USAGE, "eku": [ExtendedKeyUsageOID.CLIENT_AUTH], **lifetime(730)}

    # Partner 1 (REST, "Acme Payments"): our client key is assembled from parts by mtls-config (build:).
    acme = ica.issue(name("instance-client.acme-payments.example"), key_type="ec-p256", **client)
    (stack / "demo-secrets" / "acme-client-key.pem").write_bytes(acme.key_pem())
    (stack / "certs" / "acme-client.pem").write_bytes(acme.pem)
    (stack / "certs" / "demo-issuing-ca.pem").write_bytes(ica.pem)
    (stack / "certs" / "demo-root-ca.pem").write_bytes(root.pem)

    # Partner 2 (SOAP, "Globex Orders"): a ready-made JKS file, as the KB procedure produces.
    globex = ica.issue(name("instance-client.globex.example"), key_type="rsa2048", **client)
    password = SecretValue(DEMO_PASSWORD.encode(), "demo")
    globex_jks = assemble_keystore(
        globex.key_pem(), globex.pem, [root.pem, ica.pem], password, alias="globex-client", fmt="jks"
    )
    findings = [f for f in lint_keystore(globex_jks, password, declared_format="jks") if f.severity != "info"]
    if findings:
        raise SystemExit("the demo keystore does not lint clean:\n" + "\n".join(str(f) for f in findings))
    contents = read_keystore(globex_jks, password)
    assert export_certificate(contents, alias="globex-client", fmt="der") == globex.der
    (stack / "keystores" / "globex-client.jks").write_bytes(globex_jks)
    (stack / "demo-secrets" / "keystore-password.txt").write_text(DEMO_PASSWORD + "\n")

    # The partners' server certificates we trust (one PEM, one DER), from their own demo CA.
    partner_ca = CA.root(name("Partner Demo Root CA", PARTNERS_ORG), key_type="ec-p384", aki=True, **lifetime(3650))
    (stack / "certs" / "acme-server-ca.pem").write_bytes(partner_ca.pem)
    globex_server = partner_ca.issue(
        name("orders.globex.example", PARTNERS_ORG),
        key_type="ec-p256",
        key_usage=LEAF_KEY_USAGE,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=[x509.DNSName("orders.globex.example")],
        **lifetime(825),
    )
    (stack / "certs" / "globex-server.der").write_bytes(globex_server.der)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=STACK, help="folder to write to (default: %(default)s)")
    write(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
