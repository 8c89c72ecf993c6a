"""One real mutual-TLS handshake and one real HTTP request against an endpoint, stage by stage.

Why raw ``ssl`` sockets and a minimal HTTP/1.1 request rather than httpx: each stage (resolve, connect,
handshake, request) runs on its own, so a failure is attributed to the exact stage with its own timing; the
``SSLSocket`` stays in hand for the negotiated version and the chain the server sent; a TLS 1.3 rejection
that arrives only on the first read is classified from the alert itself, not from a generic ``ReadError``;
and there is no pooling, retry, redirect or proxy-from-environment behaviour that the instance would not
have. One ``GET`` with ``Connection: close`` is all a handshake proof needs.

Trust is Java-like: only the certificates given (the spec's TrustStoreCerts), any of which may be an anchor
(``VERIFY_X509_PARTIAL_CHAIN``), hostname checked. The key is loaded without touching disk when possible
(``keymaterial``). Never prints; never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from mtls_config import __version__
from mtls_config.errors import VerifyError
from mtls_config.keystore.certs import cert_spki_sha256, spki_sha256
from mtls_config.verify import diagnosis as dx
from mtls_config.verify.javaparity import java_would_send
from mtls_config.verify.keymaterial import KeyTransport, load_client_identity
from mtls_config.verify.observer import HandshakeObserver, display_name
from mtls_config.verify.report import (
    HANDSHAKE_STAGES,
    ClientCertObservation,
    Finding,
    Severity,
    StageName,
    StageResult,
    Status,
    VerifyReport,
)
from mtls_config.wording import plural

DEFAULT_TLS_VERSIONS = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_HEAD = 64 * 1024
MAX_BODY_SNIFF = 8 * 1024
JavaParity = Literal["fail", "warn"]
STATUS_LINE = re.compile(rb"^HTTP/\d(?:\.\d)? (\d{3})")
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


@dataclass(frozen=True)
class Endpoint:
    url: str
    host: str  # what we dial (a name or an address)
    port: int
    path: str  # path and query, as sent in the request line
    server_name: str  # SNI, hostname check and Host header

    @property
    def host_header(self) -> str:
        name = f"[{self.server_name}]" if ":" in self.server_name else self.server_name
        return name if self.port == 443 else f"{name}:{self.port}"


def parse_endpoint(url: str, server_name: str | None = None, *, default_port: int = 443) -> Endpoint:
    """An ``https://host[:port]/path`` URL as an endpoint. Raises VerifyError when it is not one."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        # user:password@ in a URL is a credential: never shown in a report, a message or --json
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    url = parts.geturl()
    if parts.scheme.lower() != "https":
        raise VerifyError(
            f"endpoint '{url}' is not an https:// URL",
            hint="give --endpoint https://host[:port]/path",
        )
    if not parts.hostname:
        raise VerifyError(f"endpoint '{url}' has no host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise VerifyError(f"endpoint '{url}' has an invalid port") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Endpoint(url, parts.hostname, port, path, server_name or parts.hostname)


def build_context(
    trust: Sequence[x509.Certificate],
    *,
    tls_versions: Sequence[ssl.TLSVersion] = DEFAULT_TLS_VERSIONS,
    system_trust: bool = False,
) -> ssl.SSLContext:
    """A client context with Java-like trust: only ``trust`` (plus the system CAs when asked), partial chains."""
    if not trust and not system_trust:
        raise VerifyError(
            "no trust store certificates to verify the server with",
            hint="add the partner's CA as a TrustStoreCert in the specs, or pass --trust FILE",
        )
    if not tls_versions:
        raise VerifyError("no TLS versions allowed")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = min(tls_versions)
    ctx.maximum_version = max(tls_versions)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if trust:
        ctx.load_verify_locations(cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in trust))
    if system_trust:
        ctx.load_default_certs()
    return ctx


