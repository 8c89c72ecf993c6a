"""What the kinds kept in ``sys_certificate`` share: the columns read, the natural key (``name``, one namespace for
both kinds), duplicate names, the file attached to a record, the record type that cannot change in place, expiry,
the write-only password column, and the steps that write a certificate record (file first, then activate).

Expiry notices (facts-2 §6): ``expiration_notification`` (the tick), ``notify_on_expiration`` (a glide_list of
users), ``notify_groups`` (a glide_list of groups; newer releases) and ``frequency``. A spec that names users or groups
owns the list it names: the names are looked up in the first round (``sys_user`` by ``user_name``, ``sys_user_group``
by ``name``, ignoring case as the instance does), an unknown one is a plan error, the lists are compared as sets of
names and written as comma-separated sys_ids. A list the spec leaves out is the instance's.

``KeyStore`` and ``TrustStoreCert`` are ``CertificateKind``s; what differs between them is in their own modules.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mtls_config.changes import Change, Finding
from mtls_config.inventory import OwnedResource
from mtls_config.names import folded
from mtls_config.operations import Create, Delete, DeleteAttachment, Operation, Update, Upload
from mtls_config.resources.common import DesiredResource, LiveRecord, LiveResource, to_bool, to_int, wire
from mtls_config.resources.importing import ImportContext
from mtls_config.resources.kind import (
    CompileContext,
    ImportRead,
    Index,
    Kind,
    Lookup,
    Match,
    Phases,
    Reference,
    Unresolved,
    ambiguous,
)
from mtls_config.spec.models import ExpirationNotification, KeyStore, KeyStoreSpec, TrustStoreCert, TrustStoreCertSpec

if TYPE_CHECKING:
    from mtls_config.dictionary import Dictionary
    from mtls_config.live import Live
    from mtls_config.spec.models import AnyResource

TABLE = "sys_certificate"
COLUMNS = (
    "sys_id", "name", "type", "format", "active", "short_description", "warn_in_days_to_expire",
    "expiration_notification", "pem_certificate", "key_store_password", "expires", "valid_from",
    "expires_in_days", "subject", "issuer", "notify_on_expiration", "notify_groups", "frequency", "sys_mod_count",
)  # fmt: skip
PASSWORD_COLUMN = "key_store_password"
NOTIFY = "expiration_notification"
NOTIFY_USERS = "notify_on_expiration"  # a glide_list of sys_user
NOTIFY_GROUPS = "notify_groups"  # a glide_list of sys_user_group
FREQUENCY = "frequency"
USERS = "sys_user"
GROUPS = "sys_user_group"
# The lists a spec may name, by canonical field: (the table of their records, the column their names are in).
NAMED_LISTS = {NOTIFY_USERS: (USERS, "user_name"), NOTIFY_GROUPS: (GROUPS, "name")}
NOUNS = {NOTIFY_USERS: "user", NOTIFY_GROUPS: "group"}
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
    references: ClassVar[tuple[Reference, ...]] = tuple(
        Reference(TABLE, column, table, key, many=True, on_demand=True) for column, (table, key) in NAMED_LISTS.items()
    )
    unresolved_hint: ClassVar[str] = (
        "expirationNotification names users by their User ID (sys_user.user_name) and groups by their name "
        "(sys_user_group.name): fix the name, or create the user or group on the instance first"
    )

    def reads(self) -> Mapping[str, tuple[str, ...]]:
        return {TABLE: COLUMNS, USERS: ("sys_id", "user_name"), GROUPS: ("sys_id", "name")}

    def table_roles(self) -> Mapping[str, tuple[str, ...]]:
        # any user reads users and groups (servicenow-api.md §6): no role is needed for them
        return {TABLE: self.roles, USERS: (), GROUPS: ()}

    def lookups(self, resource: AnyResource) -> tuple[Lookup, ...]:
        assert isinstance(resource, (KeyStore, TrustStoreCert))  # a tuple: checked faster than a union
        notification = resource.spec.expiration_notification
        if notification.users is None and notification.groups is None:
            # most specs name nobody: the record alone to look up (the base's, without super(): 20000 a plan)
            return Kind.lookups(self, resource)
        named = {NOTIFY_USERS: notification.users, NOTIFY_GROUPS: notification.groups}
        return (*Kind.lookups(self, resource), *_name_lookups(named))

    def desired_lookups(self, d: DesiredResource) -> tuple[Lookup, ...]:
        fields = d.fields
        if NOTIFY_USERS not in fields and NOTIFY_GROUPS not in fields:
            return Kind.desired_lookups(self, d)
        return (*Kind.desired_lookups(self, d), *_name_lookups(fields))

    def match(self, d: DesiredResource, index: Index, owned: OwnedResource | None) -> Match:
        """As any kind's, after the users and groups the spec names are each found once; the lists it owns are
        then part of the live view, by name. A spec that manages none of the notice's lists or frequency (most) is
        matched as any kind's: nothing to look up, nothing to add (15 000 resources a plan at N = 20000)."""
        fields = d.fields
        if NOTIFY_USERS not in fields and NOTIFY_GROUPS not in fields and FREQUENCY not in fields:
            return Kind.match(self, d, index, owned)
        for field_name, (table, column) in NAMED_LISTS.items():
            for name in fields.get(field_name) or ():
                found = index.named(table, column, name)
                if not found:
                    return Unresolved(
                        f"expirationNotification names {NOUNS[field_name]} '{name}', which does not exist on the "
                        f"instance ({table}.{column}, compared ignoring case)"
                    )
                if len(found) > 1:
                    return ambiguous(f"{NOUNS[field_name]}s ({table})", name, found, column)
        found_match = super().match(d, index, owned)
        if not isinstance(found_match, LiveResource):
            return found_match
        return with_notification(found_match, d, index.names)

    def findings(self, d: DesiredResource, current: LiveResource | None, live: Live) -> list[Finding]:
        """Expiry notices that are on but go to no one: the tick alone notifies nobody."""
        if not d.fields.get(NOTIFY):
            return []
        record = current.records.get("") if current is not None else None
        for field_name in (NOTIFY_USERS, NOTIFY_GROUPS):
            names = d.fields.get(field_name)
            if names or (names is None and record is not None and record.get(field_name).strip()):
                return []
        return [
            Finding(
                d.address,
                "warning",
                "expiration notification is on but names no one: notify_on_expiration and notify_groups are empty, "
                "so the instance sends the notice to nobody",
                "name who is notified: expirationNotification: {users: [user IDs], groups: [group names]}",
            )
        ]

    def written_columns(self, d: DesiredResource, dictionary: Dictionary | None) -> Mapping[str, tuple[str, ...]]:
        return {TABLE: (*self.writes, *_managed(d.fields))}

    def may_lack(self, dictionary: Dictionary) -> bool:
        return bool(dictionary.lacking({TABLE: (*self.writes, *_MANAGED)}))  # the columns only some specs write too

    def stored_form(self, column: str, value: str) -> str:
        if column in NAMED_LISTS:  # a glide_list: the same sys_ids in any order
            return ",".join(sorted(part.strip() for part in value.split(",") if part.strip()))
        return value

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


