"""Secret references and resolved secret values.

A spec never holds a secret: it holds a ``SecretRef`` (``{fromEnv: VAR}`` or ``{fromFile: path}``), resolved
only when an operation needs the value. A resolved ``SecretValue`` hides itself from ``repr``/``str``/logging,
registers itself with the run's registry of secrets (``mtls_config.redaction``) so that the error boundary masks
it in any text, and compares in constant time; the only way out is ``reveal()``.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from mtls_config.errors import SecretError, UnreadableFile
from mtls_config.files import SECRET, read_file
from mtls_config.redaction import register

LITERAL_SECRET_MESSAGE = (
    "a literal secret is not allowed in a spec; use {fromEnv: VARIABLE} or {fromFile: path} "
    "so the value stays out of git"
)
MAX_SECRET_FILE_BYTES = SECRET.cap


class SecretValue:
    """A secret in memory. ``str``, ``repr`` and formatting never show it, and making one registers the value with
    ``mtls_config.redaction``, so that no message, log line, journal or report can show it either, whatever
    echoes it back. ``published``: a documented default (the embedded instance's ``admin``), not a secret, so
    not masked in text."""

    __slots__ = ("_published", "_source", "_value")

    def __init__(self, value: bytes, source: str, *, published: bool = False) -> None:
        self._value = value
        self._source = source
        self._published = published
        if not published:
            register(value)

    @property
    def published(self) -> bool:
        return self._published

    @property
    def source(self) -> str:
        """Where the value came from (``env:VAR`` / ``file:path``): safe to print."""
        return self._source

    def reveal(self) -> bytes:
        return self._value

    def reveal_text(self) -> str:
        return self._value.decode("utf-8")

    def salted_digest(self, salt: str) -> str:
        """A digest that shows whether the value changed without saying what it is."""
        return "hmac-sha256:" + hmac.new(salt.encode(), self._value, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"SecretValue(<hidden from {self._source}>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value).digest())

    def __reduce__(self) -> Any:
        raise TypeError("a SecretValue cannot be pickled")


class SecretRef(BaseModel):
    """Where to find a secret: exactly one of ``fromEnv`` or ``fromFile``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"oneOf": [{"required": ["fromEnv"]}, {"required": ["fromFile"]}]},
    )

    from_env: str | None = Field(
        default=None,
        alias="fromEnv",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Name of an environment variable that holds the secret.",
    )
    from_file: str | None = Field(
        default=None,
        alias="fromFile",
        min_length=1,
        description="Path of a file that holds the secret (relative to the spec file). "
        "A single trailing newline is removed.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_literal(cls, data: Any) -> Any:
        if isinstance(data, str | int | float | bytes):
            raise PydanticCustomError("literal_secret", LITERAL_SECRET_MESSAGE)
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if self.from_env is not None and self.from_file is not None:
            raise PydanticCustomError("secret_ref_both", "give either fromEnv or fromFile, not both")
        if self.from_env is None and self.from_file is None:
            raise PydanticCustomError(
                "secret_ref_empty", "a secret reference needs {fromEnv: VARIABLE} or {fromFile: path}"
            )
        return self

    def describe(self) -> str:
        return f"env:{self.from_env}" if self.from_env is not None else f"file:{self.from_file}"

    def resolve(self, base_dir: Path | None = None, environ: dict[str, str] | None = None) -> SecretValue:
        """Read the secret now. ``fromFile`` is relative to ``base_dir`` (the spec file's folder). Raises
        ``SecretError`` when the secret is unavailable (variable unset, file missing or unreadable), and
        ``UnreadableFile`` when the file is there but can never be a secret (not a regular file, too large)."""
        env = os.environ if environ is None else environ
        if self.from_env is not None:
            value = env.get(self.from_env)
            if value is None:
                raise SecretError(
                    f"environment variable {self.from_env} is not set",
                    hint=f"export {self.from_env} before running, e.g. from your CI secret store",
                )
            if value == "":
                raise SecretError(f"environment variable {self.from_env} is empty")
            # surrogateescape: the bytes of a variable that is not UTF-8, as the OS handed them to Python
            return SecretValue(value.encode("utf-8", "surrogateescape"), self.describe())
        assert self.from_file is not None
        path = Path(self.from_file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            data = read_file(path, SECRET, shown=self.from_file)
        except UnreadableFile as exc:
            if exc.opened:
                raise  # not a regular file, or too large: wrong wherever the run happens, not just unavailable here
            raise SecretError(exc.message) from None
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        if not data:
            raise SecretError(f"secret file {self.from_file} is empty")
        return SecretValue(data, self.describe())