def check_key_matches(key: PrivateKeyTypes, leaf: x509.Certificate) -> None:
    if spki_sha256(key.public_key()) != cert_spki_sha256(leaf):
        raise VerifyError(
            f"the private key does not belong to the certificate '{leaf.subject.rfc4514_string()}'",
            hint="the key entry's chain must start with the certificate issued for this key (lint K06)",
        )


@dataclass
class _Run:
    """Accumulates stages and findings while one verify run goes through its stages."""

    stages: dict[StageName, StageResult] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def stage(self, name: StageName, status: Status, summary: str, started: float | None, **details: object) -> None:
        elapsed = None if started is None else (time.monotonic() - started) * 1000
        self.stages[name] = StageResult(name, status, summary, elapsed, dict(details))

    def fail(self, name: StageName, finding: Finding, started: float | None, **details: object) -> None:
        self.findings.append(finding)
        self.stage(name, Status.FAIL, finding.message, started, code=finding.code, **details)

    def ordered(self) -> tuple[StageResult, ...]:
        return tuple(
            self.stages.get(name, StageResult(name, Status.SKIPPED, "not reached")) for name in HANDSHAKE_STAGES
        )


def verify_endpoint(
    url: str,
    *,
    key: PrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    timeout: float = DEFAULT_TIMEOUT,
    server_name: str | None = None,
    tls_versions: Sequence[ssl.TLSVersion] = DEFAULT_TLS_VERSIONS,
    java_parity: JavaParity = "fail",
    system_trust: bool = False,
    key_transport: KeyTransport = "auto",
    target: str | None = None,
) -> VerifyReport:
    """Connect to ``url`` presenting ``key`` with ``chain`` (the key entry's chain, leaf first, as the instance
    would send it), trusting only ``trust``; return every stage and a diagnosis.

    Raises ``VerifyError`` only when the run cannot be carried out (bad URL, key not matching the leaf, no
    trust); a failing handshake is a report with ``ok == False``.
    """
    endpoint = parse_endpoint(url, server_name)
    if not chain:
        raise VerifyError("the key entry has no certificate chain")
    check_key_matches(key, chain[0])
    ctx = build_context(trust, tls_versions=tls_versions, system_trust=system_trust)
    load_client_identity(ctx, key, chain, transport=key_transport)
    observer = HandshakeObserver()
    observer.attach(ctx)
    run = _Run()
    facts = _probe(endpoint, ctx, observer, run, chain, trust, timeout)
    _judge_client_cert(run, observer, chain, endpoint, java_parity, facts.tls_ok)
    return VerifyReport(
        target=target or url,
        url=url,
        host=endpoint.host,
        port=endpoint.port,
        server_name=endpoint.server_name,
        stages=run.ordered(),
        findings=tuple(run.findings),
        tls_version=facts.tls_version,
        cipher=facts.cipher,
        server_chain=tuple(dx.summarize(c) for c in facts.server_chain),
        client_cert=_observation(observer, chain),
        http_status=facts.http_status,
    )


@dataclass
class _Facts:
    tls_ok: bool = False
    tls_version: str | None = None
    cipher: str | None = None
    server_chain: list[x509.Certificate] = field(default_factory=list)
    http_status: int | None = None


