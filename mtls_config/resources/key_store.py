"""KeyStore: a ``sys_certificate`` record of type key_store (JKS) or pkcs12_key_store, file attached.

Owned fields: type, active, short_description, warn_in_days_to_expire, expiration_notification, the
keystore file (compared by digest) and the write-only key_store_password (compared through the
inventory's salted digest, never by value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtls_config.resources.common import Attachment, DesiredResource, LiveRecord, LiveResource, to_bool, to_int, wire

KIND = "KeyStore"
TABLE = "sys_certificate"
TYPES = {"jks": "key_store", "pkcs12": "pkcs12_key_store"}
FILE_FIELD = "keystore_file"
PASSWORD_FIELD = "key_store_password"
RECORD_FIELDS = ("type", "active", "short_description", "warn_in_days_to_expire", "expiration_notification")
# expires_in_days is left out: it changes every day, and a plan of the same state must not
INFO_FIELDS = ("expires", "valid_from", "subject", "issuer")


def canonical_fields(
    *, format: str, active: bool, description: str, warn_days: int, notify: bool, digest: str
) -> dict[str, Any]:
    return {
        "type": TYPES[format],
        "active": active,
        "short_description": description,
        "warn_in_days_to_expire": warn_days,
        "expiration_notification": notify,
        FILE_FIELD: digest,
    }


def live(
    address: str, name: str, record: LiveRecord, attachments: tuple[Attachment, ...], content_digest: str | None
) -> LiveResource:
    fields: dict[str, Any] = {
        "type": record.get("type"),
        "active": to_bool(record.get("active")),
        "short_description": record.get("short_description"),
        "warn_in_days_to_expire": to_int(record.get("warn_in_days_to_expire")) or 0,  # an empty integer is 0
        "expiration_notification": to_bool(record.get("expiration_notification")),
        FILE_FIELD: content_digest,
    }
    problems: list[str] = []
    if not attachments:
        problems.append("no keystore file is attached")
    elif len(attachments) > 1:
        problems.append(f"{len(attachments)} files are attached; the instance may load any of them")
    info = {k: record.get(k) for k in INFO_FIELDS if record.get(k)}
    return LiveResource(address, KIND, name, TABLE, {"": record}, fields, info, attachments, tuple(problems))


def payload(desired: DesiredResource, *, fields: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Table API values for the record's plain fields (not the file, not the password)."""
    source = desired.fields if fields is None else fields
    out = {k: wire(source[k]) for k in RECORD_FIELDS if k in source}
    out["name"] = desired.name
    return out
