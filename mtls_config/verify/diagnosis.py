"""Turn what went wrong in a handshake into a ``Finding``: a message an admin can act on and a fix.

One function per kind of evidence (a resolver error, a socket error, a TLS alert from the server, a failed
verification of the server's chain, an HTTP answer). Codes are stable and documented in docs/verify.md; the
lint rules they implement are E01-E04 of keystores-and-tls.md.

Pure: takes exceptions, certificates and observations, returns values. Never imports the client, the
emulator or the CLI.
"""

from __future__ import annotations

import errno
import ssl
from collections.abc import Sequence
from datetime import UTC

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from mtls_config.keystore.certs import cert_sha256, describe_certificate_key
from mtls_config.verify.observer import ALERT_NAMES, canonical_name_of
from mtls_config.verify.report import CertificateSummary, Finding, Severity, StageName
from mtls_config.wording import plural

ALERT_CODES = {name: code for code, name in ALERT_NAMES.items()}
# Alerts a server sends about the certificate we presented.
CLIENT_CERT_ALERTS = frozenset({42, 43, 44, 45, 46, 48, 49, 116})
# OpenSSL reasons meaning "the bytes that came back were not TLS".
NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"})
PROTOCOL_REASONS = frozenset({"UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE", "TLSV1_ALERT_PROTOCOL_VERSION"})
# X509_V_ERR_* codes that mean "no path to a trust anchor".
UNTRUSTED_CODES = frozenset({2, 18, 19, 20, 21})
HOSTNAME_MISMATCH = 62
EXPIRED = 10
NOT_YET_VALID = 9
INVALID_PURPOSE = 26


def _f(code: str, stage: StageName, message: str, fix: str, *, rule: str = "", warn: bool = False) -> Finding:
    return Finding(code, Severity.WARN if warn else Severity.FAIL, message, fix, stage, rule)


def is_self_signed(cert: x509.Certificate) -> bool:
    # Names compared as RFC 5280 does (canonical form), not byte for byte as keystore.certs does for chains
    # we build ourselves: a server's chain comes from tools that re-encode names.
    if canonical_name_of(cert.subject) != canonical_name_of(cert.issuer):
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, and key types that cannot self-verify
        return False
    return True


def summarize(cert: x509.Certificate) -> CertificateSummary:
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc.astimezone(UTC).isoformat(),
        sha256=cert_sha256(cert),
        self_signed=is_self_signed(cert),
    )


# --- Before TLS --------------------------------------------------------------------------------------------------


def dns_failed(host: str, detail: str) -> Finding:
    return _f(
        "dns_failed",
        StageName.DNS,
        f"The host name '{host}' does not resolve ({detail}).",
        "Check the endpoint's host name for typos. An internal partner host must resolve from the instance's "
        "network as well as from yours.",
    )


def dns_timeout(host: str, timeout: float) -> Finding:
    return _f(
        "dns_timeout",
        StageName.DNS,
        f"Resolving '{host}' did not finish within {timeout:g}s.",
        "Check this machine's DNS servers, or retry with a longer --timeout.",
    )


def connect_failed(host: str, port: int, exc: OSError, timeout: float) -> Finding:
    where = f"{host}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return _f(
            "connection_refused",
            StageName.CONNECT,
            f"{where} refused the connection: nothing listens on that port, or a firewall rejects it.",
            f"Check the port (the protocol profile's default_port, or the one in the endpoint URL: {port}) and "
            "that the partner's service is running.",
        )
    if isinstance(exc, TimeoutError):
        return _f(
            "connect_timeout",
            StageName.CONNECT,
            f"No answer from {where} within {timeout:g}s.",
            "A firewall probably drops the packets: the partner must allow the instance's outbound IP addresses "
            "(and yours, for this test). Check the host and port.",
        )
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return _f(
            "network_unreachable",
            StageName.CONNECT,
            f"{where} is unreachable from here ({exc.strerror}).",
            "Check routing and VPNs between this machine and the partner; the instance's path may differ.",
        )
    return _f(
        "connect_failed",
        StageName.CONNECT,
        f"Connecting to {where} failed ({exc.strerror or type(exc).__name__}).",
        "Check the host, the port and the network path to the partner.",
    )


# --- TLS ---------------------------------------------------------------------------------------------------------


