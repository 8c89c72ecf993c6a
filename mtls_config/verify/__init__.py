"""verify: prove a mutual-TLS set-up works with a real handshake and one real HTTP request, and say why not.

``verify_endpoint`` is the core (cryptography objects in, ``VerifyReport`` out); ``targets`` resolves what to
verify from specs (binding -> profile -> keystore, trust store certificates). The library never prints.
Never imports the emulator or the CLI.
"""

from mtls_config.verify.endpoint import DEFAULT_TIMEOUT, DEFAULT_TLS_VERSIONS, parse_endpoint, verify_endpoint
from mtls_config.verify.report import (
    CertificateSummary,
    ClientCertObservation,
    Finding,
    Severity,
    StageName,
    StageResult,
    Status,
    VerifyReport,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TLS_VERSIONS",
    "CertificateSummary",
    "ClientCertObservation",
    "Finding",
    "Severity",
    "StageName",
    "StageResult",
    "Status",
    "VerifyReport",
    "parse_endpoint",
    "verify_endpoint",
]