def _probe(
    endpoint: Endpoint,
    ctx: ssl.SSLContext,
    observer: HandshakeObserver,
    run: _Run,
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    timeout: float,
) -> _Facts:
    facts = _Facts()
    started = time.monotonic()
    try:
        addresses = _resolve(endpoint.host, endpoint.port, timeout)
    except socket.gaierror as exc:
        run.fail(StageName.DNS, dx.dns_failed(endpoint.host, exc.strerror or str(exc)), started)
        return facts
    except TimeoutError:
        run.fail(StageName.DNS, dx.dns_timeout(endpoint.host, timeout), started)
        return facts
    shown = sorted({str(a[4][0]) for a in addresses})
    run.stage(StageName.DNS, Status.OK, f"{endpoint.host} -> {', '.join(shown)}", started, addresses=shown)

    started = time.monotonic()
    raw, peer, error = _connect(addresses, timeout)
    if raw is None:
        assert error is not None
        run.fail(StageName.CONNECT, dx.connect_failed(endpoint.host, endpoint.port, error, timeout), started)
        return facts
    run.stage(StageName.CONNECT, Status.OK, f"connected to {peer}", started, peer=peer)

    started = time.monotonic()
    sock = ctx.wrap_socket(raw, server_hostname=endpoint.server_name, do_handshake_on_connect=False)
    try:
        sock.settimeout(timeout)
        finding = _handshake(sock, observer, chain, trust, endpoint, timeout)
        facts.server_chain = _server_chain(sock, observer)
        if finding is not None:
            run.fail(StageName.TLS, finding, started)
            return facts
        facts.tls_ok = True
        facts.tls_version = sock.version()
        cipher = sock.cipher()
        facts.cipher = cipher[0] if cipher else None
        details: dict[str, object] = {"version": facts.tls_version, "cipher": facts.cipher}
        if facts.tls_version in ("TLSv1", "TLSv1.1", "SSLv3"):
            run.fail(StageName.TLS, dx.old_protocol(facts.tls_version), started, **details)
        else:
            run.stage(StageName.TLS, Status.OK, f"{facts.tls_version}, {facts.cipher}", started, **details)
        handshake_seconds = time.monotonic() - started
        _http(sock, endpoint, observer, chain, run, facts, timeout, min(timeout, max(0.3, 3 * handshake_seconds)))
    finally:
        sock.close()
    return facts


def _resolve(host: str, port: int, timeout: float) -> list[AddrInfo]:
    """getaddrinfo bounded by ``timeout`` (it cannot be cancelled, so it runs in a daemon thread)."""
    result: list[AddrInfo] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=work, name="mtls-config-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError
    if error:
        raise error[0]
    return result


def _connect(addresses: list[AddrInfo], timeout: float) -> tuple[socket.socket | None, str, OSError | None]:
    last: OSError | None = None
    for family, type_, proto, _canon, sockaddr in addresses:
        sock = socket.socket(family, type_, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        peer = sockaddr[:2]
        return sock, f"{peer[0]}:{peer[1]}", None
    return None, "", last or OSError("no addresses")


def _handshake(
    sock: ssl.SSLSocket,
    observer: HandshakeObserver,
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    endpoint: Endpoint,
    timeout: float,
) -> Finding | None:
    try:
        sock.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        return dx.server_verification_failed(exc, _server_chain(sock, observer), trust, endpoint.server_name)
    except ssl.SSLError as exc:
        return _classify_failure(exc, StageName.TLS, observer, chain, endpoint, timeout)
    except OSError as exc:
        return _classify_failure(exc, StageName.TLS, observer, chain, endpoint, timeout)
    return None


def _classify_failure(
    exc: OSError,
    stage: StageName,
    observer: HandshakeObserver,
    chain: Sequence[x509.Certificate],
    endpoint: Endpoint,
    timeout: float,
) -> Finding:
    """An error during the handshake or the request: the server's alert first, then the error itself."""
    alert = observer.last_alert_received
    if alert is None and isinstance(exc, ssl.SSLError):
        alert = dx.alert_from_reason(exc.reason)
    if alert is not None:
        return dx.server_alert(
            alert,
            stage,
            chain,
            requested=observer.requested,
            certificates_sent=observer.client_certificates_sent,
            server_name=endpoint.server_name,
        )
    if isinstance(exc, TimeoutError):
        return dx.tls_timeout(stage, timeout)
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError | ssl.SSLZeroReturnError):
        return dx.connection_closed(
            stage,
            requested=observer.requested if observer.available else None,
            certificates_sent=observer.client_certificates_sent,
        )
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "UNEXPECTED_EOF_WHILE_READING":
            return dx.connection_closed(
                stage,
                requested=observer.requested if observer.available else None,
                certificates_sent=observer.client_certificates_sent,
            )
        return dx.tls_error(exc, stage)
    return dx.connection_closed(
        stage,
        requested=observer.requested if observer.available else None,
        certificates_sent=observer.client_certificates_sent,
    )


