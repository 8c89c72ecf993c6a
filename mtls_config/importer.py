"""Adopt an existing hand-made set-up: write specs for the instance's live mTLS records and own them.

Reads keystores, trust-store certificates, protocol profiles and messages with mutual auth enabled,
downloads keystore and DER files, and returns spec documents (with secret references for passwords,
never values) plus the inventory entries that make the stack own those records, so that the written
specs plan as no-op right away. Passwords cannot be read back from the instance: they are recorded as
"as found" and set again only when the spec's value changes or the record is edited elsewhere.

Never imports the emulator or the CLI.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from mtls_config.concurrency import gather_all
from mtls_config.instance import Instance
from mtls_config.inventory import IMPORTED_PASSWORD, Inventory, OwnedRecord, OwnedResource
from mtls_config.inventory_store import read_inventory
from mtls_config.observe import CERT_FIELDS, PROFILE_FIELDS
from mtls_config.reads import attachment_of, live_record
from mtls_config.resources import message_binding, trust_store_cert
from mtls_config.resources.common import Attachment, LiveRecord, ref_value, to_bool, to_int

API_VERSION = "mtls-config/v1"


@dataclass
class ImportResult:
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content
    inventory: Inventory | None = None
    inventory_record: LiveRecord | None = None
    imported: list[str] = field(default_factory=list)  # addresses
    skipped: list[str] = field(default_factory=list)  # why some records were left out


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "item"


def _free(taken: Collection[str], stem: str, suffix: str = "", sep: str = "-") -> str:
    """``stem + suffix``, or ``stem-2 + suffix``... when another record's name gave the same one already."""
    candidate, n = stem + suffix, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}{sep}{n}{suffix}"
    return candidate


def _env_var(name: str) -> str:
    return "MTLS_KEYSTORE_PASSWORD_" + (re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "X")


def _doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


