"""MessageBinding: mutual auth on a record that exists already (a REST or SOAP message, an OAuth provider in the
Application Registry, an HTTP connection) and, optionally, a message's functions.

A binding owns only two columns of each record it binds, by role: the mutual-auth tick (``enabled``) and the
reference to the protocol profile (``profile``). Which columns those are is a property of the table, not of the
binding: ``BindingTarget.columns`` maps each table of a target to its own ``ColumnMap`` (REST: ``use_mutual_auth``,
``protocol_name``; SOAP: ``enable_mutual_auth``, ``protocol_profile``). The canonical fields name the roles, not the
columns, with one spelling whatever the table (``use_mutual_auth`` for the tick, ``protocol_name`` for the profile),
nested by part: ``{"message": {...}, "functions": {"<name>": {...}}}``, so plans read the same for every target and
the desired state never depends on what an instance calls its columns. Only reads, writes, restores and the
read-back speak columns. Removing a
binding restores the values found before it took ownership (kept in the inventory); it never deletes a record.

A binding target is one entry of ``TARGETS``: the message table and how its records are named, the optional
function table and its reference to the message, the endpoint column, the column map of each table, and the rules
by which its records decide whether the instance sends with mutual auth at all (``sending.SendingRules``: a MID
Server, OAuth 2.0, a method's own tick; checked by ``resources.sending``). REST and SOAP messages, OAuth providers
(``oauth_entity``: the token and revocation requests, facts-2 §4) and HTTP connections (``http_connection``, used
by Flow Designer and IntegrationHub, facts-2 §3) are its entries. The connection's columns have no confirmed names:
they are found in the instance's dictionary by their form labels, and its records are read with every column so
that the first round of reads holds them whatever they are called.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from mtls_config.changes import Change, Finding
from mtls_config.inventory import OwnedRecord, OwnedResource
from mtls_config.names import folded
from mtls_config.operations import Operation, Update
from mtls_config.resources import protocol_profile
from mtls_config.resources.common import DesiredResource, LiveRecord, LiveResource, ref_value, to_bool
from mtls_config.resources.importing import ImportContext, slug
from mtls_config.resources.kind import (
    BuildContext,
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
    one_of,
    referenced_name,
)
from mtls_config.resources.sending import Bound, Sender, SendingRules, binding_issues
from mtls_config.spec.models import MessageBinding

if TYPE_CHECKING:
    from mtls_config.dictionary import Dictionary
    from mtls_config.live import Live
    from mtls_config.spec.loader import Origin
    from mtls_config.spec.models import AnyResource

NAME = "MessageBinding"
# The canonical names of the two owned fields, whatever a table calls them.
ENABLED = "use_mutual_auth"
PROFILE = "protocol_name"
PROFILES = protocol_profile.TABLE
PRIMARY_PART = "message"  # a binding's live view: the message, and "fn:<name>" for each function


@dataclass(frozen=True)
class ColumnMap:
    """The columns of one table that a binding owns, by role, and the values that mean "not bound".

    A column no source names can be given by its form label too (``enabled_label``, ``profile_label``): the
    instance's dictionary, read each run, then says its name (``resolved``); ``enabled``/``profile`` are the
    names used when it does not."""

    enabled: str  # the mutual-auth tick (a boolean)
    profile: str  # the reference to the protocol profile
    unbound_enabled: str = "false"
    unbound_profile: str = ""
    enabled_label: str = ""
    profile_label: str = ""

    def resolved(self, table: str, dictionary: Dictionary | None) -> ColumnMap:
        """The map with each column it names by label as ``table`` on this instance calls it."""
        if dictionary is None or not (self.enabled_label or self.profile_label):
            return self
        enabled = dictionary.by_label(table, self.enabled_label) if self.enabled_label else None
        profile = dictionary.by_label(table, self.profile_label) if self.profile_label else None
        return replace(
            self,
            enabled=enabled.name if enabled is not None else self.enabled,
            profile=profile.name if profile is not None else self.profile,
        )

    @property
    def owned(self) -> tuple[str, str]:
        return (self.enabled, self.profile)

    def bound(self, profile_sys_id: str) -> dict[str, str]:
        return {self.enabled: "true", self.profile: profile_sys_id}

    def unbound(self) -> dict[str, str]:
        return {self.enabled: self.unbound_enabled, self.profile: self.unbound_profile}

    def restore(self, original: Mapping[str, str] | None) -> dict[str, str]:
        """The values to write back from what the inventory kept, in this table's columns only (a column the
        inventory names that this table does not have is never written)."""
        found = original or {}
        return {
            self.enabled: found.get(self.enabled, self.unbound_enabled),
            self.profile: found.get(self.profile, self.unbound_profile),
        }

    def role_of(self, column: str) -> str:
        """The canonical field a column holds (``ENABLED`` or ``PROFILE``), or the column itself."""
        return {self.enabled: ENABLED, self.profile: PROFILE}.get(column, column)

    @property
    def by_label(self) -> bool:
        return bool(self.enabled_label or self.profile_label)

    def missing_labels(self, table: str, dictionary: Dictionary) -> list[str]:
        """The columns named by label that ``table`` has not on this instance, each said as "the instance has no
        column" would complete it (an unread dictionary finds none)."""
        lineage = dictionary.lineage(table)
        where = table + (f" (nor on {', '.join(lineage[1:])}, which it extends)" if len(lineage) > 1 else "")
        if not dictionary.knows(table):
            where = f"{table} (the instance's data dictionary, where it is found by label, gave nothing for {table})"
        return [
            f"labelled '{label}' on {where}"
            for label in (self.enabled_label, self.profile_label)
            if label and dictionary.by_label(table, label) is None
        ]


