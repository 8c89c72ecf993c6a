"""Read the instance's live state for a stack, in one round trip when nothing was deleted from the specs.

Round 1 (concurrent, ``read_first``): the stack's inventory; per table, one query for every desired natural
key (``nameIN…``, chunked by the client for URL length, paginated with large pages, only needed columns);
the metadata of every attachment on the certificate table. It needs only the specs' names, so a plan starts
it before building the desired state.
Round 2, only when needed: records the inventory owns that the specs no longer name, references that point
outside what was read.
Round 3, only when needed: downloads of files the inventory cannot vouch for (attachment id and size changed).
The number of requests does not grow with the number of resources except by pagination and chunking
(and by one query per name holding a comma, which an IN list cannot carry).

Only reads. Never imports the emulator or the CLI; talks to the instance only through ``Instance``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from mtls_config.concurrency import gather, gather_all
from mtls_config.desired import Desired
from mtls_config.errors import MtlsConfigError
from mtls_config.instance import Instance
from mtls_config.inventory import Inventory, OwnedResource
from mtls_config.inventory_store import read_inventory
from mtls_config.keystore import canonical_digest, read_keystore
from mtls_config.reads import attachment_of, read_in
from mtls_config.resources import key_store, message_binding, protocol_profile, trust_store_cert
from mtls_config.resources.common import Attachment, DesiredResource, LiveRecord, LiveResource, ref_value
from mtls_config.spec.loader import SpecSet
from mtls_config.spec.models import MessageBinding

CERT_FIELDS = (
    "sys_id", "name", "type", "format", "active", "short_description", "warn_in_days_to_expire",
    "expiration_notification", "pem_certificate", "key_store_password", "expires", "valid_from",
    "expires_in_days", "subject", "issuer", "sys_mod_count",
)  # fmt: skip
PROFILE_FIELDS = ("sys_id", "protocol", "default_port", "keystore", "sys_mod_count")
CERT_KINDS = ("KeyStore", "TrustStoreCert")


@dataclass(frozen=True)
class Live:
    """What the instance holds for a stack: its inventory and a live view of every relevant resource."""

    stack: str
    inventory: Inventory
    inventory_record: LiveRecord | None
    inventory_attachment: Attachment | None
    resources: dict[str, LiveResource]  # desired and owned addresses found on the instance
    binding_errors: dict[str, str] = field(default_factory=dict)  # address -> why it cannot be bound
    opaque_passwords: dict[str, str] = field(default_factory=dict, repr=False)  # address -> sha256 of the opaque value
    duplicates: dict[str, str] = field(default_factory=dict)  # address -> several records, none clearly ours

    def owned(self, address: str) -> OwnedResource | None:
        return self.inventory.resources.get(address)


@dataclass(frozen=True)
class NaturalKeys:
    """What the first round of reads looks records up by. The specs alone say it, so the reads can go out
    before the desired state is built (files read, keystores parsed, secrets resolved)."""

    certificates: tuple[str, ...]
    protocols: tuple[str, ...]
    messages: tuple[tuple[str, tuple[str, ...]], ...]  # (binding type, message names), per type

    @classmethod
    def of(cls, resources: Iterable[tuple[str, str, str]]) -> NaturalKeys:
        """From (kind, name, message type and name as "type/name" for a binding, else "") triples."""
        certificates: set[str] = set()
        protocols: set[str] = set()
        messages: dict[str, set[str]] = {t: set() for t in message_binding.TABLES}
        for kind, name, message in resources:
            if kind in CERT_KINDS:
                certificates.add(name)
            elif kind == "ProtocolProfile":
                protocols.add(name)
            elif kind == "MessageBinding":
                kind_name, _, message_name = message.partition("/")
                messages.setdefault(kind_name, set()).add(message_name)
        return cls(
            tuple(sorted(certificates)),
            tuple(sorted(protocols)),
            tuple((t, tuple(sorted(names))) for t, names in sorted(messages.items())),
        )

    @classmethod
    def of_specs(cls, specs: SpecSet) -> NaturalKeys:
        return cls.of(
            (r.kind, r.name, f"{r.spec.message.type}/{r.spec.message.name}" if isinstance(r, MessageBinding) else "")
            for r in specs.resources
        )

    @classmethod
    def of_desired(cls, desired: Desired) -> NaturalKeys:
        return cls.of(
            (r.kind, r.name, f"{r.target['type']}/{r.target['message']}" if r.kind == "MessageBinding" else "")
            for r in desired.resources
        )


@dataclass(frozen=True)
class FirstRead:
    """The first round of reads: the inventory, every table by natural key, every certificate attachment."""

    keys: NaturalKeys
    inventory: Inventory
    inventory_record: LiveRecord | None
    inventory_attachment: Attachment | None
    certificates: list[LiveRecord]
    certificate_attachments: list[dict[str, Any]]
    profiles: list[LiveRecord]
    messages: dict[str, tuple[list[LiveRecord], list[LiveRecord]]]  # binding type -> (messages, functions)


async def read_first(client: Instance, keys: NaturalKeys, stack: str) -> FirstRead:
    """Round 1, all at once. Attachments are listed for the whole certificate table: listing them by record
    would have to wait for the certificates' sys_ids, one more round trip on every plan."""
    message_reads = []
    for kind_name, names in keys.messages:
        tables = message_binding.TABLES[kind_name]
        msg_fields = ("sys_id", "name", *message_binding.OWNED, tables.endpoint_field, "sys_mod_count")
        fn_fields = (
            "sys_id", "function_name", tables.parent_field, *message_binding.OWNED, tables.endpoint_field,
            "sys_mod_count",
        )  # fmt: skip
        message_reads.append(read_in(client, tables.message, "name", names, msg_fields))
        message_reads.append(read_in(client, tables.function, f"{tables.parent_field}.name", names, fn_fields))
    (inventory, record, attachment), certs, attachments, profiles, message_rows = await gather(
        read_inventory(client, stack),
        read_in(client, "sys_certificate", "name", keys.certificates, CERT_FIELDS),
        client.list_table_attachments("sys_certificate"),
        read_in(client, "sys_protocol_profile", "protocol", keys.protocols, PROFILE_FIELDS),
        gather_all(message_reads),
    )
    messages = {
        kind_name: (message_rows[2 * i], message_rows[2 * i + 1]) for i, (kind_name, _) in enumerate(keys.messages)
    }
    return FirstRead(keys, inventory, record, attachment, certs, attachments, profiles, messages)