async def import_live(client: Instance, stack: str, *, patterns: Sequence[str] = ()) -> ImportResult:
    result = ImportResult()
    inventory, inv_record, _ = await read_inventory(client, stack)
    owned_ids = {r.sys_id for entry in inventory.resources.values() for r in entry.records}
    certs_rows, profile_rows, *msg_rows = await gather_all(
        [
            client.list(
                "sys_certificate",
                query="typeINkey_store,pkcs12_key_store,trust_store",
                fields=list(CERT_FIELDS),
                page_size=10000,
            ),
            client.list("sys_protocol_profile", fields=list(PROFILE_FIELDS), page_size=10000),
            *[
                client.list(
                    t.message,
                    query="use_mutual_auth=true",
                    fields=["sys_id", "name", *message_binding.OWNED, "sys_mod_count"],
                    page_size=10000,
                )
                for t in message_binding.TABLES.values()
            ],
            *[
                client.list(
                    t.function,
                    query="use_mutual_auth=true",
                    fields=["sys_id", "function_name", t.parent_field, *message_binding.OWNED, "sys_mod_count"],
                    page_size=10000,
                )
                for t in message_binding.TABLES.values()
            ],
        ]
    )
    certs = [live_record("sys_certificate", r) for r in certs_rows]
    profiles = [live_record("sys_protocol_profile", r) for r in profile_rows]
    cert_by_id = {c.sys_id: c for c in certs}
    profile_by_id = {p.sys_id: p for p in profiles}

    wanted_profiles = [p for p in profiles if p.sys_id not in owned_ids and _matches(p.get("protocol"), patterns)]
    wanted_certs = {c.sys_id: c for c in certs if c.sys_id not in owned_ids and _matches(c.get("name"), patterns)}
    for p in wanted_profiles:  # a profile's keystore comes along, or the specs would not validate
        ks = cert_by_id.get(ref_value(p.values.get("keystore")))
        if ks is not None and ks.sys_id not in owned_ids:
            wanted_certs[ks.sys_id] = ks

    attachments: dict[str, list[Attachment]] = {}
    if wanted_certs:
        for row in await client.list_attachments("sys_certificate", sorted(wanted_certs)):
            attachments.setdefault(str(row.get("table_sys_id", "")), []).append(attachment_of(row))
    to_download = [(c, atts[0]) for c in wanted_certs.values() if len(atts := attachments.get(c.sys_id, [])) == 1]
    contents = await gather_all(client.download_attachment(a.sys_id) for _, a in to_download)
    files_of = {c.sys_id: (a, data) for (c, a), data in zip(to_download, contents, strict=True)}

    docs: dict[str, list[dict[str, Any]]] = {
        "keystores": [],
        "trust-store-certs": [],
        "protocol-profiles": [],
        "message-bindings": [],
    }
    entries: dict[str, OwnedResource] = {}
    variables: set[str] = set()
    for cert in sorted(wanted_certs.values(), key=lambda c: c.get("name")):
        name = cert.get("name")
        record_type = cert.get("type")
        common: dict[str, Any] = {
            "active": to_bool(cert.get("active")),
            "description": cert.get("short_description"),
            "warnDays": to_int(cert.get("warn_in_days_to_expire")) or 0,
            "expirationNotification": to_bool(cert.get("expiration_notification")),
        }
        found = files_of.get(cert.sys_id)
        entry = OwnedResource(
            address="", records=[OwnedRecord(table="sys_certificate", sys_id=cert.sys_id, mod_count=cert.mod_count)]
        )
        if record_type in ("key_store", "pkcs12_key_store"):
            if found is None:
                result.skipped.append(
                    f"KeyStore/{name}: {len(attachments.get(cert.sys_id, []))} files attached, need exactly one"
                )
                continue
            att, data = found
            fmt = "jks" if record_type == "key_store" else "pkcs12"
            path = _free(result.files, f"files/{_slug(name)}", ".jks" if fmt == "jks" else ".p12")
            result.files[path] = data
            variable = _free(variables, _env_var(name), sep="_")
            variables.add(variable)
            spec = {"format": fmt, "file": path, "password": {"fromEnv": variable}, **common}
            docs["keystores"].append(_doc("KeyStore", name, spec))
            address = f"KeyStore/{name}"
            entry.content_attachment, entry.content_size = att.sys_id, att.size
            entry.content_digest = "sha256:" + hashlib.sha256(data).hexdigest()
            entry.password_digest = IMPORTED_PASSWORD
            opaque = cert.get("key_store_password")
            entry.password_opaque = hashlib.sha256(opaque.encode()).hexdigest() if opaque else None
        else:
            fmt = cert.get("format") or "pem"
            address = f"TrustStoreCert/{name}"
            if fmt == "der":
                if found is None:
                    result.skipped.append(f"{address}: no single DER file attached")
                    continue
                att, data = found
                path = _free(result.files, f"files/{_slug(name)}", ".der")
                result.files[path] = data
                spec = {"format": "der", "file": path, **common}
                entry.content_attachment, entry.content_size = att.sys_id, att.size
                entry.content_digest = "sha256:" + hashlib.sha256(data).hexdigest()
            else:
                text = trust_store_cert.normalise_pem(cert.get("pem_certificate"))
                path = _free(result.files, f"files/{_slug(name)}", ".pem")
                result.files[path] = text.encode()
                spec = {"format": "pem", "file": path, **common}
            docs["trust-store-certs"].append(_doc("TrustStoreCert", name, spec))
        entry.address = address
        entries[address] = entry

    for p in sorted(wanted_profiles, key=lambda p: p.get("protocol")):
        ks = cert_by_id.get(ref_value(p.values.get("keystore")))
        if ks is None or (f"KeyStore/{ks.get('name')}" not in entries and ks.sys_id not in owned_ids):
            result.skipped.append(f"ProtocolProfile/{p.get('protocol')}: its keystore could not be imported")
            continue
        spec = {"port": to_int(p.get("default_port")) or 443, "keyStore": ks.get("name")}
        docs["protocol-profiles"].append(_doc("ProtocolProfile", p.get("protocol"), spec))
        address = f"ProtocolProfile/{p.get('protocol')}"
        entries[address] = OwnedResource(
            address=address, records=[OwnedRecord(table="sys_protocol_profile", sys_id=p.sys_id, mod_count=p.mod_count)]
        )

    n = len(message_binding.TABLES)
    messages, functions = msg_rows[:n], msg_rows[n:]
    imported_profiles = {d["metadata"]["name"] for d in docs["protocol-profiles"]}
    for (kind_name, tables), msg_list, fn_list in zip(message_binding.TABLES.items(), messages, functions, strict=True):
        fn_records = [live_record(tables.function, r) for r in fn_list]
        for row in sorted(msg_list, key=lambda r: str(r.get("name"))):
            msg = live_record(tables.message, row)
            if msg.sys_id in owned_ids or not _matches(msg.get("name"), patterns):
                continue
            profile = profile_by_id.get(ref_value(msg.values.get("protocol_name")))
            if profile is None or profile.get("protocol") not in imported_profiles:
                result.skipped.append(f"{kind_name} message '{msg.get('name')}': its protocol profile is not imported")
                continue
            protocol = profile.get("protocol")
            fns = sorted(
                (f for f in fn_records if ref_value(f.values.get(tables.parent_field)) == msg.sys_id
                 and ref_value(f.values.get("protocol_name")) == profile.sys_id),
                key=lambda f: f.get("function_name"),
            )  # fmt: skip
            binding: dict[str, Any] = {
                "message": {"type": kind_name, "name": msg.get("name")},
                "protocolProfile": protocol,
            }
            if fns:
                binding["functions"] = [f.get("function_name") for f in fns]
            taken = {d["metadata"]["name"] for d in docs["message-bindings"]}
            name = _free(taken, _slug(f"{kind_name}-{msg.get('name')}"))
            docs["message-bindings"].append(_doc("MessageBinding", name, binding))
            address = f"MessageBinding/{name}"
            unbound = {"use_mutual_auth": "false", "protocol_name": ""}
            records = [
                OwnedRecord(
                    table=msg.table, sys_id=msg.sys_id, part="message", mod_count=msg.mod_count, original=unbound
                )
            ]
            records += [
                OwnedRecord(
                    table=f.table,
                    sys_id=f.sys_id,
                    part=f"fn:{f.get('function_name')}",
                    mod_count=f.mod_count,
                    original=unbound,
                )
                for f in fns
            ]
            entries[address] = OwnedResource(address=address, records=records)

    for group, items in docs.items():
        if items:
            text = "# Written by 'mtls-config import'. Passwords are secret references: set the variables before planning.\n"
            text += yaml.safe_dump_all(items, sort_keys=False, allow_unicode=True, explicit_start=True)
            result.files[f"{group}.yaml"] = text.encode()
    updated = inventory.model_copy(deep=True)
    updated.resources.update(entries)
    result.inventory = updated
    result.inventory_record = inv_record
    result.imported = sorted(entries)
    return result
