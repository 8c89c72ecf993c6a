"""TrustStoreCert: a ``sys_certificate`` record of type trust_store holding a partner's certificate.

format pem: the text is in ``pem_certificate``; format der: the file is attached. Either way the
certificate is compared by its SHA-256 fingerprint, so re-wrapped PEM text is not a change.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_config.resources.common import Attachment, DesiredResource, LiveRecord, LiveResource, to_bool, to_int, wire

KIND = "TrustStoreCert"
TABLE = "sys_certificate"
CERT_FIELD = "certificate"
RECORD_FIELDS = (
    "type",
    "format",
    "active",
    "short_description",
    "warn_in_days_to_expire",
    "expiration_notification",
)
# expires_in_days is left out: it changes every day, and a plan of the same state must not
INFO_FIELDS = ("expires", "valid_from", "subject", "issuer")


def fingerprint_der(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def fingerprint_pem(text: str) -> str | None:
    """Fingerprint of the first certificate in PEM text, whatever its line wrapping; None if unreadable."""
    try:
        cert = x509.load_pem_x509_certificate(normalise_pem(text).encode("ascii"))
    except ValueError:
        return None
    return fingerprint_der(cert.public_bytes(Encoding.DER))


def pem_of_der(der: bytes) -> str:
    """The PEM text of a DER certificate, in the form ``normalise_pem`` gives (64 columns, LF, one newline at the end)."""
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"]) + "\n"


def normalise_pem(text: str) -> str:
    """PEM text with the instance's whitespace quirks undone (CRLF, spaces, re-wrapped lines)."""
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        return text
    body = "".join(text[start + len(begin) : stop].split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([begin, *lines, end]) + "\n"


def canonical_fields(
    *, format: str, active: bool, description: str, warn_days: int, notify: bool, fingerprint: str
) -> dict[str, Any]:
    return {
        "type": "trust_store",
        "format": format,
        "active": active,
        "short_description": description,
        "warn_in_days_to_expire": warn_days,
        "expiration_notification": notify,
        CERT_FIELD: fingerprint,
    }


def live(
    address: str, name: str, record: LiveRecord, attachments: tuple[Attachment, ...], der_fingerprint: str | None
) -> LiveResource:
    fmt = record.get("format") or "pem"
    if fmt == "der":
        certificate = der_fingerprint
    else:
        certificate = fingerprint_pem(record.get("pem_certificate")) if record.get("pem_certificate") else None
    fields: dict[str, Any] = {
        "type": record.get("type"),
        "format": fmt,
        "active": to_bool(record.get("active")),
        "short_description": record.get("short_description"),
        "warn_in_days_to_expire": to_int(record.get("warn_in_days_to_expire")) or 0,  # an empty integer is 0
        "expiration_notification": to_bool(record.get("expiration_notification")),
        CERT_FIELD: certificate,
    }
    problems: list[str] = []
    if fmt == "der" and len(attachments) > 1:
        problems.append(f"{len(attachments)} files are attached to a DER certificate record")
    info = {k: record.get(k) for k in INFO_FIELDS if record.get(k)}
    return LiveResource(address, KIND, name, TABLE, {"": record}, fields, info, attachments, tuple(problems))


def payload(
    desired: DesiredResource, *, pem_text: str | None, fields: Mapping[str, Any] | None = None
) -> dict[str, str]:
    source = desired.fields if fields is None else fields
    out = {k: wire(source[k]) for k in RECORD_FIELDS if k in source}
    out["name"] = desired.name
    if source.get("format") == "pem":
        out["pem_certificate"] = pem_text or ""
    elif "format" in source:
        out["pem_certificate"] = ""
    return out