# REST's columns (reference/servicenow-facts-2.md §2; the Application Registry's too, §4).
USE_MUTUAL_AUTH = ColumnMap("use_mutual_auth", "protocol_name")
# What ServiceNow's own SOAPMessage and SOAPMessageGenerator read on both SOAP tables (facts-2 §1): the REST names
# are not columns there, and a write of them is dropped silently.
ENABLE_MUTUAL_AUTH = ColumnMap("enable_mutual_auth", "protocol_profile")
# An HTTP connection's "Mutual authentication" and "Protocol profile" (facts-2 §3: the labels are confirmed, the
# names are not): found by label in the dictionary; the names here are only what the emulator calls them.
BY_LABEL = ColumnMap(
    "mutual_auth", "protocol_profile", enabled_label="Mutual authentication", profile_label="Protocol profile"
)
# facts-2 §2: a method's authentication_type may inherit its message's; use_mid_server is the method's reference to
# the MID Server its calls go through; a method ticked without a profile uses its message's (legacy RESTMessage).
REST_RULES = SendingRules(
    "authentication_type", mid_server="use_mid_server", basic_only=True, profile_from_parent=True,
    function_noun="HTTP method",
)  # fmt: skip
# facts-2 §1: the same columns on the SOAP tables; SOAPMessage reads the function's own fields alone.
SOAP_RULES = SendingRules("authentication_type", mid_server="use_mid_server", function_noun="SOAP function")
# An OAuth provider: its token request is not a REST call; nothing here decides against it (facts-2 §4).
NO_RULES = SendingRules()
# facts-2 §3: a connection's "Use MID server" (use_mid, likely); the platform's rule for MID Servers holds for it too.
CONNECTION_RULES = SendingRules(mid_flag="use_mid")


