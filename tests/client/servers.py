"""Serving an ASGI app on a real socket for tests: uvicorn in a thread on 127.0.0.1, plain or TLS, and a
CA (``tests.pki``) that signs a server certificate for 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.pki import CA


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path
    server_cert: Path
    server_key: Path


def make_tls_files(folder: Path, ca: CA | None = None) -> TlsFiles:
    """A server certificate for 127.0.0.1 (serverAuth, IP SAN, valid a day) from ``ca``, or from a throw-away CA
    of its own (a CA no other test trusts), and the CA's bundle."""
    now = dt.datetime.now(dt.UTC)
    validity = {"not_before": now - dt.timedelta(minutes=5), "not_after": now + dt.timedelta(days=1)}
    if ca is None:
        ca = CA.root("mtls-config test CA", path_length=0, **validity)
    server = ca.issue(
        "127.0.0.1",
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        key_usage=None,
        ski=False,
        **validity,
    )
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca_bundle.write_bytes(ca.pem)
    files.server_cert.write_bytes(server.pem)
    files.server_key.write_bytes(server.key_pem())
    return files


@contextmanager
def serve(app: Any, tls: TlsFiles | None = None) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": str(tls.server_cert), "ssl_keyfile": str(tls.server_key)}
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
