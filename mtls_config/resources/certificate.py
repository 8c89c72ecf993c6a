"""What the kinds kept in ``sys_certificate`` share: the columns read, the natural key (``name``, one namespace for
both kinds), duplicate names, the file attached to a record, the record type that cannot change in place, expiry,
the write-only password column, and the steps that write a certificate record (file first, then activate).

``KeyStore`` and ``TrustStoreCert`` are ``CertificateKind``s; what differs between them is in their own modules.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from mtls_config.changes import Change
from mtls_config.inventory import OwnedResource
from mtls_config.operations import Create, Delete, DeleteAttachment, Operation, Update, Upload
from mtls_config.resources.common import DesiredResource, LiveRecord, LiveResource, to_bool, to_int, wire
from mtls_config.resources.importing import ImportContext
from mtls_config.resources.kind import CompileContext, ImportRead, Kind, Phases

if TYPE_CHECKING:
    from mtls_config.dictionary import Dictionary

TABLE = "sys_certificate"
COLUMNS = (
    "sys_id", "name", "type", "format", "active", "short_description", "warn_in_days_to_expire",
    "expiration_notification", "pem_certificate", "key_store_password", "expires", "valid_from",
    "expires_in_days", "subject", "issuer", "sys_mod_count",
)  # fmt: skip
PASSWORD_COLUMN = "key_store_password"
# 'import' lists the records of every certificate kind in one query.
IMPORT_READ = ImportRead(TABLE, "typeINkey_store,pkcs12_key_store,trust_store", COLUMNS)


class CertificateKind(Kind):
    table: ClassVar[str] = TABLE
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    records_noun: ClassVar[str] = "certificate records"  # both kinds: one name namespace, one table
    stage: ClassVar[int] = 0
    stage_name: ClassVar[str] = "certificates"
    opaque_column: ClassVar[str | None] = PASSWORD_COLUMN
    attachment_table: ClassVar[str | None] = TABLE
    has_expiry: ClassVar[bool] = True
    record_types: ClassVar[tuple[str, ...]]  # the values of ``type`` its records have
    holds_key: ClassVar[bool] = False  # a keystore: kept inactive while its file and password change

    def replace_reason(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
        if _family(before.get("type")) != _family(after.get("type")):
            return f"record type {before.get('type')!r} cannot become {after.get('type')!r} in place"
        return ""

    def payload(self, d: DesiredResource, fields: Mapping[str, Any]) -> dict[str, str]:
        """Table API values for the record's plain fields (not the file, not the password)."""
        raise NotImplementedError

    def compile(
        self, change: Change, d: DesiredResource, current: LiveResource | None, owned: OwnedResource | None,
        ctx: CompileContext,
    ) -> Phases:  # fmt: skip
        return certificate_ops(change, d, current, ctx, self)

    # -- import ---------------------------------------------------------------------------------------------

    def import_reads(self, dictionary: Dictionary | None = None) -> Iterable[ImportRead]:
        return (IMPORT_READ,)

    def import_select(self, ctx: ImportContext) -> Iterable[LiveRecord]:
        return [
            c for c in ctx.listed(IMPORT_READ) if self.claims(c) and not ctx.owned(c) and ctx.matches(c.get("name"))
        ]

    def claims(self, record: LiveRecord) -> bool:
        return record.get("type") in self.record_types

    def imported_records(self, ctx: ImportContext) -> list[LiveRecord]:
        """The chosen certificate records of this kind, by name."""
        return sorted((c for c in ctx.chosen(TABLE) if self.claims(c)), key=lambda c: c.get("name"))


def canonical_record(*, active: bool, description: str, warn_days: int, notify: bool) -> dict[str, Any]:
    """The canonical fields every certificate record has, from a spec."""
    return {
        "active": active,
        "short_description": description,
        "warn_in_days_to_expire": warn_days,
        "expiration_notification": notify,
    }