@dataclass(frozen=True)
class BindingTarget:
    """A table of records a binding can bind (``message.type`` in a spec), and how its records are found."""

    type: str
    message: str  # the table of the records bound by name
    columns: Mapping[str, ColumnMap]  # per table (the message table and the function table)
    function: str | None = None  # the table of their functions, if they have any
    parent_field: str | None = None  # the function's reference to its message
    endpoint_field: str | None = None  # the column holding the URL the record calls (read on both tables)
    message_endpoint: bool = True  # False: the message has no endpoint column of its own, only its functions
    noun: str = "message"  # what a record of ``message`` is called in messages
    roles: tuple[str, ...] = ("web_service_admin", "admin")  # any one of them reads and binds its records
    rules: SendingRules = NO_RULES  # how its records decide whether the instance sends with mutual auth
    host_field: str | None = None  # the host the record calls, when its endpoint column is empty
    title: str = ""  # what a record of ``message`` is called, when not "<TYPE> <noun>"

    @property
    def label(self) -> str:
        return self.title or f"{self.type.upper()} {self.noun}"

    def column_map(self, table: str) -> ColumnMap:
        return self.columns[table]

    def message_columns(self, *, endpoint: bool = True, dictionary: Dictionary | None = None) -> tuple[str, ...]:
        end = tuple(f for f in (self.endpoint_field, self.host_field) if f) if endpoint else ()
        owned = self.columns[self.message].resolved(self.message, dictionary).owned
        return ("sys_id", "name", *owned, *end, *self.rules.message_columns, "sys_mod_count")

    def function_columns(self, *, endpoint: bool = True, dictionary: Dictionary | None = None) -> tuple[str, ...]:
        assert self.function is not None and self.parent_field is not None
        end = (self.endpoint_field,) if endpoint and self.endpoint_field else ()
        owned = self.columns[self.function].resolved(self.function, dictionary).owned
        return (
            "sys_id",
            "function_name",
            self.parent_field,
            *owned,
            *end,
            *self.rules.function_columns,
            "sys_mod_count",
        )

    @property
    def by_label(self) -> bool:
        """Whether some of its columns are known only by label until the dictionary names them."""
        return any(columns.by_label for columns in self.columns.values())

    def tables(self) -> tuple[str, ...]:
        return (self.message,) if self.function is None else (self.message, self.function)


TARGETS: dict[str, BindingTarget] = {
    "rest": BindingTarget(
        "rest",
        "sys_rest_message",
        {"sys_rest_message": USE_MUTUAL_AUTH, "sys_rest_message_fn": USE_MUTUAL_AUTH},
        "sys_rest_message_fn",
        "rest_message",
        "rest_endpoint",
        rules=REST_RULES,
    ),
    "soap": BindingTarget(
        "soap",
        "sys_soap_message",
        {"sys_soap_message": ENABLE_MUTUAL_AUTH, "sys_soap_message_function": ENABLE_MUTUAL_AUTH},
        "sys_soap_message_function",
        "soap_message",
        "soap_endpoint",
        message_endpoint=False,
        rules=SOAP_RULES,
    ),
    # The Application Registry's OAuth provider: mutual auth "for token request and revocation" (facts-2 §4).
    "oauth": BindingTarget(
        "oauth",
        "oauth_entity",
        {"oauth_entity": USE_MUTUAL_AUTH},
        endpoint_field="token_url",
        noun="OAuth provider",
        roles=("oauth_admin", "admin"),
        title="OAuth provider",
    ),
    # An HTTP connection of a Connection & Credential alias (facts-2 §3).
    "connection": BindingTarget(
        "connection",
        "http_connection",
        {"http_connection": BY_LABEL},
        endpoint_field="connection_url",
        noun="HTTP connection",
        roles=("connection_admin", "admin"),
        rules=CONNECTION_RULES,
        host_field="host",
        title="HTTP connection",
    ),
}
# Which target each table belongs to (a record's own table says which columns it has).
TARGET_OF_TABLE = {table: target for target in TARGETS.values() for table in target.tables()}


def columns_of(table: str, dictionary: Dictionary | None = None) -> ColumnMap:
    """The binding columns of ``table``: the one lookup of them, given the run's dictionary when it was read (a
    column named by label is found there)."""
    return TARGET_OF_TABLE[table].column_map(table).resolved(table, dictionary)


def part_fields(protocol: str) -> dict[str, Any]:
    return {ENABLED: True, PROFILE: protocol}


def canonical_fields(protocol: str, function_names: list[str]) -> dict[str, Any]:
    return {
        "message": part_fields(protocol),
        "functions": {fn: part_fields(protocol) for fn in sorted(function_names)},
    }


def record_fields(
    record: LiveRecord, profile_names: Mapping[str, str], dictionary: Dictionary | None = None
) -> dict[str, Any]:
    columns = columns_of(record.table, dictionary)
    return {
        ENABLED: to_bool(record.get(columns.enabled)),
        PROFILE: referenced_name(record, columns.profile, profile_names),
    }


