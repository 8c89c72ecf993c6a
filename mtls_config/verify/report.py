"""What a verify run found: stages, findings (each with a message and a fix) and the handshake facts.

Plain frozen dataclasses; ``to_dict()`` gives the JSON shape the CLI prints with ``--json`` (documented in
docs/verify.md). Nothing here holds key material: certificates appear as subjects and fingerprints.

Never imports the client, the emulator, the CLI or anything that does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StageName(StrEnum):
    """The stages of one verify run, in the order they happen (client-cert is judged after http because
    TLS 1.3 servers report a rejected certificate only on the first read). ``instance`` comes first, for a binding
    whose records were read from the instance: would the instance use mutual auth for it at all?"""

    INSTANCE = "instance"
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    CLIENT_CERT = "client-cert"
    HTTP = "http"


# The stages of the handshake itself, which every run reports (``instance`` only when it was checked).
HANDSHAKE_STAGES = (StageName.DNS, StageName.CONNECT, StageName.TLS, StageName.CLIENT_CERT, StageName.HTTP)


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"  # an earlier stage failed
    UNKNOWN = "unknown"  # could not be observed (e.g. the TLS message hook is unavailable)


class Severity(StrEnum):
    FAIL = "fail"
    WARN = "warn"


@dataclass(frozen=True)
class Finding:
    """One diagnosis: what is wrong, in words an admin can act on, and how to fix it.

    ``code`` is stable (scripts match on it); ``rule`` is the lint rule it implements (E01-E04), if any.
    """

    code: str
    severity: Severity
    message: str
    fix: str
    stage: StageName
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
            "stage": self.stage.value,
            "rule": self.rule or None,
        }


@dataclass(frozen=True)
class StageResult:
    name: StageName
    status: Status
    summary: str
    duration_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name.value,
            "status": self.status.value,
            "summary": self.summary,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1),
            "details": self.details,
        }


@dataclass(frozen=True)
class CertificateSummary:
    """A certificate as shown in a report: never the bytes, only what identifies it."""

    subject: str
    issuer: str
    not_after: str  # ISO 8601, UTC
    sha256: str
    self_signed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_after": self.not_after,
            "sha256": self.sha256,
            "self_signed": self.self_signed,
        }


@dataclass(frozen=True)
class ClientCertObservation:
    """What the TLS message hook saw about client authentication.

    ``observed`` is False when the hook is unavailable: every other field is then unknown, not negative.
    """

    observed: bool
    requested: bool = False
    ca_names: tuple[str, ...] = ()  # the server's acceptable CA names, RFC 4514, in the order sent
    certificates_sent: int | None = None  # length of the chain we sent (0: an empty Certificate message)
    java_would_send: bool | None = None  # None: not requested or not observed

    def to_dict(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "requested": self.requested,
            "ca_names": list(self.ca_names),
            "certificates_sent": self.certificates_sent,
            "java_would_send": self.java_would_send,
        }


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of one verify run. ``ok`` is True when no finding has severity ``fail``."""

    target: str  # the binding's name, or the URL when verifying an endpoint directly
    url: str
    host: str
    port: int
    server_name: str
    stages: tuple[StageResult, ...]
    findings: tuple[Finding, ...]
    tls_version: str | None = None
    cipher: str | None = None
    server_chain: tuple[CertificateSummary, ...] = ()
    client_cert: ClientCertObservation = field(default_factory=lambda: ClientCertObservation(observed=False))
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.FAIL for f in self.findings)

    @property
    def diagnosis(self) -> Finding | None:
        """The first failing finding: the reason to fix first."""
        return next((f for f in self.findings if f.severity is Severity.FAIL), None)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARN)

    def stage(self, name: StageName) -> StageResult:
        return next(s for s in self.stages if s.name is name)

    def to_dict(self) -> dict[str, Any]:
        diagnosis = self.diagnosis
        return {
            "target": self.target,
            "url": self.url,
            "host": self.host,
            "port": self.port,
            "server_name": self.server_name,
            "ok": self.ok,
            "diagnosis": None if diagnosis is None else diagnosis.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "stages": [s.to_dict() for s in self.stages],
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "server_chain": [c.to_dict() for c in self.server_chain],
            "client_cert": self.client_cert.to_dict(),
            "http_status": self.http_status,
        }
