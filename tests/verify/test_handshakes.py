"""verify_endpoint against real servers on 127.0.0.1: each outcome produced for real, each diagnosed."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Sequence

import pytest
from cryptography import x509

from mtls_config.verify import Severity, StageName, Status, VerifyReport, verify_endpoint
from tests.verify.conftest import PKI, Identity, OpenSSLServer, PythonTLSServer, server_context

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
VERSIONS = pytest.mark.parametrize("version", [TLS12, TLS13], ids=["tls1.2", "tls1.3"])


def run(
    port: int,
    pki: PKI,
    *,
    client: Identity | None = None,
    chain: Sequence[x509.Certificate] | None = None,
    trust: Sequence[x509.Certificate] | None = None,
    version: ssl.TLSVersion | None = None,
    host: str = "localhost",
    **kwargs: object,
) -> VerifyReport:
    client = client or pki.client
    return verify_endpoint(
        f"https://{host}:{port}/api/partner?x=1",
        key=client.key,
        chain=list(chain) if chain is not None else [client.cert, pki.client_ica.cert],
        trust=list(trust) if trust is not None else [pki.server_root.cert],
        timeout=5,
        tls_versions=(version,) if version else (TLS12, TLS13),
        **kwargs,  # type: ignore[arg-type]
    )


def codes(report: VerifyReport) -> list[str]:
    return [f.code for f in report.findings]


def statuses(report: VerifyReport) -> dict[str, str]:
    return {s.name.value: s.status.value for s in report.stages}


# --- success -----------------------------------------------------------------------------------------------------


@VERSIONS
def test_good_setup_passes_every_stage(
    pki: PKI, python_server: Callable[..., PythonTLSServer], version: ssl.TLSVersion
) -> None:
    server = python_server(server_context(pki, version=version))
    report = run(server.port, pki, version=version)
    assert report.ok, report.findings
    assert statuses(report) == {"dns": "ok", "connect": "ok", "tls": "ok", "client-cert": "ok", "http": "ok"}
    assert report.tls_version == ("TLSv1.3" if version is TLS13 else "TLSv1.2")
    assert report.http_status == 200
    assert report.client_cert.requested and report.client_cert.certificates_sent == 2
    assert [c.subject for c in report.server_chain] == [pki.server.name, pki.server_ica.name]
    assert server.peer_certs and server.peer_certs[0]  # the server really got our certificate
    assert report.diagnosis is None


@VERSIONS
def test_good_setup_against_openssl_s_server(
    pki: PKI, openssl_server: Callable[..., OpenSSLServer], version: ssl.TLSVersion
) -> None:
    server = openssl_server(
        advertise=[pki.client_root.cert],
        verify=[pki.client_root.cert],
        version="tls1_3" if version is TLS13 else "tls1_2",
    )
    report = run(server.port, pki, version=version)
    assert report.ok, report.findings
    assert report.client_cert.ca_names == (pki.client_root.name,)
    assert report.client_cert.java_would_send is True
    assert report.http_status == 200


def test_dialling_an_address_while_checking_a_name(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    server = python_server(server_context(pki))
    report = run(server.port, pki, host="127.0.0.1", server_name="localhost")
    assert report.ok, report.findings
    assert report.server_name == "localhost" and report.host == "127.0.0.1"


# --- Java parity (E02) -------------------------------------------------------------------------------------------


@VERSIONS
def test_java_sends_nothing_when_no_issuer_in_chain_is_advertised(
    pki: PKI, openssl_server: Callable[..., OpenSSLServer], version: ssl.TLSVersion
) -> None:
    # The key entry holds only the leaf; the server advertises only the root. OpenSSL sends the leaf and the
    # server (which also knows the intermediate) accepts it; SunX509 would send nothing.
    server = openssl_server(
        advertise=[pki.client_root.cert],
        verify=[pki.client_root.cert, pki.client_ica.cert],
        version="tls1_3" if version is TLS13 else "tls1_2",
    )
    report = run(server.port, pki, chain=[pki.client.cert], version=version)
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.code == "java_sends_no_certificate"
    assert report.diagnosis.rule == "E02"
    assert "No required SSL certificate was sent" in report.diagnosis.message
    assert pki.client_root.name in report.diagnosis.message
    assert report.stage(StageName.CLIENT_CERT).status is Status.FAIL
    assert report.stage(StageName.HTTP).status is Status.OK  # the OpenSSL handshake itself worked
    assert report.client_cert.java_would_send is False


def test_java_parity_as_warning(pki: PKI, openssl_server: Callable[..., OpenSSLServer]) -> None:
    server = openssl_server(advertise=[pki.client_root.cert], verify=[pki.client_root.cert, pki.client_ica.cert])
    report = run(server.port, pki, chain=[pki.client.cert], java_parity="warn")
    assert report.ok
    assert [w.code for w in report.warnings] == ["java_sends_no_certificate"]
    assert report.stage(StageName.CLIENT_CERT).status is Status.WARN


def test_java_sends_leaf_when_the_intermediate_is_advertised(
    pki: PKI, openssl_server: Callable[..., OpenSSLServer]
) -> None:
    server = openssl_server(
        advertise=[pki.client_root.cert, pki.client_ica.cert], verify=[pki.client_root.cert, pki.client_ica.cert]
    )
    report = run(server.port, pki, chain=[pki.client.cert])
    assert report.ok, report.findings
    assert report.client_cert.java_would_send is True


# --- the server did not ask (E01) ---------------------------------------------------------------------------------


@VERSIONS
def test_server_that_does_not_ask_for_a_certificate(
    pki: PKI, python_server: Callable[..., PythonTLSServer], version: ssl.TLSVersion
) -> None:
    server = python_server(server_context(pki, client_cas=None, version=version))
    report = run(server.port, pki, version=version)
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.code == "no_certificate_request"
    assert report.diagnosis.rule == "E01"
    assert report.stage(StageName.HTTP).status is Status.OK
    assert report.stage(StageName.CLIENT_CERT).status is Status.FAIL


# --- the server rejected our certificate (E03) ------------------------------------------------------------------


@VERSIONS
@pytest.mark.parametrize(
    ("client_attr", "chain_attrs", "code", "words"),
    [
        ("foreign_client", ("foreign_client",), "client_cert_unknown_ca", "does not trust the CA"),
        ("client", ("client",), "client_cert_unknown_ca", "holds only the leaf"),
        ("client_expired", ("client_expired", "client_ica"), "client_cert_expired", "has expired"),
        ("client_server_eku", ("client_server_eku", "client_ica"), "client_cert_unsupported", "serverAuth"),
        ("client_not_yet_valid", ("client_not_yet_valid", "client_ica"), "client_cert_bad", "rejected our certificate"),
    ],
    ids=["unknown_ca", "missing_intermediate", "certificate_expired", "unsupported_certificate", "bad_certificate"],
)
def test_server_rejects_our_certificate(
    pki: PKI,
    python_server: Callable[..., PythonTLSServer],
    version: ssl.TLSVersion,
    client_attr: str,
    chain_attrs: tuple[str, ...],
    code: str,
    words: str,
) -> None:
    server = python_server(server_context(pki, version=version))  # trusts only the client root
    client: Identity = getattr(pki, client_attr)
    chain = [getattr(pki, a).cert for a in chain_attrs]
    report = run(server.port, pki, client=client, chain=chain, version=version)
    assert not report.ok
    assert report.diagnosis is not None
    assert report.diagnosis.code == code, report.findings
    assert words in report.diagnosis.message
    assert report.diagnosis.stage is StageName.CLIENT_CERT
    assert report.stage(StageName.CLIENT_CERT).status is Status.FAIL
    if version is TLS13:
        # TLS 1.3: the handshake "succeeds"; the alert arrives on the first read.
        assert report.stage(StageName.TLS).status is Status.OK
        assert report.stage(StageName.HTTP).status is Status.FAIL
        assert "first read" in report.diagnosis.message
    else:
        assert report.stage(StageName.TLS).status is Status.FAIL
        assert report.stage(StageName.HTTP).status is Status.SKIPPED


@VERSIONS
def test_no_certificate_sent_when_key_type_does_not_suit_the_server(
    pki: PKI, openssl_server: Callable[..., OpenSSLServer], version: ssl.TLSVersion
) -> None:
    # The server accepts only RSA signatures from clients; our key is EC, so OpenSSL sends an empty Certificate.
    server = openssl_server(
        advertise=[pki.client_root.cert],
        verify=[pki.client_root.cert],
        version="tls1_3" if version is TLS13 else "tls1_2",
        extra=["-client_sigalgs", "RSA-PSS+SHA256:RSA+SHA256"],
    )
    report = run(server.port, pki, version=version)
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.code == "client_cert_not_sent", report.findings
    assert "No required SSL certificate was sent" in report.diagnosis.message
    assert "no signature algorithm our EC key can make" in report.diagnosis.message
    assert report.client_cert.certificates_sent == 0
    if version is TLS13:
        assert "certificate_required" in report.diagnosis.message and "first read" in report.diagnosis.message
    else:
        assert "handshake_failure" in report.diagnosis.message


def test_openssl_completing_our_chain_is_flagged(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    # The key entry holds only the leaf, but the trust store happens to hold our intermediate: OpenSSL sends it
    # (auto-chaining), the instance would not. The pass is real but may not carry over: warn.
    server = python_server(server_context(pki))
    report = run(server.port, pki, chain=[pki.client.cert], trust=[pki.server_root.cert, pki.client_ica.cert])
    assert report.ok
    assert [w.code for w in report.warnings] == ["openssl_completed_chain"]
    assert report.client_cert.certificates_sent == 2


def test_nginx_style_rejection_in_http(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    body = b"<html><center>The SSL certificate error</center></html>"
    response = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    server = python_server(server_context(pki), response=response)
    report = run(server.port, pki)
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.code == "client_cert_rejected"
    assert report.http_status == 400


# --- the server's side: trust, chain, name, version ---------------------------------------------------------------


@VERSIONS
def test_server_chain_not_trusted_names_the_missing_ca(
    pki: PKI, python_server: Callable[..., PythonTLSServer], version: ssl.TLSVersion
) -> None:
    server = python_server(server_context(pki, version=version))
    report = run(server.port, pki, trust=[pki.foreign_root.cert], version=version)
    assert not report.ok
    assert report.diagnosis is not None and report.diagnosis.code == "server_not_trusted"
    assert f"missing CA: '{pki.server_root.name}'" in report.diagnosis.message
    assert report.stage(StageName.TLS).status is Status.FAIL
    assert [c.subject for c in report.server_chain] == [pki.server.name, pki.server_ica.name]


def test_server_sending_its_root_that_we_do_not_trust(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    ctx = server_context(pki, chain=[pki.server, pki.server_ica, pki.server_root])
    server = python_server(ctx)
    report = run(server.port, pki, trust=[pki.foreign_root.cert])
    assert report.diagnosis is not None and report.diagnosis.code == "server_not_trusted"
    assert f"ends at the CA '{pki.server_root.name}'" in report.diagnosis.message


@VERSIONS
def test_incomplete_chain_from_the_server(
    pki: PKI, python_server: Callable[..., PythonTLSServer], version: ssl.TLSVersion
) -> None:
    server = python_server(server_context(pki, chain=[pki.server], version=version))
    report = run(server.port, pki, trust=[pki.server_root.cert], version=version)
    assert report.diagnosis is not None and report.diagnosis.code == "server_chain_incomplete"
    assert pki.server_ica.name in report.diagnosis.message


def test_pinned_intermediate_is_enough_java_like(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    # VERIFY_X509_PARTIAL_CHAIN: a non-root trust store certificate is an anchor, as in Java PKIX.
    server = python_server(server_context(pki, chain=[pki.server]))
    report = run(server.port, pki, trust=[pki.server_ica.cert])
    assert report.ok, report.findings


@VERSIONS
def test_hostname_mismatch(pki: PKI, python_server: Callable[..., PythonTLSServer], version: ssl.TLSVersion) -> None:
    server = python_server(server_context(pki, version=version))
    report = run(server.port, pki, host="127.0.0.1", server_name="partner.example", version=version)
    assert report.diagnosis is not None and report.diagnosis.code == "hostname_mismatch"
    assert "'partner.example'" in report.diagnosis.message and "localhost, 127.0.0.1" in report.diagnosis.message


def test_expired_server_certificate(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    server = python_server(server_context(pki, chain=[pki.server_expired, pki.server_ica]))
    report = run(server.port, pki)
    assert report.diagnosis is not None and report.diagnosis.code == "server_cert_expired"


def test_server_offering_only_old_protocols(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    server = python_server(server_context(pki, legacy=True))
    report = run(server.port, pki)
    assert report.diagnosis is not None and report.diagnosis.code == "protocol_version", (
        report.findings,
        server.errors,
    )
    assert report.diagnosis.rule == "E04"


# --- network ------------------------------------------------------------------------------------------------------


def test_connection_refused(pki: PKI) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    report = run(port, pki)
    assert report.diagnosis is not None and report.diagnosis.code == "connection_refused"
    assert statuses(report) == {
        "dns": "ok",
        "connect": "fail",
        "tls": "skipped",
        "client-cert": "skipped",
        "http": "skipped",
    }


def test_dns_failure(pki: PKI) -> None:
    report = run(443, pki, host="no-such-partner.invalid")
    assert report.diagnosis is not None and report.diagnosis.code in ("dns_failed", "dns_timeout")
    assert report.stage(StageName.DNS).status is Status.FAIL


def test_handshake_timeout(pki: PKI) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nobody ever answers
        report = verify_endpoint(
            f"https://127.0.0.1:{silent.getsockname()[1]}/",
            key=pki.client.key,
            chain=[pki.client.cert],
            trust=[pki.server_root.cert],
            timeout=0.5,
        )
    assert report.diagnosis is not None and report.diagnosis.code == "tls_timeout"


def test_plain_http_on_the_port(pki: PKI, python_server: Callable[..., PythonTLSServer]) -> None:
    server = python_server(None, response=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    report = run(server.port, pki)
    assert report.diagnosis is not None and report.diagnosis.code == "not_tls", report.findings


def test_findings_have_messages_and_fixes(pki: PKI) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    report = run(port, pki)
    for finding in report.findings:
        assert finding.message and finding.fix
        assert finding.severity in (Severity.FAIL, Severity.WARN)


# --- without the private TLS message hook ------------------------------------------------------------------------


@pytest.fixture
def no_message_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python whose ssl module refuses ``_msg_callback`` (it is private and may go away)."""

    def refuse(self: ssl.SSLContext, callback: object) -> None:
        raise AttributeError("_msg_callback is not supported")

    monkeypatch.setattr(ssl.SSLContext, "_msg_callback", property(lambda self: None, refuse))