def sender(
    part: str, record: LiveRecord, profile_names: Mapping[str, str], dictionary: Dictionary | None = None
) -> Sender:
    """A record as the checks of ``resources.sending`` see it: its tick and profile, how it authenticates, and the
    MID Server its calls go through, by its table's columns."""
    target = TARGET_OF_TABLE[record.table]
    rules = target.rules
    fields = record_fields(record, profile_names, dictionary)
    is_message = record.table == target.message
    mid = ""
    if is_message and rules.mid_flag:
        mid = "a MID Server" if to_bool(record.get(rules.mid_flag)) else ""
    elif not is_message and rules.mid_server:
        sys_id = ref_value(record.values.get(rules.mid_server))
        named = record.get(f"{rules.mid_server}.name")
        mid = f"MID Server '{named}'" if sys_id and named else (f"MID Server (sys_id {sys_id})" if sys_id else "")
    return Sender(
        part,
        record.table,
        record.get("name") if is_message else part.removeprefix("fn:"),
        bool(fields[ENABLED]),
        str(fields[PROFILE]),
        record.get(rules.authentication) if rules.authentication else "",
        mid,
    )


def live(
    address: str,
    name: str,
    message: LiveRecord,
    functions: Mapping[str, LiveRecord],
    wanted_functions: Sequence[str],
    profile_names: Mapping[str, str],
    dictionary: Dictionary | None = None,
) -> LiveResource:
    """The view of a binding: the message and the ``wanted_functions`` it owns (of ``functions``, all the message's
    by name), and every one of them as a ``Sender``."""
    records: dict[str, LiveRecord] = {"message": message}
    fn_fields: dict[str, Any] = {}
    for fn in wanted_functions:
        rec = functions.get(fn)
        if rec is not None:
            records[f"fn:{fn}"] = rec
            fn_fields[fn] = record_fields(rec, profile_names, dictionary)
    fields = {"message": record_fields(message, profile_names, dictionary), "functions": fn_fields}
    senders = (
        sender("message", message, profile_names, dictionary),
        *(sender(f"fn:{fn}", rec, profile_names, dictionary) for fn, rec in sorted(functions.items())),
    )
    return LiveResource(address, NAME, name, message.table, records, fields, primary_part=PRIMARY_PART, senders=senders)


def bound(d: DesiredResource) -> Bound:
    """A desired binding as the checks of ``resources.sending`` need it."""
    target = TARGETS[str(d.target["type"])]
    return Bound(target.label, target.rules, d.target.get("functions"), str(d.fields["message"][PROFILE]))


def originals(record: LiveRecord, dictionary: Dictionary | None = None) -> dict[str, str]:
    """The owned fields' raw values before a binding takes them over (restored on removal)."""
    columns = columns_of(record.table, dictionary)
    return {
        columns.enabled: record.get(columns.enabled) or columns.unbound_enabled,
        columns.profile: ref_value(record.values.get(columns.profile)),
    }


def _wanted_parts(d: DesiredResource, current: LiveResource) -> set[str]:
    parts = {"message"}
    fns = d.target.get("functions")
    if fns == "all":
        parts |= {p for p in current.records if p.startswith("fn:")}
    elif isinstance(fns, list):
        parts |= {f"fn:{n}" for n in fns}
    return parts


def _originals_of(owned: OwnedResource | None) -> dict[str, dict[str, str]]:
    return {r.part: r.original for r in owned.records if r.original is not None} if owned else {}