def alert_from_reason(reason: str | None) -> int | None:
    """The alert code in an OpenSSL reason such as 'TLSV1_ALERT_UNKNOWN_CA' (when the hook saw nothing)."""
    if not reason:
        return None
    upper = reason.upper()
    if "ALERT_" in upper:
        return ALERT_CODES.get(upper.split("ALERT_", 1)[1].lower())
    if upper.endswith("UNRECOGNIZED_NAME"):
        return ALERT_CODES["unrecognized_name"]
    return None


def _ekus(cert: x509.Certificate) -> str:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "no extended key usage extension (any purpose)"
    names = {ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth", ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth"}
    return ", ".join(names.get(oid, oid.dotted_string) for oid in eku)


def server_alert(
    alert: int,
    stage: StageName,
    chain: Sequence[x509.Certificate],
    *,
    requested: bool,
    certificates_sent: int | None,
    server_name: str,
) -> Finding:
    """A fatal alert the server sent, during the handshake or (TLS 1.3) on the first read."""
    leaf = chain[0]
    name = ALERT_NAMES.get(alert, f"alert {alert}")
    late = " (TLS 1.3 reports this only after the handshake, on the first read)" if stage is StageName.HTTP else ""
    said = f"The server answered {name}{late}"
    if alert == 48:
        missing_note = ""
        if len(chain) == 1 and not is_self_signed(leaf):
            missing_note = (
                f" Our key entry's chain holds only the leaf, so the CA '{leaf.issuer.rfc4514_string()}' is not "
                "sent; a server that trusts only the root cannot build the path."
            )
        return _f(
            "client_cert_unknown_ca",
            StageName.CLIENT_CERT,
            f"{said}: it does not trust the CA that issued our certificate "
            f"('{leaf.issuer.rfc4514_string()}'), or an intermediate CA is missing.{missing_note}",
            "Send the partner our CA chain (mtls-config keystore export-cert) to add to the client CAs their "
            "server trusts; if they trust only the root, put the intermediate CA in the key entry's chain.",
            rule="E03",
        )
    if alert == 45:
        return _f(
            "client_cert_expired",
            StageName.CLIENT_CERT,
            f"{said}: our certificate '{leaf.subject.rfc4514_string()}' has expired or is not yet valid "
            f"(valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}).",
            "Renew the client certificate (mtls-config keystore new, then assemble), update the KeyStore spec "
            "and apply. Check the partner's clock if the dates look right.",
            rule="E03",
        )
    if alert == 43:
        return _f(
            "client_cert_unsupported",
            StageName.CLIENT_CERT,
            f"{said}: our certificate is not acceptable for client authentication (EKU/key usage unsuitable; "
            f"it has: {_ekus(leaf)}).",
            "Have the CA issue the certificate with extended key usage clientAuth (1.3.6.1.5.5.7.3.2) and key "
            "usage digitalSignature.",
            rule="E03",
        )
    if alert == 42:
        self_signed = (
            " Our leaf is self-signed: the key entry may still hold keytool's placeholder certificate instead "
            "of the CA's reply."
            if is_self_signed(leaf)
            else ""
        )
        return _f(
            "client_cert_bad",
            StageName.CLIENT_CERT,
            f"{said}: it rejected our certificate '{leaf.subject.rfc4514_string()}' as bad (signature, "
            f"encoding or a policy check failed).{self_signed}",
            "Ask the partner what their server logged. Check that the key entry holds the CA-signed "
            "certificate and its chain, and that the CA is the one they expect.",
            rule="E03",
        )
    if alert == 116 or (alert == 40 and requested and certificates_sent == 0):
        if certificates_sent == 0:
            algorithm = describe_certificate_key(leaf)[0]
            why = (
                f" We had a certificate but sent an empty one: the server accepts no signature algorithm our "
                f"{algorithm} key can make."
            )
            fix = (
                "Use a key type the partner accepts from clients (RSA 2048 is the safest choice), or ask them to "
                "allow ECDSA signatures for client certificates."
            )
        else:
            why = ""
            fix = (
                "Check that the keystore has exactly one private-key entry whose key decrypts with the store "
                "password, and compare the server's CA names with our chain (reported above)."
            )
        return _f(
            "client_cert_not_sent",
            StageName.CLIENT_CERT,
            f"{said}: the server requires a client certificate and received none (the instance reports this as "
            f"'No required SSL certificate was sent').{why}",
            fix,
            rule="E03",
        )
    if alert in (44, 46, 49):
        meaning = {
            44: "our certificate has been revoked",
            46: "it could not accept our certificate (certificate_unknown)",
            49: "our certificate is valid but this identity is not allowed (access_denied)",
        }[alert]
        return _f(
            f"client_cert_{name}",
            StageName.CLIENT_CERT,
            f"{said}: {meaning}.",
            "Ask the partner which client identity (subject) they allow and what their server logged; a revoked "
            "certificate must be re-issued.",
            rule="E03",
        )
    if alert == 70:
        return protocol_version_refused(stage)
    if alert == 112:
        return _f(
            "unrecognized_name",
            stage,
            f"{said}: it does not serve the name '{server_name}' (SNI).",
            "Use the host name the partner gave you in the endpoint URL (or --server-name when dialling an IP).",
        )
    if alert == 40:
        cert_note = " after asking for our certificate" if requested else ""
        return _f(
            "handshake_failure",
            stage,
            f"{said}{cert_note}: no common protocol parameters (cipher, signature algorithm), or it refused our "
            "certificate without saying why.",
            "Compare with 'openssl s_client -connect HOST:PORT -cert ... -key ...' and ask the partner for their "
            "server log of this connection.",
            rule="E03",
        )
    return _f(
        f"tls_alert_{name}".replace(" ", "_"),
        stage,
        f"{said}.",
        "Ask the partner what their server logged for this connection.",
    )


