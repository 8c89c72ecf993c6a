"""The project's exception tree: every error the library raises is one of these.

The CLI catches ``MtlsConfigError`` and prints ``str(exc)``; nothing else may reach the user as a traceback.
Messages never carry a secret value (passwords, key bytes, tokens): they name the reference instead, and every
message and hint is passed through ``mtls_config.redaction`` when the error is made, so that a secret an
instance echoes back is masked before any text leaves the error.

    MtlsConfigError
    ├── SpecError                 one or more problems in spec files (each a ``Problem`` with file:line:col)
    ├── ProjectError              the project file ``mtls-config.yaml`` or an environment in it
    ├── SecretError               a secret reference could not be resolved (variable unset, file unreadable)
    ├── UnreadableFile            a file cannot be read, is not a regular file, or is larger than its kind allows
    ├── KeystoreError             a keystore, key, certificate or CSR could not be read or built
    │   ├── KeystorePasswordError a store or key password is wrong (the message never holds the password)
    │   └── KeystoreRuleError     building would break a lint rule; ``rule`` names it (K06, K08, ...)
    ├── InstanceError             talking to the instance failed (raised by the client, mapped once)
    │   ├── InstanceUnreachable   DNS, refused, timeout, TLS failure, dropped connection after retries
    │   │   └── InstanceTimeout   the command's time limit (--timeout) ran out while waiting for the instance
    │   ├── AuthenticationFailed  401 / OAuth token refused
    │   ├── PermissionDenied      403 (ACL); the hint names the roles needed
    │   ├── RecordNotFound        404 on a record
    │   ├── TableNotFound         400 "Invalid table" / 404 on a table (plugin or table missing)
    │   ├── RateLimited           429 after the retry budget is spent
    │   ├── ConflictError         optimistic-concurrency check failed (sys_mod_count moved)
    │   └── BadResponse           the instance answered something we cannot use (not JSON, wrong shape)
    ├── PlanError                 a plan cannot be built, loaded or trusted
    │   ├── StalePlan             live records changed since the plan was made
    │   ├── UnsafePlan            the plan deletes more than allowed without an explicit flag
    │   └── UnknownKind           a resource kind this version does not know (e.g. in another version's inventory)
    ├── ApplyError                an apply finished with failed resources (the journal says which)
    │   └── WriteNotKept          the instance answered a write as done but did not keep a field as sent
    ├── LockError                 another run holds the stack's lock
    ├── Interrupted               a signal (Ctrl-C, SIGTERM) stopped the run; says what was done before it
    └── VerifyError               a verify run could not be carried out (not: the handshake failed)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mtls_config.redaction import redact


class MtlsConfigError(Exception):
    """Root of every error the library raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # Whatever a message was built from (an instance's echo of a request body), a secret of this run never
        # gets into it: not into str(), repr(), args, a journal line or a report made from it.
        message = redact(message)
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = redact(hint)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a spec file, rendered as ``path:line:col: kind/name: field: message``."""

    path: str
    line: int
    column: int
    address: str = ""  # "KeyStore/acme-client", or "" when not yet known
    field: str = ""  # "spec.password", or "" for the whole document
    message: str = ""

    def __str__(self) -> str:
        parts = [f"{self.path}:{self.line}:{self.column}"]
        if self.address:
            parts.append(self.address)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class SpecError(MtlsConfigError):
    """Spec files hold problems; all of them are in ``problems``, sorted by place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(replace(p, message=redact(p.message)) for p in problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in spec files"
        super().__init__(head + ":\n" + "\n".join(str(p) for p in self.problems))


class ProjectError(MtlsConfigError):
    pass


class SecretError(MtlsConfigError):
    pass


class UnreadableFile(MtlsConfigError):
    """A file could not be read, is not a regular file (FIFO, device, socket, folder), or is larger than its kind
    allows (``mtls_config.files``). ``reason`` says why without naming the file ("is a FIFO (named pipe), not a
    regular file"), for callers that name it themselves (a spec problem points at the field)."""

    def __init__(self, label: str, path: str, reason: str, *, opened: bool) -> None:
        self.label = label
        self.path = path
        self.reason = reason
        self.opened = opened  # False: the file could not be opened or read at all (missing, no permission)
        super().__init__(f"{label} {path} {reason}" if opened else f"cannot read {label} {path}: {reason}")


class KeystoreError(MtlsConfigError):
    pass


class KeystorePasswordError(KeystoreError):
    pass


class KeystoreRuleError(KeystoreError):
    """Assembling refused because the parts break lint rule ``rule`` (e.g. K06: key does not match)."""

    def __init__(self, rule: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.rule = rule


class InstanceError(MtlsConfigError):
    """An error from (or on the way to) the instance. ``status`` is the HTTP status when there was one."""

    status: int | None = None

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        if status is not None:
            self.status = status


class InstanceUnreachable(InstanceError):
    pass


class InstanceTimeout(InstanceUnreachable):
    pass


class AuthenticationFailed(InstanceError):
    pass


class PermissionDenied(InstanceError):
    pass


class RecordNotFound(InstanceError):
    pass


class TableNotFound(InstanceError):
    pass


class RateLimited(InstanceError):
    pass


class ConflictError(InstanceError):
    pass


class BadResponse(InstanceError):
    pass


class PlanError(MtlsConfigError):
    pass


class StalePlan(PlanError):
    pass


class UnsafePlan(PlanError):
    pass


class UnknownKind(PlanError):
    pass


class ApplyError(MtlsConfigError):
    pass


class WriteNotKept(ApplyError):
    """A create or update answered 200/201, and the record the instance returned does not hold a field as sent.
    ``columns`` names them ("table.column") without their values, for the journal."""

    def __init__(self, message: str, *, columns: tuple[str, ...], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.columns = columns


class LockError(MtlsConfigError):
    """``held``: the lock record (a ``mtls_config.lock.LockInfo``) when another run holds it, so that the CLI can
    name the exact commands that clear it."""

    held: object | None = None


class Interrupted(MtlsConfigError):
    """A signal (Ctrl-C, SIGTERM) stopped the run. ``result``: what an interrupted apply did, resource by resource
    (a ``mtls_config.changes.ApplyResult``), when it had begun writing; ``stage``: what it was doing;
    ``lock_released``: whether the stack's lock was given back (None: no lock was held, or it is not known);
    ``signal``: the signal's number, set by the CLI that caught it."""

    result: object | None = None
    stage: str = ""
    lock_released: bool | None = None
    signal: int = 2  # SIGINT
    signals: int = 1  # how many it received: a second one cut the clean-up short


class VerifyError(MtlsConfigError):
    pass