class MessageBindingKind(Kind):
    name = NAME
    model = MessageBinding
    intro = "Mutual authentication on an existing REST or SOAP message and its functions (step F)."
    table = "sys_rest_message"
    primary_part = PRIMARY_PART
    stage = 2
    stage_name = "message bindings"
    references = tuple(
        Reference(table, columns.profile, PROFILES, "protocol")
        for target in TARGETS.values()
        for table, columns in target.columns.items()
    )
    takes_over = True
    roles = ("web_service_admin", "admin")  # per target: BindingTarget.roles
    unresolved_hint = (
        "a MessageBinding binds an existing record (a message, an OAuth provider, a connection); create it (or fix "
        "its name) first"
    )
    import_group = "message-bindings"

    def table_roles(self) -> Mapping[str, tuple[str, ...]]:
        return {table: target.roles for target in TARGETS.values() for table in target.tables()}

    def every_column(self) -> tuple[str, ...]:
        return tuple(t for target in TARGETS.values() if target.by_label for t in target.tables())

    def references_of(self, dictionary: Dictionary | None) -> tuple[Reference, ...]:
        return tuple(
            Reference(table, columns_of(table, dictionary).profile, PROFILES, "protocol")
            for target in TARGETS.values()
            for table in target.tables()
        )

    def reads(self) -> Mapping[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for target in TARGETS.values():
            out[target.message] = target.message_columns()
            if target.function is not None:
                out[target.function] = target.function_columns()
        return out

    def lookups(self, resource: AnyResource) -> tuple[Lookup, ...]:
        assert isinstance(resource, MessageBinding)
        return _lookups(TARGETS[resource.spec.message.type], resource.spec.message.name)

    def desired_lookups(self, d: DesiredResource) -> tuple[Lookup, ...]:
        return _lookups(TARGETS[str(d.target["type"])], str(d.target["message"]))

    def desired(self, resource: AnyResource, origin: Origin, ctx: BuildContext) -> DesiredResource:
        assert isinstance(resource, MessageBinding)
        spec = resource.spec
        target = TARGETS[spec.message.type]
        functions = spec.functions if isinstance(spec.functions, list) else []
        fields = canonical_fields(spec.protocol_profile, functions)
        found = {"type": spec.message.type, "message": spec.message.name, "functions": spec.functions}
        return DesiredResource(
            resource.address, NAME, resource.name, target.message, fields, resource.metadata.adopt,
            depends_on=self.depends_on(resource), target=found,
        )  # fmt: skip

    # -- the live view --------------------------------------------------------------------------------------

    def match(self, d: DesiredResource, index: Index, owned: OwnedResource | None) -> Match:
        target = TARGETS[str(d.target["type"])]
        message_name = str(d.target["message"])
        label = target.label
        # Names as the instance compares them, ignoring case: 'acme api' is the message 'Acme API' names.
        found = index.named(target.message, "name", message_name)
        if not found:
            return Unresolved(f"{label} '{message_name}' does not exist on the instance")
        msg = one_of(found, owned)
        if msg is None:
            return ambiguous(f"{label}s", message_name, found, "name")
        # The message's functions by their own spelling; those the spec lists are found ignoring case and go by
        # the spec's spelling (the part a spec names is the part the inventory and the plan know).
        fn_records: dict[str, LiveRecord] = {}
        if target.function is not None and target.parent_field is not None:
            by_parent = index.group(target.function, target.parent_field)
            fn_records = {f.get("function_name"): f for f in by_parent.get(msg.sys_id, [])}
        wanted = d.target.get("functions")
        if wanted == "all":
            names = sorted(fn_records)
        elif isinstance(wanted, list):
            names = list(wanted)
            by_folded: dict[str, list[LiveRecord]] = {}
            for rec in fn_records.values():
                by_folded.setdefault(folded(rec.get("function_name")), []).append(rec)
            missing = [n for n in names if not by_folded.get(folded(n))]
            if missing:
                return Unresolved(
                    f"{label} '{message_name}' has no function named " + ", ".join(f"'{n}'" for n in missing)
                )
            for n in names:
                twins = by_folded[folded(n)]
                if len(twins) > 1:
                    return ambiguous(f"functions of {label} '{message_name}'", n, twins, "function_name")
            listed = {n: by_folded[folded(n)][0] for n in names}
            taken = {rec.sys_id for rec in listed.values()}
            fn_records = {**{k: r for k, r in fn_records.items() if r.sys_id not in taken}, **listed}
        else:
            names = []
        # Functions this binding took over earlier but no longer lists: seen, so that diff releases them.
        held = {r.part.removeprefix("fn:") for r in owned.records if r.part.startswith("fn:")} if owned else set()
        names = sorted(set(names) | (held & set(fn_records)))
        return live(d.address, d.name, msg, fn_records, names, index.names_of(PROFILES), index.dictionary)

    def live(self, address: str, name: str, records: Mapping[str, LiveRecord], index: Index) -> LiveResource:
        fn_records = {p.removeprefix("fn:"): rec for p, rec in records.items() if p.startswith("fn:")}
        return live(
            address, name, records["message"], fn_records, sorted(fn_records), index.names_of(PROFILES),
            index.dictionary,
        )  # fmt: skip

    # -- comparing ------------------------------------------------------------------------------------------

    def desired_fields(self, d: DesiredResource, current: LiveResource | None) -> Mapping[str, Any]:
        fields = dict(d.fields)
        if d.target.get("functions") == "all" and current is not None:
            protocol = fields["message"][PROFILE]
            fields["functions"] = {fn: part_fields(protocol) for fn in sorted(current.fields["functions"])}
        return fields

    def conflict(self, d: DesiredResource, current: LiveResource) -> tuple[str, str]:
        """The message already uses mutual auth with another profile (someone else's set-up)."""
        ours = d.fields["message"][PROFILE]
        parts = {"message": current.fields["message"], **current.fields["functions"]}
        for part, values in sorted(parts.items()):
            if values.get(ENABLED) and values.get(PROFILE) not in ("", ours):
                where = "the message" if part == "message" else f"function '{part}'"
                message = f"{where} already uses mutual authentication with profile '{values.get(PROFILE)}'"
                return message, "set 'metadata.adopt: true' to take the message over"
        return "", ""

    def findings(self, d: DesiredResource, current: LiveResource | None, live: Live) -> list[Finding]:
        """Why the instance would not use the binding's mutual auth for its calls (``resources.sending``)."""
        if current is None or not current.senders:
            return []
        return [
            Finding(d.address, i.severity, f"{i.record}: {i.message}", i.fix, "mutual-auth")
            for i in binding_issues(bound(d), current.senders)
        ]

    def take_over_reason(self, d: DesiredResource) -> str:
        return f"enable mutual authentication on the existing {TARGETS[str(d.target['type'])].noun}"

    def removal(self, current: LiveResource, owned: Sequence[OwnedRecord]) -> tuple[str, dict[str, Any] | None]:
        originals = {r.part: r.original for r in owned if r.original is not None}
        return "removed from the specs: restore the message's original mutual-auth fields", {"restore": originals}

    # -- applying -------------------------------------------------------------------------------------------

    def compile(
        self, change: Change, d: DesiredResource, current: LiveResource | None, owned: OwnedResource | None,
        ctx: CompileContext,
    ) -> Phases:  # fmt: skip
        assert current is not None
        profile_id = ctx.sys_id(protocol_profile.KIND.address(d.fields["message"][PROFILE]))
        ops: list[Operation] = []
        wanted = _wanted_parts(d, current)
        originals = _originals_of(owned)
        for part, rec in sorted(current.records.items()):
            columns = columns_of(rec.table, ctx.dictionary)
            if part not in wanted:
                # taken over earlier, no longer listed: give the fields back as they were found
                ops.append(Update(rec.table, rec.sys_id, columns.restore(originals.get(part)), what=f"release {part}"))
                continue
            have = current.fields["message"] if part == "message" else current.fields["functions"].get(part[3:], {})
            want = d.fields["message"] if part == "message" else part_fields(d.fields["message"][PROFILE])
            if have != want or rec.get(columns.profile) != profile_id:
                ops.append(
                    Update(rec.table, rec.sys_id, columns.bound(profile_id), what=f"enable mutual auth on {part}")
                )
        return [ops] if ops else []

    def compile_delete(
        self, change: Change, current: LiveResource, owned: OwnedResource | None, ctx: CompileContext
    ) -> Phases:
        originals = _originals_of(owned)
        ops: list[Operation] = []
        for part, rec in sorted(current.records.items()):
            values = columns_of(rec.table, ctx.dictionary).restore(originals.get(part))
            ops.append(Update(rec.table, rec.sys_id, values, what=f"restore {part}"))
        return [ops]

    def originals(self, record: LiveRecord, dictionary: Dictionary | None = None) -> dict[str, str] | None:
        return originals(record, dictionary)

    def all_written_columns(self, dictionary: Dictionary | None) -> Mapping[str, tuple[str, ...]]:
        return {t: columns_of(t, dictionary).owned for target in TARGETS.values() for t in target.tables()}

    def lacking_columns(self, dictionary: Dictionary, d: DesiredResource | None = None) -> list[tuple[str, str]]:
        """A column named by label is lacking when the dictionary shows no column with that label (or could not be
        read): its stand-in name is never written."""
        written = self.written_columns(d, dictionary) if d is not None else self.all_written_columns(dictionary)
        out: list[tuple[str, str]] = []
        for table in sorted(written):
            declared = TARGET_OF_TABLE[table].column_map(table)
            if declared.by_label:
                out += [(table, what) for what in declared.missing_labels(table, dictionary)]
            else:
                out += [(table, f"{table}.{c}") for c in written[table] if dictionary.lacks(table, c)]
        return out

    def written_columns(self, d: DesiredResource, dictionary: Dictionary | None) -> Mapping[str, tuple[str, ...]]:
        target = TARGETS[str(d.target["type"])]
        out = {target.message: columns_of(target.message, dictionary).owned}
        if target.function is not None:  # bound, or released when a function is no longer listed
            out[target.function] = columns_of(target.function, dictionary).owned
        return out

    def kept_parts(self, d: DesiredResource, current: LiveResource) -> Collection[str] | None:
        return _wanted_parts(d, current)

    # -- import ---------------------------------------------------------------------------------------------

    def import_reads(self, dictionary: Dictionary | None = None) -> Iterable[ImportRead]:
        for target in TARGETS.values():
            for table in target.tables():
                read = _bound_read(target, table, dictionary)
                if read is not None:
                    yield read

    def import_records(self, ctx: ImportContext) -> None:
        profiles = ctx.by_id(PROFILES)
        for position, target in enumerate(TARGETS.values()):
            read = _bound_read(target, target.message, ctx.dictionary)
            messages = ctx.listed(read) if read is not None else []
            fn_read = _bound_read(target, target.function, ctx.dictionary) if target.function is not None else None
            functions = ctx.listed(fn_read) if fn_read is not None else []
            message_columns = columns_of(target.message, ctx.dictionary)
            for msg in sorted(messages, key=lambda r: r.get("name")):
                if ctx.owned(msg) or not ctx.matches(msg.get("name")):
                    continue
                profile = profiles.get(ref_value(msg.values.get(message_columns.profile)))
                if profile is None or not ctx.imported(protocol_profile.KIND.address(profile.get("protocol"))):
                    ctx.skip(
                        self,
                        (f"{position:04d}", msg.get("name")),
                        f"{target.label} '{msg.get('name')}': its protocol profile is not imported",
                    )
                    continue
                fns = sorted(
                    (
                        f for f in functions
                        if target.parent_field is not None
                        and ref_value(f.values.get(target.parent_field)) == msg.sys_id
                        and ref_value(f.values.get(columns_of(f.table, ctx.dictionary).profile)) == profile.sys_id
                    ),
                    key=lambda f: f.get("function_name"),
                )  # fmt: skip
                spec: dict[str, Any] = {
                    "message": {"type": target.type, "name": msg.get("name")},
                    "protocolProfile": profile.get("protocol"),
                }
                if fns:
                    spec["functions"] = [f.get("function_name") for f in fns]
                records = [
                    OwnedRecord(
                        table=msg.table, sys_id=msg.sys_id, part="message", mod_count=msg.mod_count,
                        original=message_columns.unbound(),
                    ),
                    *(
                        OwnedRecord(
                            table=f.table, sys_id=f.sys_id, part=f"fn:{f.get('function_name')}",
                            mod_count=f.mod_count, original=columns_of(f.table, ctx.dictionary).unbound(),
                        )
                        for f in fns
                    ),
                ]  # fmt: skip
                name = ctx.free_name(self, slug(f"{target.type}-{msg.get('name')}"))
                ctx.add(self, name, spec, OwnedResource(address="", records=records))


def _lookups(target: BindingTarget, message: str) -> tuple[Lookup, ...]:
    out = [Lookup(target.message, "name", message)]
    if target.function is not None and target.parent_field is not None:
        out.append(Lookup(target.function, f"{target.parent_field}.name", message))
    return tuple(out)


def _bound_read(target: BindingTarget, table: str, dictionary: Dictionary | None) -> ImportRead | None:
    """The records of a target's table with mutual auth ticked; None when the instance lacks the tick's column (a
    query term on a column it lacks is dropped, and the query would return every record, facts-2 §1), or when the
    dictionary does not name a column known only by its label."""
    columns = columns_of(table, dictionary)
    if dictionary is not None and dictionary.lacks(table, columns.enabled):
        return None
    declared = TARGET_OF_TABLE[table].column_map(table)
    if declared.by_label and (dictionary is None or declared.missing_labels(table, dictionary)):
        return None  # its columns cannot be told apart: import leaves its records alone
    wanted = (
        target.message_columns(endpoint=False, dictionary=dictionary)
        if table == target.message
        else target.function_columns(endpoint=False, dictionary=dictionary)
    )
    return ImportRead(table, f"{columns.enabled}=true", wanted)


KIND = MessageBindingKind()