def live_record_fields(record: LiveRecord) -> dict[str, Any]:
    """The canonical fields every certificate record has, from the instance."""
    return {
        "active": to_bool(record.get("active")),
        "short_description": record.get("short_description"),
        "warn_in_days_to_expire": to_int(record.get("warn_in_days_to_expire")) or 0,  # an empty integer is 0
        "expiration_notification": to_bool(record.get("expiration_notification")),
    }


def record_spec(record: LiveRecord) -> dict[str, Any]:
    """The spec fields every certificate record has, as 'import' writes them."""
    return {
        "active": to_bool(record.get("active")),
        "description": record.get("short_description"),
        "warnDays": to_int(record.get("warn_in_days_to_expire")) or 0,
        "expirationNotification": to_bool(record.get("expiration_notification")),
    }


def _family(record_type: Any) -> str:
    return "trust" if record_type == "trust_store" else "key"


def certificate_ops(
    c: Change,
    d: DesiredResource,
    current: LiveResource | None,
    ctx: CompileContext,
    kind: CertificateKind,
) -> Phases:
    """The steps of a certificate record's create, replace or update. A record with a file is created inactive,
    the file attached, then activated (with its password, for a keystore): never active without its file."""
    table = d.table
    is_key, payload, password_field = kind.holds_key, kind.payload, kind.password_field
    changed = {f.field for f in c.fields}
    content_changed = bool(changed & {kind.content_field, "attachment"})
    # A trust certificate moving between PEM text and a DER attachment moves its content too.
    content_changed = content_changed or (not is_key and "format" in changed)
    password_changed = password_field is not None and password_field in changed
    fields = dict(d.fields)

    def record_values(active: bool) -> dict[str, str]:
        base = payload(d, d.fields)
        base["active"] = wire(active)
        return base

    def finish(sys_id: str) -> Update:
        values = record_values(bool(fields["active"]))
        if is_key and d.password is not None and password_field is not None:
            values[password_field] = d.password.reveal_text()
        return Update(table, sys_id, values, input_display_value=True, what="set fields, password, activate")

    phases: list[list[Operation]] = []
    if c.action in ("create", "replace"):
        sys_id = ctx.new_ids[c.address]
        if c.action == "replace" and current is not None and current.primary is not None:
            phases.append([Delete(table, current.primary.sys_id, what="delete the record to replace")])
        needs_file = d.content is not None
        if not needs_file and not is_key:
            phases.append([Create(table, sys_id, record_values(bool(fields["active"])), what="create")])
            return phases
        phases.append([Create(table, sys_id, record_values(False), what="create inactive")])
        if d.content is not None:
            phases.append([Upload(table, sys_id, d.content.file_name, d.content.data, d.content.content_type)])
        phases.append([finish(sys_id)])
        return phases

    assert current is not None and current.primary is not None
    sys_id = current.primary.sys_id
    was_active = bool(current.fields.get("active"))
    risky = content_changed or password_changed
    if risky and was_active and is_key:
        # Never leave an active keystore whose file and password disagree: the instance walks all
        # active keystores and one broken entry can break TLS for others (KB0824494).
        phases.append([Update(table, sys_id, {"active": "false"}, what="deactivate while changing")])
    if content_changed and d.content is not None:
        old = tuple(a.sys_id for a in current.attachments)
        phases.append(
            [Upload(table, sys_id, d.content.file_name, d.content.data, d.content.content_type, replacing=old)]
        )
        phases.append([DeleteAttachment(a.sys_id) for a in current.attachments])
    elif content_changed and current.attachments and d.content is None:
        phases.append([DeleteAttachment(a.sys_id) for a in current.attachments])
    if is_key and (password_changed or risky or changed - {password_field}):
        op = finish(sys_id)
        if not password_changed:
            values = dict(op.values)
            values.pop(password_field or "", None)
            op = Update(table, sys_id, values, what="set fields")
        phases.append([op])
    elif not is_key:
        phases.append([Update(table, sys_id, record_values(bool(fields["active"])), what="set fields")])
    return phases
