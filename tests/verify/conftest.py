"""Real TLS servers on 127.0.0.1 and a session-scoped PKI for the verify tests.

- ``pki``: certificates minted with ``tests.pki`` (EC P-256 for speed): a server CA (root -> intermediate ->
  leaf for localhost/127.0.0.1), a client CA (root -> intermediate -> leaves, good and broken), a foreign CA.
- ``python_server``: an ``ssl`` server in a thread (CERT_REQUIRED against a separate client-CA file, TLS 1.2
  or 1.3). Python's ssl cannot set the advertised CA names list, so its CertificateRequest carries none.
- ``openssl_server``: ``openssl s_server -Verify 1 -verify_return_error -www -naccept N``; ``-CAfile`` sets the
  advertised CA names, ``-verifyCAfile`` the trust. Skipped when openssl is absent.

Every server stops by itself: bounded accept loops with a deadline, ``-naccept``, and teardown that kills.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

import tests.pki
from tests.pki import CA, Issued, dn

NOW = dt.datetime.now(dt.UTC)
SERVER_LIFETIME = 20.0  # seconds: no test server outlives this


# A certificate and its key (``.cert``, ``.key``, ``.name``), as the verify tests call it.
Identity = Issued


def _name(cn: str) -> x509.Name:
    return dn(cn, organization="mtls-config tests")


def mint(
    cn: str,
    issuer: Identity | None = None,
    *,
    ca: bool = False,
    san: Sequence[x509.GeneralName] = (),
    eku: Sequence[x509.ObjectIdentifier] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Identity:
    """An EC P-256 identity valid from a day before NOW to 30 days after it unless told otherwise, signed by
    ``issuer`` or by itself (then without an AKI)."""
    options = {
        "ca": ca,
        "san": san,
        "eku": eku,
        "not_before": not_before or NOW - dt.timedelta(days=1),
        "not_after": not_after or NOW + dt.timedelta(days=30),
    }
    if issuer is not None:
        return CA(issuer.cert, issuer.key).issue(_name(cn), **options)
    return tests.pki.self_signed(_name(cn), **options)


LOCAL_SAN = (x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")))


@dataclass(frozen=True)
class PKI:
    server_root: Identity
    server_ica: Identity
    server: Identity
    server_expired: Identity
    client_root: Identity
    client_ica: Identity
    client: Identity
    client_expired: Identity
    client_not_yet_valid: Identity
    client_server_eku: Identity
    foreign_root: Identity
    foreign_client: Identity
    folder: Path

    def pem(self, *certs: x509.Certificate) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)

    def write(self, name: str, *certs: x509.Certificate, key: PrivateKeyTypes | None = None) -> Path:
        path = self.folder / name
        data = self.pem(*certs)
        if key is not None:
            data += key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        path.write_bytes(data)
        return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    server_root = mint("Server Root CA", ca=True)
    server_ica = mint("Server Issuing CA", server_root, ca=True)
    client_root = mint("Client Root CA", ca=True)
    client_ica = mint("Client Issuing CA", client_root, ca=True)
    foreign_root = mint("Foreign Root CA", ca=True)
    client_eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
    return PKI(
        server_root=server_root,
        server_ica=server_ica,
        server=mint("localhost", server_ica, san=LOCAL_SAN, eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
        server_expired=mint(
            "localhost",
            server_ica,
            san=LOCAL_SAN,
            not_before=NOW - dt.timedelta(days=60),
            not_after=NOW - dt.timedelta(days=2),
        ),
        client_root=client_root,
        client_ica=client_ica,
        client=mint("instance.service-now.example", client_ica, eku=client_eku),
        client_expired=mint(
            "expired client",
            client_ica,
            eku=client_eku,
            not_before=NOW - dt.timedelta(days=60),
            not_after=NOW - dt.timedelta(days=2),
        ),
        client_not_yet_valid=mint(
            "future client",
            client_ica,
            eku=client_eku,
            not_before=NOW + dt.timedelta(days=5),
            not_after=NOW + dt.timedelta(days=60),
        ),
        client_server_eku=mint("server-eku client", client_ica, eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
        foreign_root=foreign_root,
        foreign_client=mint("foreign client", foreign_root, eku=client_eku),
        folder=tmp_path_factory.mktemp("pki"),
    )


OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class PythonTLSServer:
    """A one-thread TLS server; each connection: handshake, read the request head, send ``response``."""

    def __init__(self, ctx: ssl.SSLContext | None, response: bytes) -> None:
        self.ctx = ctx
        self.response = response
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.errors: list[str] = []
        self.peer_certs: list[dict[str, object] | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"tls-server-{self.port}", daemon=True)

    def __enter__(self) -> PythonTLSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        deadline = time.monotonic() + SERVER_LIFETIME
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.closing(conn):
                conn.settimeout(5)
                self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        stream: socket.socket = conn
        try:
            if self.ctx is not None:
                stream = self.ctx.wrap_socket(conn, server_side=True)
                self.peer_certs.append(stream.getpeercert())  # type: ignore[attr-defined]
            data = stream.recv(4096)
            # A plain server answers whatever arrives (as real ones answer a ClientHello with a 400).
            while self.ctx is not None and data and b"\r\n\r\n" not in data and len(data) < 65536:
                data += stream.recv(4096)
            stream.sendall(self.response)
            if isinstance(stream, ssl.SSLSocket):
                with contextlib.suppress(OSError, ssl.SSLError):
                    stream.unwrap()
        except (OSError, ssl.SSLError) as exc:
            self.errors.append(repr(exc))
        finally:
            stream.close()


def server_context(
    pki: PKI,
    *,
    chain: Sequence[Identity] | None = None,
    client_cas: Sequence[x509.Certificate] | None = (),
    version: ssl.TLSVersion | None = None,
    legacy: bool = False,
) -> ssl.SSLContext:
    """A server context. ``client_cas`` None: do not ask for a client certificate; default: the client root."""
    chain = list(chain) if chain is not None else [pki.server, pki.server_ica]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tag = f"{id(ctx)}"
    ctx.load_cert_chain(pki.write(f"server-{tag}.pem", *(i.cert for i in chain), key=chain[0].key))
    if client_cas is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        cas = list(client_cas) or [pki.client_root.cert]
        ctx.load_verify_locations(pki.write(f"client-cas-{tag}.pem", *cas))
    if legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point of this server
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    elif version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


@pytest.fixture
def python_server(pki: PKI) -> Iterator[Callable[..., PythonTLSServer]]:
    started: list[PythonTLSServer] = []

    def start(ctx: ssl.SSLContext | None = None, response: bytes = OK_RESPONSE) -> PythonTLSServer:
        server = PythonTLSServer(ctx, response).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


@dataclass
class OpenSSLServer:
    port: int
    process: subprocess.Popen[str]


@pytest.fixture
def openssl_server(pki: PKI, tmp_path: Path) -> Iterator[Callable[..., OpenSSLServer]]:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("openssl is not installed")
    started: list[subprocess.Popen[str]] = []
    pumps: list[threading.Thread] = []

    def start(
        *,
        advertise: Sequence[x509.Certificate],
        verify: Sequence[x509.Certificate],
        version: str = "tls1_3",
        extra: Sequence[str] = (),
    ) -> OpenSSLServer:
        cert = pki.write(f"os-server-{len(started)}.pem", pki.server.cert, key=pki.server.key)
        chain = pki.write(f"os-chain-{len(started)}.pem", pki.server_ica.cert)
        names = pki.write(f"os-names-{len(started)}.pem", *advertise)
        trust = pki.write(f"os-verify-{len(started)}.pem", *verify)
        args = [
            binary, "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-www",
            "-cert", str(cert), "-cert_chain", str(chain),
            "-Verify", "2", "-verify_return_error",
            "-CAfile", str(names), "-verifyCAfile", str(trust), "-no-CApath", "-no-CAstore",
            f"-{version}", *extra,
        ]  # fmt: skip
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        started.append(process)
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        pumps.append(reader)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if process.poll() is not None:
                    break
                continue
            if line.startswith("ACCEPT"):
                return OpenSSLServer(int(line.rsplit(":", 1)[1]), process)
        process.kill()
        pytest.fail("openssl s_server did not start")

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(5)
    for reader in pumps:
        reader.join(5)  # ends at EOF, now that every server has exited
    for process in started:
        if process.stdout:
            process.stdout.close()