def canonical_record(
    *, active: bool, description: str, warn_days: int, notify: bool, notification: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The canonical fields every certificate record has, from a spec; ``notification``: the expiry notice's fields
    the spec manages (``notification_fields``)."""
    return _record(active, description, warn_days, notify, notification)


def spec_record(spec: KeyStoreSpec | TrustStoreCertSpec) -> dict[str, Any]:
    """``canonical_record`` of a keystore's or trust certificate's spec, made from it without the keyword calls and
    without the notification's fields when it names none (about 0.4 us of each resource's desired state)."""
    notification = spec.expiration_notification
    named = notification.users is not None or notification.groups is not None or notification.frequency is not None
    return _record(
        spec.active,
        spec.description,
        spec.warn_days,
        notification.enabled,
        notification_fields(notification) if named else None,
    )


def _record(
    active: bool, description: str, warn_days: int, notify: bool, notification: Mapping[str, Any] | None
) -> dict[str, Any]:
    out = {"active": active, "short_description": description, "warn_in_days_to_expire": warn_days, NOTIFY: notify}
    if notification:
        out.update(notification)
    return out


def notification_fields(notification: ExpirationNotification) -> dict[str, Any]:
    """The canonical fields of the lists and frequency a spec names (those it leaves out are not managed): the
    names sorted as the instance compares them, so that a list compares as a set."""
    out: dict[str, Any] = {}
    if notification.users is not None:
        out[NOTIFY_USERS] = _sorted_names(notification.users)
    if notification.groups is not None:
        out[NOTIFY_GROUPS] = _sorted_names(notification.groups)
    if notification.frequency is not None:
        out[FREQUENCY] = notification.frequency
    return out


def with_notification(
    current: LiveResource, d: DesiredResource, names: Mapping[str, Mapping[str, str]]
) -> LiveResource:
    """The live view with the notification fields ``d`` manages, as the record holds them: a glide_list as the
    names of its records (``names``: table -> sys_id -> name, as read)."""
    managed = _managed(d.fields)
    if not managed:
        return current
    record = current.records[""]
    fields = dict(current.fields)
    for field_name in managed:
        if field_name == FREQUENCY:
            fields[FREQUENCY] = record.get(FREQUENCY)
        else:
            table = NAMED_LISTS[field_name][0]
            fields[field_name] = _listed_names(record.get(field_name), names.get(table, {}), d.fields[field_name])
    return current.with_fields(fields)


def notification_values(d: DesiredResource, ctx: CompileContext) -> dict[str, str]:
    """The Table API values of the notification fields ``d`` manages: a glide_list as its records' sys_ids,
    separated by commas."""
    out: dict[str, str] = {}
    for field_name in _managed(d.fields):
        if field_name == FREQUENCY:
            out[FREQUENCY] = str(d.fields[FREQUENCY])
        else:
            out[field_name] = ",".join(ctx.sys_ids_named(NAMED_LISTS[field_name][0], d.fields[field_name]))
    return out


_MANAGED = (NOTIFY_USERS, NOTIFY_GROUPS, FREQUENCY)


def _managed(fields: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple([f for f in _MANAGED if f in fields])


def _sorted_names(names: Sequence[str]) -> list[str]:
    return sorted(names, key=lambda n: (folded(n), n))


def _name_lookups(named: Mapping[str, Any]) -> tuple[Lookup, ...]:
    return tuple(
        Lookup(table, column, name)
        for field_name, (table, column) in NAMED_LISTS.items()
        for name in named.get(field_name) or ()
    )


def _listed_names(value: str, names: Mapping[str, str], wanted: Sequence[str]) -> list[str]:
    """A glide_list's sys_ids as the names of their records, each spelt as the spec spells it when it names it
    (names compare ignoring case), "(sys_id X)" for one that was not found; sorted as the spec's are."""
    spelling = {folded(n): n for n in wanted}
    out = []
    for sys_id in (part.strip() for part in value.split(",")):
        if not sys_id:
            continue
        name = names.get(sys_id)
        out.append(spelling.get(folded(name), name) if name is not None else f"(sys_id {sys_id})")
    return _sorted_names(out)


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
        base.update(notification_values(d, ctx))
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
