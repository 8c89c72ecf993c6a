"""Keystore toolkit: read, build, compare, export and lint client keystores and partner certificates.

Pure crypto: bytes in, values out (``speclint`` alone reads the files a spec names). Never imports the client,
the emulator or the CLI, and never prints. Secrets come in as ``SecretValue`` and never leave in a message.
"""

from __future__ import annotations

from mtls_config.keystore.assemble import alias_for, assemble_keystore, order_chain
from mtls_config.keystore.certs import (
    CertificateInfo,
    build_chain,
    certificate_info,
    fingerprint,
    load_certificates,
    spki_sha256,
)
from mtls_config.keystore.jks_format import JksPrivateKeyEntry, JksTrustedCertEntry, encode_jks
from mtls_config.keystore.keys import KEY_TYPES, KeyType, load_private_key, new_key_and_csr
from mtls_config.keystore.lint import (
    Finding,
    Severity,
    has_errors,
    lint_contents,
    lint_keystore,
    lint_trust_certs,
    sort_findings,
)
from mtls_config.keystore.store import (
    KeyMaterial,
    KeystoreContents,
    KeystoreEntry,
    StoredCertificate,
    canonical_digest,
    canonical_model,
    detect_store_type,
    export_certificate,
    load_key_entry,
    read_keystore,
)

__all__ = [
    "KEY_TYPES",
    "CertificateInfo",
    "Finding",
    "JksPrivateKeyEntry",
    "JksTrustedCertEntry",
    "KeyMaterial",
    "KeyType",
    "KeystoreContents",
    "KeystoreEntry",
    "Severity",
    "StoredCertificate",
    "alias_for",
    "assemble_keystore",
    "build_chain",
    "canonical_digest",
    "canonical_model",
    "certificate_info",
    "detect_store_type",
    "encode_jks",
    "export_certificate",
    "fingerprint",
    "has_errors",
    "lint_contents",
    "lint_keystore",
    "lint_trust_certs",
    "load_certificates",
    "load_key_entry",
    "load_private_key",
    "new_key_and_csr",
    "order_chain",
    "read_keystore",
    "sort_findings",
    "spki_sha256",
]