async def observe(client: Instance, desired: Desired, stack: str, *, first: FirstRead | None = None) -> Live:
    """The live state for ``desired``; ``first`` is round 1 when the caller started it early (it must have
    been read for the same natural keys)."""
    by_kind: dict[str, list[DesiredResource]] = {}
    for r in desired.resources:
        by_kind.setdefault(r.kind, []).append(r)
    bindings = by_kind.get("MessageBinding", [])
    keys = NaturalKeys.of_desired(desired)
    if first is None or first.keys != keys:
        first = await read_first(client, keys, stack)
    inventory, inv_record, inv_attachment = first.inventory, first.inventory_record, first.inventory_attachment
    certs, cert_attachment_rows, profiles = first.certificates, first.certificate_attachments, first.profiles
    rest_msgs, rest_fns = first.messages.get("rest", ([], []))
    soap_msgs, soap_fns = first.messages.get("soap", ([], []))
    results = [certs, profiles, rest_msgs, rest_fns, soap_msgs, soap_fns]

    # Round 2: owned records the specs no longer name, references read nowhere else, attachments.
    desired_addresses = {r.address for r in desired.resources}
    orphan_ids: dict[str, set[str]] = {}
    for address, owned in inventory.resources.items():
        if address in desired_addresses:
            continue
        for owned_rec in owned.records:
            orphan_ids.setdefault(owned_rec.table, set()).add(owned_rec.sys_id)
    known_ids = {r.sys_id for group in results for r in group}
    cert_ids = {c.sys_id for c in certs}
    for rec in profiles:
        ks = ref_value(rec.values.get("keystore"))
        if ks and ks not in cert_ids:
            orphan_ids.setdefault("sys_certificate", set()).add(ks)
    profile_ids = {p.sys_id for p in profiles}
    for rec in [*rest_msgs, *rest_fns, *soap_msgs, *soap_fns]:
        pid = ref_value(rec.values.get("protocol_name"))
        if pid and pid not in profile_ids:
            orphan_ids.setdefault("sys_protocol_profile", set()).add(pid)
    extra_fields = {
        "sys_certificate": CERT_FIELDS,
        "sys_protocol_profile": PROFILE_FIELDS,
    }
    for tables in message_binding.TABLES.values():
        extra_fields[tables.message] = (
            "sys_id",
            "name",
            *message_binding.OWNED,
            tables.endpoint_field,
            "sys_mod_count",
        )
        extra_fields[tables.function] = (
            "sys_id", "function_name", tables.parent_field, *message_binding.OWNED, tables.endpoint_field, "sys_mod_count",
        )  # fmt: skip
    extra_tables = sorted(t for t, ids in orphan_ids.items() if ids - known_ids)
    extra_reads = [
        read_in(
            client, t, "sys_id", sorted(orphan_ids[t] - known_ids), extra_fields.get(t, ("sys_id", "sys_mod_count"))
        )
        for t in extra_tables
    ]
    extra_results = await gather_all(extra_reads)  # their attachments were listed in round 1, with all others
    attachment_rows = cert_attachment_rows
    extra: dict[str, list[LiveRecord]] = dict(zip(extra_tables, extra_results, strict=True))
    all_certs = certs + extra.get("sys_certificate", [])
    all_profiles = profiles + extra.get("sys_protocol_profile", [])
    attachments: dict[str, list[Attachment]] = {}
    for row in attachment_rows:
        att = attachment_of(row)
        attachments.setdefault(str(row.get("table_sys_id", "")), []).append(att)
    for group in attachments.values():
        group.sort(key=lambda a: a.sys_id)

    certificate_names = {c.sys_id: c.get("name") for c in all_certs}
    profile_names = {p.sys_id: p.get("protocol") for p in all_profiles}

    # Round 3: download only what the inventory cannot vouch for.
    live: dict[str, LiveResource] = {}
    opaque: dict[str, str] = {}
    certs_named: dict[str, list[LiveRecord]] = {}
    for c in certs:
        certs_named.setdefault(c.get("name"), []).append(c)
    cert_by_name: dict[str, LiveRecord] = {}
    duplicates: dict[str, str] = {}
    for r in [*by_kind.get("KeyStore", []), *by_kind.get("TrustStoreCert", [])]:
        same = certs_named.get(r.name, [])
        if len(same) == 1:
            cert_by_name[r.name] = same[0]
        elif same:
            entry = inventory.resources.get(r.address)
            owned_ids = {o.sys_id for o in entry.records} if entry else set()
            ours = [c for c in same if c.sys_id in owned_ids]
            if len(ours) == 1:
                cert_by_name[r.name] = ours[0]  # ours is unambiguous; the others are someone else's
            else:
                duplicates[r.address] = f"{len(same)} certificate records are named '{r.name}'"
    profile_by_protocol: dict[str, LiveRecord] = {}
    for p in profiles:
        profile_by_protocol.setdefault(p.get("protocol"), p)  # the first one, as the instance listed them
    downloads: list[tuple[DesiredResource, LiveRecord, Attachment]] = []
    vouched: dict[str, str] = {}
    for r in [*by_kind.get("KeyStore", []), *by_kind.get("TrustStoreCert", [])]:
        cert_rec = cert_by_name.get(r.name)
        if cert_rec is None:
            continue
        atts = attachments.get(cert_rec.sys_id, [])
        if len(atts) != 1 or r.content is None:
            continue
        entry = inventory.resources.get(r.address)
        if (
            entry is not None
            and entry.content_attachment == atts[0].sys_id
            and entry.content_size == atts[0].size
            and entry.content_digest is not None
        ):
            vouched[r.address] = entry.content_digest
        else:
            downloads.append((r, cert_rec, atts[0]))
    contents = await gather_all(client.download_attachment(a.sys_id) for _, _, a in downloads)
    for (r, _rec, _att), data in zip(downloads, contents, strict=True):
        vouched[r.address] = _digest_of(r, data)

    for r in desired.resources:
        if r.kind in CERT_KINDS:
            cert_rec = cert_by_name.get(r.name)
            if cert_rec is not None:
                live[r.address] = _certificate(r.address, r.kind, r.name, cert_rec, attachments, vouched.get(r.address))
                if cert_rec.get("key_store_password"):
                    opaque[r.address] = hashlib.sha256(cert_rec.get("key_store_password").encode()).hexdigest()
        elif r.kind == "ProtocolProfile":
            match = profile_by_protocol.get(r.name)
            if match is not None:
                live[r.address] = protocol_profile.live(r.address, r.name, match, certificate_names)
    binding_errors: dict[str, str] = {}
    # Indexed once, in the order the instance listed them: bindings look messages up by name, functions by message.
    by_name: dict[str, dict[str, list[LiveRecord]]] = {}
    by_parent: dict[str, dict[str, list[LiveRecord]]] = {}
    for kind_name, (msgs, fns) in {"rest": (rest_msgs, rest_fns), "soap": (soap_msgs, soap_fns)}.items():
        parent_field = message_binding.TABLES[kind_name].parent_field
        for m in msgs:
            by_name.setdefault(kind_name, {}).setdefault(m.get("name"), []).append(m)
        for f in fns:
            by_parent.setdefault(kind_name, {}).setdefault(ref_value(f.values.get(parent_field)), []).append(f)
    for b in bindings:
        kind_name = str(b.target["type"])
        found = by_name.get(kind_name, {}).get(b.target["message"], [])
        if not found:
            binding_errors[b.address] = (
                f"{kind_name.upper()} message '{b.target['message']}' does not exist on the instance"
            )
            continue
        if len(found) > 1:
            binding_errors[b.address] = f"{len(found)} {kind_name.upper()} messages are named '{b.target['message']}'"
            continue
        msg = found[0]
        fn_records = {f.get("function_name"): f for f in by_parent.get(kind_name, {}).get(msg.sys_id, [])}
        wanted = b.target.get("functions")
        if wanted == "all":
            names = sorted(fn_records)
        elif isinstance(wanted, list):
            names = list(wanted)
            missing = [n for n in names if n not in fn_records]
            if missing:
                binding_errors[b.address] = (
                    f"{kind_name.upper()} message '{b.target['message']}' has no function named "
                    + ", ".join(f"'{n}'" for n in missing)
                )
                continue
        else:
            names = []
        # Functions this binding took over earlier but no longer lists: seen, so that diff releases them.
        owned_entry = inventory.resources.get(b.address)
        held = (
            {r.part.removeprefix("fn:") for r in owned_entry.records if r.part.startswith("fn:")}
            if owned_entry
            else set()
        )
        names = sorted(set(names) | (held & set(fn_records)))
        live[b.address] = message_binding.live(b.address, b.name, msg, fn_records, names, profile_names)

    # Owned resources the specs no longer name (candidates for prune).
    by_id: dict[str, LiveRecord] = {r.sys_id: r for group in [*results, *extra_results] for r in group}
    for address, owned in inventory.resources.items():
        if address in desired_addresses:
            continue
        kind, _, name = address.partition("/")
        records = {o.part: by_id[o.sys_id] for o in owned.records if o.sys_id in by_id}
        if not records:
            continue
        primary = records.get("") or records.get("message")
        if primary is None:
            continue
        if kind in CERT_KINDS:
            live[address] = _certificate(address, kind, name, primary, attachments, None)
        elif kind == "ProtocolProfile":
            live[address] = protocol_profile.live(address, name, primary, certificate_names)
        else:
            fn_records = {p.removeprefix("fn:"): rec for p, rec in records.items() if p.startswith("fn:")}
            live[address] = message_binding.live(address, name, primary, fn_records, sorted(fn_records), profile_names)

    return Live(stack, inventory, inv_record, inv_attachment, live, binding_errors, opaque, duplicates)


def _certificate(
    address: str,
    kind: str,
    name: str,
    rec: LiveRecord,
    attachments: dict[str, list[Attachment]],
    digest: str | None,
) -> LiveResource:
    atts = tuple(attachments.get(rec.sys_id, []))
    if kind == "KeyStore":
        return key_store.live(address, name, rec, atts, digest)
    return trust_store_cert.live(address, name, rec, atts, digest)


def _digest_of(r: DesiredResource, data: bytes) -> str:
    """The live file's digest in the form the desired one was made (bytes, or a keystore's canonical model)."""
    if r.content is not None and r.content.canonical and r.password is not None:
        declared: Literal["jks", "pkcs12"] = "jks" if r.fields["type"] == "key_store" else "pkcs12"
        try:
            return canonical_digest(read_keystore(data, r.password, declared_format=declared))
        except MtlsConfigError:
            return "unreadable:sha256:" + hashlib.sha256(data).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()