def _server_chain(sock: ssl.SSLSocket, observer: HandshakeObserver) -> list[x509.Certificate]:
    """The certificates the server sent, in its order: from the message hook, else from the private
    ``get_unverified_chain`` (public only from Python 3.13)."""
    ders = list(observer.server_certificates_der)
    if not ders:
        sslobj = getattr(sock, "_sslobj", None)
        getter = getattr(sslobj, "get_unverified_chain", None)
        if callable(getter):
            try:
                ders = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in getter() or []]  # type: ignore[attr-defined]
            except (ssl.SSLError, ValueError, AttributeError):
                ders = []
    out = []
    for der in ders:
        try:
            out.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return out


def _http(
    sock: ssl.SSLSocket,
    endpoint: Endpoint,
    observer: HandshakeObserver,
    chain: Sequence[x509.Certificate],
    run: _Run,
    facts: _Facts,
    timeout: float,
    verdict_budget: float,
) -> None:
    started = time.monotonic()
    request = (
        f"GET {endpoint.path} HTTP/1.1\r\n"
        f"Host: {endpoint.host_header}\r\n"
        f"User-Agent: mtls-config/{__version__} (verify)\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii", "replace")
    try:
        early = b""
        if facts.tls_version == "TLSv1.3" and (observer.requested or not observer.available):
            early = _await_verdict(sock, observer, verdict_budget, timeout)
        sock.sendall(request)
        head, body = _read_response(sock, early)
    except (ssl.SSLError, OSError) as exc:
        run.fail(StageName.HTTP, _classify_failure(exc, StageName.HTTP, observer, chain, endpoint, timeout), started)
        return
    match = STATUS_LINE.match(head)
    if match is None:
        if not head:
            finding = dx.connection_closed(
                StageName.HTTP,
                requested=observer.requested if observer.available else None,
                certificates_sent=observer.client_certificates_sent,
            )
        else:
            finding = dx.not_http(head)
        run.fail(StageName.HTTP, finding, started)
        return
    status = int(match.group(1))
    facts.http_status = status
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    rejected = dx.http_answer(status, body, certificates_sent=observer.client_certificates_sent)
    if rejected is not None:
        run.fail(StageName.HTTP, rejected, started, http_status=status, status_line=status_line)
        return
    run.stage(StageName.HTTP, Status.OK, status_line, started, http_status=status, status_line=status_line)


def _await_verdict(sock: ssl.SSLSocket, observer: HandshakeObserver, budget: float, timeout: float) -> bytes:
    """TLS 1.3: the server judges our certificate after our side of the handshake is done. Wait (bounded) for
    its verdict, a session ticket (OpenSSL-based servers send them once they accept) or an alert, before
    sending the request: a server that rejects and closes with our request unread resets the connection, and
    the reset can swallow the alert that says why. Returns any application data that arrived meanwhile."""
    deadline = time.monotonic() + budget
    early = b""
    sock.setblocking(False)
    try:
        while observer.session_tickets == 0 and observer.last_alert_received is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not sock.pending():
                readable, _, _ = select.select([sock], [], [], remaining)
                if not readable:
                    break
            try:
                chunk = sock.recv(4096)
            except ssl.SSLWantReadError:
                continue
            if not chunk:
                break
            early += chunk
    finally:
        sock.settimeout(timeout)
    return early