def protocol_version_refused(stage: StageName) -> Finding:
    return _f(
        "protocol_version",
        stage,
        "The server and we share no TLS version: it offers only versions older than TLS 1.2 (or newer than we allow).",
        "The partner must enable TLS 1.2 or 1.3; the instance does not negotiate TLS 1.0/1.1.",
        rule="E04",
    )


def old_protocol(version: str) -> Finding:
    return _f(
        "protocol_version",
        StageName.TLS,
        f"The server negotiated {version}, older than TLS 1.2.",
        "The partner must enable TLS 1.2 or 1.3; the instance does not negotiate older versions.",
        rule="E04",
    )


def not_tls(stage: StageName, reason: str) -> Finding:
    return _f(
        "not_tls",
        stage,
        f"The endpoint did not answer with TLS ({reason}): it may speak plain HTTP or another protocol on this port.",
        "Check the port and the scheme of the endpoint (https), and that no proxy sits in between.",
    )


def tls_timeout(stage: StageName, timeout: float) -> Finding:
    what = "complete the TLS handshake" if stage is StageName.TLS else "send an HTTP response"
    return _f(
        f"{stage.value}_timeout",
        stage,
        f"The server did not {what} within {timeout:g}s.",
        "Check that the port serves TLS (HTTP) and is not a different service, or retry with a longer --timeout.",
    )


def connection_closed(stage: StageName, *, requested: bool | None, certificates_sent: int | None) -> Finding:
    """``requested`` None: the handshake could not be observed."""
    if requested is None and stage is StageName.HTTP:
        return _f(
            "connection_closed",
            stage,
            "The server closed the connection after the handshake without answering. TLS 1.3 servers reject a "
            "client certificate this way when they send no alert (the handshake could not be observed here to "
            "tell for sure).",
            "Ask the partner what their server logged for this connection; compare with 'openssl s_client'.",
        )
    if requested and certificates_sent:
        return _f(
            "client_cert_rejected",
            StageName.CLIENT_CERT,
            "The server closed the connection right after receiving our certificate, without a TLS alert: it "
            "most likely rejected the certificate.",
            "Ask the partner what their server logged for this connection (untrusted issuer, expiry, revocation).",
            rule="E03",
        )
    return _f(
        "connection_closed",
        stage,
        "The server closed the connection during the "
        + ("handshake." if stage is StageName.TLS else "HTTP exchange, before answering."),
        "Check that this port serves HTTPS; ask the partner for their server log.",
    )


def tls_error(exc: ssl.SSLError, stage: StageName) -> Finding:
    reason = exc.reason or type(exc).__name__
    if reason in PROTOCOL_REASONS:
        return protocol_version_refused(stage)
    if reason in NOT_TLS_REASONS:
        return not_tls(stage, reason)
    return _f(
        "tls_failed",
        stage,
        f"The TLS exchange failed ({reason}).",
        "Compare with 'openssl s_client -connect HOST:PORT' and ask the partner for their server log.",
    )


# --- Verifying the server's chain (Java-like trust: the spec's TrustStoreCerts, partial chains allowed) -----------


