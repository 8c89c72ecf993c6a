"""Predict what the instance (Java, SunX509 key manager) sends when a server asks for a client certificate.

OpenSSL always sends our certificate when asked. Java's SunX509 ``chooseClientAlias`` picks a key entry only if
the server advertised no CA names, or if the *issuer* of some certificate in the entry's chain is one of the
advertised names (``X509Credentials.getIssuerX500Principals``); otherwise it sends an empty Certificate message
and the server answers certificate_required / handshake_failure, which the instance logs as
"No required SSL certificate was sent" (KB0824494). Measured in keystores-and-tls.md section 3.

Names are compared the way X500Principal compares them (canonical RFC 2253 form), not byte for byte.
Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from mtls_config.verify.observer import canonical_name, canonical_name_of, name_attributes


def java_would_send(chain: Sequence[x509.Certificate], ca_names_der: Sequence[bytes]) -> bool:
    """True when SunX509 would present this key entry's ``chain`` to a server advertising ``ca_names_der``."""
    if not ca_names_der:
        return True
    advertised = set()
    for der in ca_names_der:
        try:
            advertised.add(canonical_name(name_attributes(der)))
        except ValueError:
            continue  # Java drops names it cannot parse, too
    return any(canonical_name_of(cert.issuer) in advertised for cert in chain)


def matching_issuers(chain: Sequence[x509.Certificate], ca_names_der: Sequence[bytes]) -> list[str]:
    """The issuers in ``chain`` that the server advertised (RFC 4514), for the report."""
    advertised = set()
    for der in ca_names_der:
        try:
            advertised.add(canonical_name(name_attributes(der)))
        except ValueError:
            continue
    return [c.issuer.rfc4514_string() for c in chain if canonical_name_of(c.issuer) in advertised]
