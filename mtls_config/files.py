"""The files a run reads and the files it writes.

Reading: every file mtls-config reads (spec and project files, the files specs refer to, secret files, keystores,
keys, certificates, CA bundles, saved plans, the paths given to ``keystore``/``cert`` commands) goes through
``read_file``. It opens regular files only (a FIFO, device, socket or folder is refused, naming the path, without
blocking on it: the open is non-blocking and the file's type is checked on the open descriptor) and reads at most
the cap of the file's kind plus one byte, so ``/dev/zero``, a FIFO nobody writes to or a 1 GB keystore costs
neither memory nor time before its clear error.

Writing: ``write_private`` writes a file only its owner can read (reports, saved plans): the
bytes go to a new file created ``0600`` beside the target, which then replaces it, so the file is never readable
by others for a moment, and a reader never sees half of it. ``write_shared`` writes the same way a file others
may read (drift's metrics, which node-exporter reads as another user; they hold no secret).

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mtls_config.errors import MtlsConfigError, UnreadableFile

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class FileKind:
    """A kind of file the tool reads, with the most bytes it accepts of one."""

    label: str  # "secret file": names the file in messages
    cap: int


SPEC = FileKind("spec file", 1 * MIB)
PROJECT = FileKind("project file", 1 * MIB)
SECRET = FileKind("secret file", 64 * KIB)  # a password, or a PEM private key ({fromFile: ...}, --password-file)
KEY = FileKind("key file", 64 * KIB)  # a PEM private key (keystore assemble --key)
REFERENCED = FileKind("file", 8 * MIB)  # a keystore or certificate file a spec refers to (spec.file, build.cert)
KEYSTORE = FileKind("keystore file", 8 * MIB)
CERTIFICATE = FileKind("certificate file", 8 * MIB)  # PEM/DER certificates, chains, CSRs, CA bundles
PLAN = FileKind("plan file", 64 * MIB)
SYSTEM = FileKind("system file", 64 * KIB)  # /proc entries that say whether a lock's holder still runs
KINDS = (SPEC, PROJECT, SECRET, KEY, REFERENCED, KEYSTORE, CERTIFICATE, PLAN, SYSTEM)


def human_size(size: int) -> str:
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    if size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} bytes"


def _not_regular(mode: int) -> str | None:
    """Why a file of this type is refused, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a regular file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode):
        return "is a character device, not a regular file"
    if stat.S_ISBLK(mode):
        return "is a block device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def _too_large(kind: FileKind, size: int | None) -> str:
    said = f"is {size} bytes" if size is not None else "is larger than that"
    return f"{said}; a {kind.label} may be at most {kind.cap} bytes ({human_size(kind.cap)})"


_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def read_file(path: str | os.PathLike[str], kind: FileKind, *, shown: str | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``kind.cap`` of them; raises ``UnreadableFile``.

    ``shown``: how messages name the file (as the user wrote it); default ``path``."""
    name = shown if shown is not None else os.fspath(path)
    try:
        # A first look without opening: a device is never opened (opening some has effects), a socket cannot be.
        before = os.stat(path)
    except OSError as exc:
        raise UnreadableFile(kind.label, name, exc.strerror or type(exc).__name__, opened=False) from None
    refused = _not_regular(before.st_mode)
    if refused is None and before.st_size > kind.cap:
        refused = _too_large(kind, before.st_size)
    if refused is not None:
        raise UnreadableFile(kind.label, name, refused, opened=True)
    try:
        # Non-blocking: if the path was swapped for a FIFO since the look, the open returns at once.
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise UnreadableFile(kind.label, name, exc.strerror or type(exc).__name__, opened=False) from None
    try:
        refused = _not_regular(os.fstat(fd).st_mode)
        if refused is not None:
            raise UnreadableFile(kind.label, name, refused, opened=True)
        chunks: list[bytes] = []
        size = 0
        while size <= kind.cap:
            chunk = os.read(fd, min(kind.cap + 1 - size, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UnreadableFile(kind.label, name, exc.strerror or type(exc).__name__, opened=False) from None
    finally:
        os.close(fd)
    if size > kind.cap:  # the file grew past the cap after the look
        raise UnreadableFile(kind.label, name, _too_large(kind, None), opened=True)
    return b"".join(chunks)


def read_text(path: str | os.PathLike[str], kind: FileKind, *, shown: str | None = None) -> str:
    """``read_file`` decoded as UTF-8 (a BOM is dropped); raises ``UnreadableFile`` for text that is not UTF-8."""
    data = read_file(path, kind, shown=shown)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        name = shown if shown is not None else os.fspath(path)
        raise UnreadableFile(kind.label, name, f"is not UTF-8 text (byte {exc.start})", opened=True) from None


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``path`` (replacing it) as a file only its owner can read: created ``0600``, never widened, never
    seen half-written. A path that exists and is not a regular file is refused."""
    _replace(path, data, shared=False)


def write_shared(path: Path, data: bytes | str) -> None:
    """Write ``path`` as ``write_private`` does (whole or not at all, by a rename in its folder), readable as any
    new file is (the umask decides): for what another user's process reads and that holds no secret, the metrics
    node-exporter's textfile collector picks up."""
    _replace(path, data, shared=True)


def _replace(path: Path, data: bytes | str, *, shared: bool) -> None:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise MtlsConfigError(f"cannot write {path}: {exc.strerror}") from None
    if existing is not None:
        refused = _not_regular(existing.st_mode)
        if refused is not None:
            raise MtlsConfigError(f"cannot write {path}: it {refused}")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        # mkstemp creates the file 0600 (O_EXCL): never readable by others, not even for a moment.
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise MtlsConfigError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        if shared:
            umask = os.umask(0o077)  # read, then put back at once: there is no call that only reads it
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise MtlsConfigError(f"cannot write {path}: {exc.strerror}") from None


def open_private_append(path: Path) -> int:
    """A descriptor to append to ``path``, created ``0600`` if new (the journal); raises ``OSError``."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