def server_verification_failed(
    exc: ssl.SSLCertVerificationError,
    server_chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    server_name: str,
) -> Finding:
    code = exc.verify_code
    leaf = server_chain[0] if server_chain else None
    if code == HOSTNAME_MISMATCH:
        return hostname_mismatch(leaf, server_name)
    if code in (EXPIRED, NOT_YET_VALID) and leaf is not None:
        state = "has expired" if code == EXPIRED else "is not yet valid"
        return _f(
            "server_cert_expired",
            StageName.TLS,
            f"A certificate in the server's chain {state} (server leaf '{leaf.subject.rfc4514_string()}' valid "
            f"until {leaf.not_valid_after_utc:%Y-%m-%d}).",
            "The partner must renew their server certificate (or their CA certificate).",
            rule="E03",
        )
    if code == INVALID_PURPOSE:
        return _f(
            "server_cert_purpose",
            StageName.TLS,
            "The server's certificate is not valid for TLS server use (extended key usage lacks serverAuth).",
            "The partner must use a certificate issued for serverAuth.",
            rule="E03",
        )
    if code in UNTRUSTED_CODES and server_chain:
        return untrusted_server_chain(server_chain, trust)
    return _f(
        "server_cert_invalid",
        StageName.TLS,
        f"The server's certificate failed verification: {exc.verify_message} (code {code}).",
        "Compare with 'openssl s_client -connect HOST:PORT -CAfile <trust store>' and ask the partner.",
        rule="E03",
    )


def hostname_mismatch(leaf: x509.Certificate | None, server_name: str) -> Finding:
    if leaf is None:
        names = "other names"
    else:
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            listed = [str(n) for n in san.get_values_for_type(x509.DNSName)]
            listed += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
            names = ", ".join(listed) or "no DNS names or IP addresses"
        except x509.ExtensionNotFound:
            names = (
                "no subjectAltName at all (only its subject, "
                f"'{leaf.subject.rfc4514_string()}'; Java and ServiceNow need a SAN, KB3067060)"
            )
    return _f(
        "hostname_mismatch",
        StageName.TLS,
        f"The server's certificate does not name '{server_name}': it names {names}.",
        "Put a host name the certificate names in the endpoint URL, or ask the partner for a certificate with "
        f"'{server_name}' in its subjectAltName. To dial an address while checking a name, use --server-name.",
        rule="E03",
    )


def untrusted_server_chain(sent: Sequence[x509.Certificate], trust: Sequence[x509.Certificate]) -> Finding:
    """Which CA is missing from our trust store, and whether the server's chain is the one to blame."""
    trusted_names = {canonical_name_of(t.subject) for t in trust}
    last = sent[-1]
    last_subject = last.subject.rfc4514_string()
    issuer = last.issuer.rfc4514_string()
    if is_self_signed(last):
        return _f(
            "server_not_trusted",
            StageName.TLS,
            f"The server's chain ends at the CA '{last_subject}', which our trust store does not hold (missing "
            f"CA: '{last_subject}', SHA-256 {cert_sha256(last)}).",
            f"Add '{last_subject}' as a TrustStoreCert (get it from the partner and compare the fingerprint), "
            "then apply.",
            rule="E03",
        )
    if canonical_name_of(last.issuer) not in trusted_names:
        if len(sent) == 1:
            return _f(
                "server_chain_incomplete",
                StageName.TLS,
                f"The server sent only its own certificate ('{last_subject}'), not the CA '{issuer}' that issued "
                "it, and our trust store does not hold that CA: the server's chain is incomplete.",
                "Ask the partner to configure the full chain (server certificate plus intermediate CAs) on their "
                f"server (KB2594372); meanwhile add '{issuer}' as a TrustStoreCert. Browsers may still work "
                "because they fetch missing intermediates; Java does not.",
                rule="T05",
            )
        return _f(
            "server_not_trusted",
            StageName.TLS,
            f"The server's chain is not trusted: the last certificate it sent ('{last_subject}') was issued by "
            f"'{issuer}', and our trust store does not hold that CA (missing CA: '{issuer}').",
            f"Add '{issuer}' (the partner's root or issuing CA) as a TrustStoreCert, then apply.",
            rule="E03",
        )
    return _f(
        "server_not_trusted",
        StageName.TLS,
        f"Our trust store holds a CA named '{issuer}', but not the one that signed the server's chain (same "
        "name, different key: a re-issued or rotated CA?).",
        f"Get the current '{issuer}' certificate from the partner and replace the TrustStoreCert.",
        rule="E03",
    )


# --- Client certificate checks (E01, E02) ------------------------------------------------------------------------


