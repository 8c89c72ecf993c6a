"""Load our client key and chain into an ``ssl.SSLContext`` without leaving key material on disk.

``SSLContext.load_cert_chain`` reads only from paths (CPython gh-60691). Two ways, tried in this order:

1. ``memfd``: an anonymous in-memory file (``os.memfd_create``, Linux) read through ``/proc/self/fd/N``;
   nothing touches a file system, and the descriptor is closed as soon as OpenSSL has read it.
2. ``tempfile``: a ``0600`` temporary file holding the chain and the key as an *encrypted* PKCS#8 PEM (a
   random one-time password handed to OpenSSL through a callback), removed in a ``finally`` as soon as it is
   loaded, whatever happens.

After loading, the key lives only inside the SSLContext. Nothing here logs or returns key bytes.
Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import tempfile
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from mtls_config.errors import VerifyError

KeyTransport = Literal["auto", "memfd", "tempfile"]


def memfd_available() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def load_client_identity(
    ctx: ssl.SSLContext,
    key: PrivateKeyTypes,
    chain: Sequence[x509.Certificate],
    *,
    transport: KeyTransport = "auto",
) -> Literal["memfd", "tempfile"]:
    """Load ``key`` and ``chain`` (leaf first) into ``ctx``; return the transport used."""
    if not chain:
        raise VerifyError("the key entry has no certificate chain")
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    use_memfd = transport == "memfd" or (transport == "auto" and memfd_available())
    if transport == "memfd" and not memfd_available():
        raise VerifyError("in-memory key loading (memfd) is not available on this system")
    try:
        if use_memfd:
            _load_via_memfd(ctx, key, chain_pem)
            return "memfd"
        _load_via_tempfile(ctx, key, chain_pem)
        return "tempfile"
    except ssl.SSLError as exc:
        subject = chain[0].subject.rfc4514_string()
        raise VerifyError(
            f"OpenSSL refused the client key and certificate '{subject}' ({exc.reason or 'error'})",
            hint="the private key must belong to the first certificate of the key entry's chain",
        ) from None


def _load_via_memfd(ctx: ssl.SSLContext, key: PrivateKeyTypes, chain_pem: bytes) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.memfd_create("mtls-config-client-identity", os.MFD_CLOEXEC)
    try:
        os.write(fd, chain_pem + key_pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _load_via_tempfile(ctx: ssl.SSLContext, key: PrivateKeyTypes, chain_pem: bytes) -> None:
    one_time_password = secrets.token_urlsafe(32).encode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time_password),
    )
    fd, path = tempfile.mkstemp(prefix="mtls-config-", suffix=".pem")  # mkstemp creates it 0600
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(chain_pem + key_pem)
        ctx.load_cert_chain(path, password=lambda: one_time_password)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
