"""What one run reads from outside the specs: secrets and the files specs name, each read once however many
specs name it.

A plan builds the desired state and lints the same specs; both read through one ``RunInputs``, so a keystore
file or password file shared by a thousand specs is read once per plan, not once per spec and stage. Nothing
outlives the run: the next one reads files as they are then. Keys of caches that depend on a password use
``password_key`` (an HMAC under a key of this run only), never the password.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mtls_config.files import REFERENCED, FileKind, read_file
from mtls_config.secrets import SecretRef, SecretValue

_SecretKey = tuple[str | None, str | None, Path | None]


@dataclass
class RunInputs:
    environ: dict[str, str] | None = field(default=None, repr=False)  # may hold secrets
    salt: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    _secrets: dict[_SecretKey, SecretValue] = field(default_factory=dict, repr=False)
    _files: dict[str, tuple[bytes, bytes]] = field(default_factory=dict, repr=False)
    # ``password_key`` of each password met, by the object (held here, so its id is not another's): the specs that
    # share a password file share one resolved secret, and its key is an HMAC worth doing once
    _password_keys: dict[int, tuple[SecretValue, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, environ: Mapping[str, str] | None) -> RunInputs:
        return cls(None if environ is None else dict(environ))

    def secret(self, ref: SecretRef, base_dir: Path) -> SecretValue:
        """The secret ``ref`` names (a file relative to ``base_dir``); raises ``SecretError`` as ``resolve`` does."""
        key = (ref.from_env, ref.from_file, base_dir if ref.from_file is not None else None)
        known = self._secrets.get(key)  # one lookup: a key's Path hashes in Python
        if known is None:
            known = self._secrets[key] = ref.resolve(base_dir, self.environ)
        return known

    def file(self, path: str, kind: FileKind = REFERENCED) -> tuple[bytes, bytes]:
        """The file's bytes and their SHA-256 digest; raises ``UnreadableFile`` when it cannot be read (or is not
        a regular file, or is larger than ``kind`` allows)."""
        if path not in self._files:
            data = read_file(path, kind)
            self._files[path] = data, hashlib.sha256(data).digest()
        return self._files[path]

    def password_key(self, password: SecretValue) -> str:
        known = self._password_keys.get(id(password))
        if known is None:
            known = self._password_keys[id(password)] = (password, password.salted_digest(self.salt))
        return known[1]