def no_certificate_request(server_name: str) -> Finding:
    return _f(
        "no_certificate_request",
        StageName.CLIENT_CERT,
        f"The server '{server_name}' did not ask for a client certificate: this connection is not mutual TLS, "
        "so the keystore is never used.",
        "Ask the partner to require client certificates on this endpoint (nginx: ssl_verify_client on). Check "
        "the host, port and path: some servers ask only for certain paths or virtual hosts.",
        rule="E01",
    )


def java_sends_nothing(chain: Sequence[x509.Certificate], ca_names: Sequence[str], *, as_warning: bool) -> Finding:
    issuers = ", ".join(f"'{c.issuer.rfc4514_string()}'" for c in chain)
    advertised = "; ".join(f"'{n}'" for n in ca_names)
    return _f(
        "java_sends_no_certificate",
        StageName.CLIENT_CERT,
        f"The server accepts client certificates from {advertised}, but no issuer in our key entry's chain "
        f"({issuers}) is among them: the instance (Java) will send no certificate and fail with 'No required SSL "
        "certificate was sent' (OpenSSL, used here, sends it anyway).",
        "Put the issuing CA chain in the key entry (KeyStore build.chain, or import the CA reply together with "
        "its chain under the key's alias) so an issuer matches, or ask the partner to advertise "
        f"'{chain[0].issuer.rfc4514_string()}'.",
        rule="E02",
        warn=as_warning,
    )


def certificate_request_unreadable() -> Finding:
    return _f(
        "certificate_request_unreadable",
        StageName.CLIENT_CERT,
        "The server asked for a client certificate, but its CertificateRequest could not be parsed, so the CA "
        "names (and what the instance would send) are unknown.",
        "Read the CA names by hand: openssl s_client -connect HOST:PORT -servername NAME ('Acceptable client "
        "certificate CA names').",
        rule="E02",
        warn=True,
    )


def openssl_completed_chain(sent: int, ours: int) -> Finding:
    return _f(
        "openssl_completed_chain",
        StageName.CLIENT_CERT,
        f"We sent {plural(sent, 'certificate')} but the key entry's chain has {ours}: OpenSSL completed the chain from the "
        "trust store. The instance sends only the key entry's chain, so this success may not carry over.",
        "Put the full chain (leaf, intermediates) in the key entry so the instance sends what was tested.",
        warn=True,
    )


def client_cert_unobservable() -> Finding:
    return _f(
        "client_cert_unobservable",
        StageName.CLIENT_CERT,
        "Could not observe whether the server asked for a client certificate or which CAs it accepts (this "
        "Python has no TLS message hook).",
        "Check by hand: openssl s_client -connect HOST:PORT -servername NAME, and read 'Acceptable client "
        "certificate CA names'.",
        warn=True,
    )


def local_certificate_expired(leaf: x509.Certificate) -> Finding:
    return _f(
        "local_cert_expired",
        StageName.CLIENT_CERT,
        f"Our certificate '{leaf.subject.rfc4514_string()}' is outside its validity period "
        f"({leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}).",
        "Renew the client certificate before the partner rejects it.",
        warn=True,
    )


# --- HTTP ----------------------------------------------------------------------------------------------------------

NGINX_NO_CERT = "No required SSL certificate was sent"
NGINX_BAD_CERT = "The SSL certificate error"


def http_answer(status: int, body: bytes, *, certificates_sent: int | None) -> Finding | None:
    """A server that checks the certificate after the handshake (nginx) answers 400 with a telling page."""
    text = body.decode("latin-1", "replace")
    if status == 496 or (status == 400 and NGINX_NO_CERT in text):
        sent = "" if not certificates_sent else " although we sent one"
        return _f(
            "client_cert_not_sent",
            StageName.HTTP,
            f"The server answered HTTP {status} '{NGINX_NO_CERT}'{sent}.",
            "Check the server's client CA list against our chain (see the CA names in this report) and ask the "
            "partner for their server log.",
            rule="E03",
        )
    if status == 495 or (status == 400 and NGINX_BAD_CERT in text):
        return _f(
            "client_cert_rejected",
            StageName.HTTP,
            f"The server answered HTTP {status} '{NGINX_BAD_CERT}': it received our certificate and rejected "
            "it (untrusted issuer, expired, or wrong purpose).",
            "Ask the partner which CA their server trusts for clients and send them our CA chain.",
            rule="E03",
        )
    return None


def not_http(first_bytes: bytes) -> Finding:
    return _f(
        "not_http",
        StageName.HTTP,
        f"The server's answer is not HTTP (it begins {first_bytes[:24]!r}).",
        "Check the endpoint's port and path; the instance expects an HTTP(S) service.",
    )