def _read_response(sock: ssl.SSLSocket, early: bytes = b"") -> tuple[bytes, bytes]:
    """The response head (up to the blank line) and the first bytes of the body; bounded in size."""
    data = early
    while b"\r\n\r\n" not in data and len(data) < MAX_RESPONSE_HEAD:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if STATUS_LINE.match(head) and b" 400 " in head.split(b"\r\n", 1)[0] + b" ":
        # nginx tells a missing/rejected certificate only in the body of a 400.
        try:
            while len(body) < MAX_BODY_SNIFF:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                body += chunk
        except (TimeoutError, ssl.SSLError, OSError):
            pass
    return head, body


def _judge_client_cert(
    run: _Run,
    observer: HandshakeObserver,
    chain: Sequence[x509.Certificate],
    endpoint: Endpoint,
    java_parity: JavaParity,
    tls_ok: bool,
) -> None:
    started = None  # judged from what the other stages saw: no time of its own
    leaf = chain[0]
    rejection = next(
        (f for f in run.findings if f.stage is StageName.CLIENT_CERT and f.severity is Severity.FAIL), None
    )
    now = datetime.now(UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc and (
        rejection is None or rejection.code != "client_cert_expired"
    ):
        run.findings.append(dx.local_certificate_expired(leaf))
    if not observer.available:
        run.findings.append(dx.client_cert_unobservable())
        if rejection is not None:
            run.stage(StageName.CLIENT_CERT, Status.FAIL, rejection.message, started, code=rejection.code)
        else:
            run.stage(StageName.CLIENT_CERT, Status.UNKNOWN, "could not observe", started)
        return
    request = observer.certificate_request
    ca_names = tuple(display_name(d) for d in request.ca_names_der) if request else ()
    details = {
        "requested": observer.requested,
        "ca_names": list(ca_names),
        "certificates_sent": observer.client_certificates_sent,
    }
    parity: Finding | None = None
    if request is not None and not java_would_send(chain, request.ca_names_der):
        parity = dx.java_sends_nothing(chain, ca_names, as_warning=java_parity == "warn")
        run.findings.append(parity)
    if request is None and observer.certificate_request_unparsable:
        run.findings.append(dx.certificate_request_unreadable())
    sent = observer.client_certificates_sent
    if sent is not None and sent > len(chain):
        run.findings.append(dx.openssl_completed_chain(sent, len(chain)))
    if rejection is not None:
        run.stage(StageName.CLIENT_CERT, Status.FAIL, rejection.message, started, code=rejection.code, **details)
        return
    if not observer.requested:
        if tls_ok and StageName.HTTP in run.stages:
            finding = dx.no_certificate_request(endpoint.server_name)
            run.findings.append(finding)
            run.stage(StageName.CLIENT_CERT, Status.FAIL, finding.message, started, code=finding.code, **details)
        else:
            run.stage(StageName.CLIENT_CERT, Status.SKIPPED, "the handshake did not get that far", started, **details)
        return
    if parity is not None:
        status = Status.WARN if java_parity == "warn" else Status.FAIL
        run.stage(StageName.CLIENT_CERT, status, parity.message, started, code=parity.code, **details)
        return
    names = f"; server accepts {plural(len(ca_names), 'CA name')}" if ca_names else "; no CA names advertised"
    if not tls_ok or run.stages.get(StageName.HTTP, None) is None or run.stages[StageName.HTTP].status is Status.FAIL:
        run.stage(StageName.CLIENT_CERT, Status.SKIPPED, f"requested{names}; outcome unknown", started, **details)
        return
    run.stage(StageName.CLIENT_CERT, Status.OK, f"requested and accepted ({sent} sent){names}", started, **details)


def _observation(observer: HandshakeObserver, chain: Sequence[x509.Certificate]) -> ClientCertObservation:
    if not observer.available:
        return ClientCertObservation(observed=False)
    request = observer.certificate_request
    return ClientCertObservation(
        observed=True,
        requested=observer.requested if observer.available else None,
        ca_names=tuple(display_name(d) for d in request.ca_names_der) if request else (),
        certificates_sent=observer.client_certificates_sent,
        java_would_send=java_would_send(chain, request.ca_names_der) if request else None,
    )