@pytest.mark.usefixtures("no_message_hook")
def test_without_the_hook_the_client_cert_stage_says_it_could_not_observe(
    pki: PKI, python_server: Callable[..., PythonTLSServer]
) -> None:
    server = python_server(server_context(pki))
    report = run(server.port, pki)
    assert report.ok
    assert report.stage(StageName.CLIENT_CERT).status is Status.UNKNOWN
    assert [w.code for w in report.warnings] == ["client_cert_unobservable"]
    assert report.client_cert.observed is False and report.client_cert.java_would_send is None
    # The server's chain still comes from the socket.
    assert [c.subject for c in report.server_chain] == [pki.server.name, pki.server_ica.name]


@pytest.mark.usefixtures("no_message_hook")
@VERSIONS
def test_without_the_hook_alerts_are_read_from_the_error(
    pki: PKI, python_server: Callable[..., PythonTLSServer], version: ssl.TLSVersion
) -> None:
    server = python_server(server_context(pki, version=version))
    report = run(server.port, pki, client=pki.foreign_client, chain=[pki.foreign_client.cert], version=version)
    assert report.diagnosis is not None and report.diagnosis.code == "client_cert_unknown_ca", report.findings
    assert report.stage(StageName.CLIENT_CERT).status is Status.FAIL
