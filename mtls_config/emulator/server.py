"""Serving the emulator over a real socket: a uvicorn runner for ``mtls-config emulator serve`` and a threaded
server for tests (free port on 127.0.0.1, optional HTTPS with a fresh self-signed certificate).

Must never import: the client, the engine, the CLI.
"""

from __future__ import annotations

import ipaddress
import socket
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from mtls_config.emulator.certificates import self_signed_server_certificate
from mtls_config.emulator.faults import SOCKET_MODE
from mtls_config.emulator.guard import HostCheck


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    certificate: Path  # PEM; also the CA bundle a client should trust
    private_key: Path


def write_self_signed(folder: Path, host: str = "127.0.0.1") -> TlsFiles:
    cert_pem, key_pem = self_signed_server_certificate(host)
    cert_path, key_path = folder / "emulator-cert.pem", folder / "emulator-key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    return TlsFiles(cert_path, key_path)


_WILDCARD = frozenset({"0.0.0.0", "::", ""})


def served_hosts(host: str, port: int, scheme: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` header values a server listening on ``host:port`` answers: that address (and the loopback
    names when it is loopback), the machine's name when it listens on every address, and ``extra`` names; each
    with the port, and bare when the port is the scheme's default."""
    names = {host, *extra}
    if is_loopback(host) or host in _WILDCARD:
        names |= {"localhost", "127.0.0.1", "::1"}
    if host in _WILDCARD:
        names.discard(host)
        names.add(socket.gethostname())
    default_port = {"http": 80, "https": 443}[scheme]
    hosts: set[str] = set()
    for name in names:
        shown = f"[{name}]" if ":" in name else name
        hosts.add(f"{shown}:{port}".lower())
        if port == default_port:
            hosts.add(shown.lower())
    return frozenset(hosts)


def uvicorn_config(
    app: Starlette, host: str, port: int, tls: TlsFiles | None, *, log_level: str = "warning"
) -> uvicorn.Config:
    """Serve ``app`` on ``host:port``, answering only requests that name this server in their ``Host``."""
    app.state.connection_mode = SOCKET_MODE
    extra = app.state.config.allowed_hosts if hasattr(app.state, "config") else ()
    return uvicorn.Config(
        HostCheck(app, served_hosts(host, port, "https" if tls else "http", extra)),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        ssl_certfile=str(tls.certificate) if tls else None,
        ssl_keyfile=str(tls.private_key) if tls else None,
    )


class ThreadedServer:
    """The app served by uvicorn in a background thread on 127.0.0.1; a context manager for tests.

    with ThreadedServer(create_app(), tls=True) as server:
        httpx.get(server.url + "/api/now/table/sys_user", verify=str(server.ca_file), auth=("admin", "admin"))
    """

    def __init__(self, app: Starlette, *, host: str = "127.0.0.1", port: int = 0, tls: bool = False) -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._tmp = tempfile.TemporaryDirectory(prefix="mtls-emulator-") if tls else None
        self.tls = write_self_signed(Path(self._tmp.name), host) if self._tmp else None
        self._server = uvicorn.Server(uvicorn_config(app, host, self.port, self.tls, log_level="critical"))
        self._thread = threading.Thread(target=self._server.run, name="mtls-emulator", daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        return self.tls.certificate if self.tls else None

    def start(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(app: Starlette, *, host: str, port: int, tls: TlsFiles | None) -> None:
    """Run until interrupted (the CLI's foreground server)."""
    uvicorn.Server(uvicorn_config(app, host, port, tls, log_level="warning")).run()
