"""What a resource kind is: the contract every kind module fills, and the values the engine's stages hand it.

A kind owns everything that is particular to it: its spec model, its natural key, the tables and columns it
reads, how a live record becomes its canonical view, its dependencies, which fields are sensitive, how a
change becomes operations on the instance, what the inventory keeps about it, and how an existing record is
imported. The stages (``desired``, ``observe``, ``contents``, ``diff``, ``plan``, ``compile``, ``apply``,
``importer``) hold none of that: they iterate ``mtls_config.resources.registry`` and ask each kind.

The defaults here describe the common case, a kind with one record per resource in one table that the stack
creates and deletes (``ProtocolProfile`` is little more than them). A kind that owns fields of records it did
not make (``MessageBinding``) says so with ``takes_over`` and overrides what differs.

Never imports the client, the emulator, the CLI or an engine stage.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from mtls_config.changes import Change, Finding
from mtls_config.errors import MtlsConfigError, UnreadableFile
from mtls_config.inventory import OwnedRecord, OwnedResource
from mtls_config.names import folded
from mtls_config.operations import Delete, Operation
from mtls_config.resources.common import Attachment, DesiredResource, LiveRecord, LiveResource, ref_value
from mtls_config.secrets import SecretRef, SecretValue
from mtls_config.spec.inputs import RunInputs

if TYPE_CHECKING:
    from mtls_config.dictionary import Dictionary
    from mtls_config.live import Live
    from mtls_config.resources.importing import ImportContext
    from mtls_config.spec.loader import Origin
    from mtls_config.spec.models import AnyResource


# ``Lookup(table, column, value)`` from a tuple of the three, without the NamedTuple's Python-level ``__new__``:
# one a resource, twice a plan
_new_tuple = tuple.__new__


class Lookup(NamedTuple):
    """One natural key to look a record up by: ``table`` rows whose ``column`` is ``value`` (a tuple: a plan sorts
    thousands of them)."""

    table: str
    column: str
    value: str


@dataclass(frozen=True)
class Reference:
    """A reference column of ``table`` naming a record of ``target``, known by that record's ``target_key``.

    ``many``: a glide_list, the sys_ids of several records separated by commas. ``on_demand``: the records it names
    are read (when the first round did not) only if the specs look records of ``target`` up themselves: a stack
    whose specs name no users does not read the users its certificates notify."""

    table: str
    column: str
    target: str
    target_key: str
    many: bool = False
    on_demand: bool = False

    def sys_ids(self, record: LiveRecord) -> list[str]:
        """The sys_ids ``record`` names in this column."""
        value = ref_value(record.values.get(self.column))
        if not self.many:
            return [value] if value else []
        return [part.strip() for part in value.split(",") if part.strip()]


@dataclass(frozen=True)
class Unresolved:
    """The records a resource names are not on the instance as named (a binding's message is missing)."""

    message: str


@dataclass(frozen=True)
class Ambiguous:
    """Several records answer to a resource's natural key and none of them is clearly the stack's."""

    message: str


Match = LiveResource | Unresolved | Ambiguous | None


# -- building the desired state --------------------------------------------------------------------------


class FieldError(Exception):
    """A problem with one field of a spec, raised while building its desired state (reported with file:line)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def file_stem(name: str) -> str:
    """A file name stem for a resource's file (the attachment's name on the instance)."""
    return _NOT_IN_STEM.sub("-", name.lower()).strip("-") or "keystore"


_NOT_IN_STEM = re.compile(r"[^a-z0-9]+")


@dataclass
class BuildContext:
    """What building one desired state reads or parses once however many resources name it: stacks share
    keystore files and password files (a fleet of profiles each with a KeyStore on one JKS), and parsing every
    certificate of a keystore again for each of them was most of the time of a plan. What a kind keeps in
    ``memo`` is keyed by a file's digest and, where reading depends on a password, by ``inputs.password_key``:
    never by a password."""

    inputs: RunInputs = field(default_factory=RunInputs)
    memo: dict[Any, Any] = field(default_factory=dict)

    def secret(self, ref: SecretRef, origin: Origin, loc: tuple[str | int, ...]) -> SecretValue:
        try:
            return self.inputs.secret(ref, origin.base_dir)
        except MtlsConfigError as exc:
            raise FieldError(loc, exc.message) from None

    def read(self, path: str, loc: tuple[str | int, ...]) -> tuple[bytes, bytes]:
        """The file's bytes and SHA-256, read once per run."""
        try:
            return self.inputs.file(path)
        except UnreadableFile as exc:
            raise FieldError(loc, exc.message) from None


# -- reading the instance ----------------------------------------------------------------------------------


@dataclass
class Index:
    """The instance's answers to one plan's reads, indexed for the kinds: the rows the first round found by
    natural key (in the order the instance listed them), the names of referenced records, the attachments."""

    first: Mapping[str, Sequence[LiveRecord]]  # table -> rows found by natural key
    names: Mapping[str, Mapping[str, str]]  # referenced table -> sys_id -> the record's natural key
    attachments: Mapping[str, Sequence[Attachment]]  # record sys_id -> its attachments, by sys_id
    dictionary: Dictionary | None = None  # the instance's columns, when read (a column found by label)
    _groups: dict[tuple[str, str], dict[str, list[LiveRecord]]] = field(default_factory=dict, repr=False)
    _folded: dict[tuple[str, str], dict[str, list[LiveRecord]]] = field(default_factory=dict, repr=False)

    def group(self, table: str, column: str) -> dict[str, list[LiveRecord]]:
        """The first round's rows of ``table`` by the value of ``column``, each list in the instance's order."""
        key = (table, column)
        if key not in self._groups:
            groups: dict[str, list[LiveRecord]] = {}
            for record in self.first.get(table, ()):
                groups.setdefault(record.get(column), []).append(record)
            self._groups[key] = groups
        return self._groups[key]

    def named(self, table: str, column: str, name: str) -> list[LiveRecord]:
        """The first round's rows of ``table`` whose ``column`` is ``name`` as the instance compares names (ignoring
        case), in the instance's order."""
        key = (table, column)
        if key not in self._folded:
            groups: dict[str, list[LiveRecord]] = {}
            for record in self.first.get(table, ()):
                groups.setdefault(folded(record.get(column)), []).append(record)
            self._folded[key] = groups
        return self._folded[key].get(folded(name), [])

    def names_of(self, table: str) -> Mapping[str, str]:
        return self.names.get(table, {})

    def attachments_of(self, sys_id: str) -> tuple[Attachment, ...]:
        return tuple(self.attachments.get(sys_id, ()))


def ambiguous(what: str, name: str, records: Sequence[LiveRecord], column: str) -> Ambiguous:
    """Several records answer to one name as the instance compares names: each named by sys_id and spelling."""
    listed = ", ".join(f"{r.sys_id} ('{r.get(column)}')" for r in sorted(records, key=lambda r: r.sys_id))
    return Ambiguous(
        f"{len(records)} {what} are named '{name}' (ignoring case, as the instance compares names): {listed}"
    )


def one_of(records: Sequence[LiveRecord], owned: OwnedResource | None) -> LiveRecord | None:
    """The record among several that answer to a name: the only one, or the only one the stack owns."""
    if len(records) == 1:
        return records[0]
    owned_ids = {o.sys_id for o in owned.records} if owned else set()
    ours = [r for r in records if r.sys_id in owned_ids]
    return ours[0] if len(ours) == 1 else None


def referenced_name(record: LiveRecord, column: str, names: Mapping[str, str]) -> str:
    """The natural key of the record a reference column names; "(sys_id X)" when it names one not found."""
    sys_id = ref_value(record.values.get(column))
    return names.get(sys_id, f"(sys_id {sys_id})" if sys_id else "")


# -- compiling changes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompileContext:
    """The sys_id of every resource apply will know: existing records' and those chosen for the creates."""

    sys_ids: Mapping[str, str]  # address -> primary sys_id
    new_ids: Mapping[str, str]  # address -> the sys_id chosen for its new record
    dictionary: Dictionary | None = None  # the instance's columns, when read
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # table -> sys_id -> natural key, as read

    def sys_id(self, address: str) -> str:
        return self.sys_ids.get(address, "")

    def sys_ids_named(self, table: str, names: Iterable[str]) -> list[str]:
        """The sys_ids of the ``table`` records with these natural keys (compared as the instance compares names),
        sorted; the plan made sure each name was found once."""
        wanted = {folded(n) for n in names}
        return sorted(sys_id for sys_id, name in self.names.get(table, {}).items() if folded(name) in wanted)


Phases = list[list[Operation]]


# -- the contract ------------------------------------------------------------------------------------------


class Kind:
    """One resource kind. Class attributes say what is static; methods what depends on a resource."""

    name: ClassVar[str]
    model: ClassVar[type[AnyResource]]  # its spec model (spec/models.py)
    intro: ClassVar[str]  # one paragraph for the spec reference
    table: ClassVar[str]  # where its records live (a kind spanning tables names its main one here)
    natural_key: ClassVar[str] = "name"  # the column its records are looked up by
    records_noun: ClassVar[str] = "records"  # what its records are called in messages ("certificate records")
    columns: ClassVar[tuple[str, ...]] = ()  # what it reads of ``table``
    primary_part: ClassVar[str] = ""  # the part of a live view whose record is the resource's own
    stage: ClassVar[int]  # apply stage of its creates and updates: lower stages go first
    stage_name: ClassVar[str]  # what that stage writes, as progress lines name it ("certificates")
    references: ClassVar[tuple[Reference, ...]] = ()  # columns naming other kinds' records
    field_references: ClassVar[Mapping[str, str]] = {}  # canonical field -> the kind whose name it holds
    sensitive: ClassVar[tuple[str, ...]] = ()  # fields a plan always masks
    password_field: ClassVar[str | None] = None  # a write-only password, compared through the inventory
    opaque_column: ClassVar[str | None] = None  # what the instance returns for that password (compared as a hash)
    attachment_table: ClassVar[str | None] = None  # its files are attachments of this table's records
    content_field: ClassVar[str | None] = None  # the canonical field a file's digest goes in
    has_expiry: ClassVar[bool] = False  # expiry findings from its certificate
    takes_over: ClassVar[bool] = False  # owns fields of records that exist already: never creates or deletes one
    roles: ClassVar[tuple[str, ...]] = ("admin",)  # one of them lets the account read and write its tables
    writes: ClassVar[tuple[str, ...]] = ()  # the columns of ``table`` its creates and updates write
    unresolved_hint: ClassVar[str] = ""  # the hint of an ``Unresolved`` finding
    import_group: ClassVar[str] = ""  # the file 'import' writes its specs to, without .yaml
    listings: ClassVar[tuple[ImportRead, ...]] = ()  # what the first round lists when the specs hold this kind

    # -- identity and the specs ----------------------------------------------------------------------------

    def address(self, name: str) -> str:
        return self.model.address_of(name)

    def reads(self) -> Mapping[str, tuple[str, ...]]:
        """Columns to read, per table."""
        return {self.table: self.columns}

    def table_roles(self) -> Mapping[str, tuple[str, ...]]:
        """The roles (any one of them) the account needs for each table this kind reads and writes."""
        return {table: self.roles for table in self.reads()}

    def every_column(self) -> tuple[str, ...]:
        """Tables whose records are read with all their columns: some of their columns are known only by label
        until the dictionary, read in the same round, names them."""
        return ()

    def references_of(self, dictionary: Dictionary | None) -> tuple[Reference, ...]:
        """Its reference columns as this instance names them."""
        return self.references

    def depends_on(self, resource: AnyResource) -> tuple[str, ...]:
        """Addresses of the resources this one needs on the instance first: those its spec names."""
        return tuple([ref.model.address_of(ref.name) for ref in resource.references()])

    def lookups(self, resource: AnyResource) -> tuple[Lookup, ...]:
        """The natural keys to read for a spec: the specs alone say them, so the reads can go out before the
        desired state is built. ``desired_lookups`` must say the same for the resource's desired state."""
        return (_new_tuple(Lookup, (self.table, self.natural_key, resource.metadata.name)),)

    def desired_lookups(self, d: DesiredResource) -> tuple[Lookup, ...]:
        return (_new_tuple(Lookup, (self.table, self.natural_key, d.name)),)

    def desired(self, resource: AnyResource, origin: Origin, ctx: BuildContext) -> DesiredResource:
        raise NotImplementedError

    # -- the live view -------------------------------------------------------------------------------------

    def match(self, d: DesiredResource, index: Index, owned: OwnedResource | None) -> Match:
        """The live view of ``d`` from the first round's rows: the record with its natural key as the instance
        compares names (ignoring case). Several such records are ambiguous unless exactly one is the stack's."""
        found = index.named(self.table, self.natural_key, d.name)
        if not found:
            return None
        record = one_of(found, owned)
        if record is None:
            return ambiguous(self.records_noun, d.name, found, self.natural_key)
        return self.live_of(d, {"": record}, index)

    def live(self, address: str, name: str, records: Mapping[str, LiveRecord], index: Index) -> LiveResource:
        """The canonical view of a resource's records (by part: "" for a single record)."""
        raise NotImplementedError

    def live_of(self, d: DesiredResource, records: Mapping[str, LiveRecord], index: Index) -> LiveResource:
        """``live`` for the records found for ``d``: a kind may spare work by what the desired state already knows
        (the fingerprint of the certificate text it sends, which the record holds unchanged)."""
        return self.live(d.address, d.name, records, index)

    def with_content(self, current: LiveResource, digest: str | None) -> LiveResource:
        """The live view with the digest of its file, found by the content checks."""
        if self.content_field is None:
            return current
        return current.with_fields({**current.fields, self.content_field: digest})

    def content_digest(self, d: DesiredResource, data: bytes) -> str:
        """A live file's digest in the form the desired one was made."""
        return "sha256:" + hashlib.sha256(data).hexdigest()

    # -- comparing -----------------------------------------------------------------------------------------

    def desired_fields(self, d: DesiredResource, current: LiveResource | None) -> Mapping[str, Any]:
        """The fields the resource should have, given what is there (a binding of 'all' functions): the desired
        state's own mapping when it says them all (nothing changes a change's sides; a plan copies them)."""
        return d.fields

    def conflict(self, d: DesiredResource, current: LiveResource) -> tuple[str, str]:
        """Why a live resource the stack does not own cannot be taken (message, hint); empty when it can."""
        return "", ""

    def findings(self, d: DesiredResource, current: LiveResource | None, live: Live) -> list[Finding]:
        """What the instance would do with the resource as the specs want it that the comparison does not show (a
        binding the instance would not use: a MID Server, OAuth 2.0, a method of its own mind)."""
        return []

    def replace_reason(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
        """Why the record must be re-made rather than updated; empty when it can be updated."""
        return ""

    def take_over_reason(self, d: DesiredResource) -> str:
        return ""

    def removal(self, current: LiveResource, owned: Sequence[OwnedRecord]) -> tuple[str, dict[str, Any] | None]:
        """The reason and the "after" of the change that removes an owned resource no longer in the specs."""
        return "owned by this stack and removed from the specs", None

    # -- applying ------------------------------------------------------------------------------------------

    def compile(
        self, change: Change, d: DesiredResource, current: LiveResource | None, owned: OwnedResource | None,
        ctx: CompileContext,
    ) -> Phases:  # fmt: skip
        """A create, update or replace as ordered phases of operations."""
        raise NotImplementedError

    def compile_delete(
        self, change: Change, current: LiveResource, owned: OwnedResource | None, ctx: CompileContext
    ) -> Phases:
        primary = current.primary
        assert primary is not None
        return [[Delete(primary.table, primary.sys_id, what="delete")]]

    def write_only(self) -> tuple[str, ...]:
        """Columns written but never compared with what the instance kept: it does not give them back as written."""
        return (self.password_field,) if self.password_field is not None else ()

    def stored_form(self, column: str, value: str) -> str:
        """A column's value in the form the instance keeps it, to compare a write with what the instance kept (a
        certificate's PEM text, re-wrapped by the instance, compares by fingerprint)."""
        return value

    def originals(self, record: LiveRecord, dictionary: Dictionary | None = None) -> dict[str, str] | None:
        """What the inventory keeps of a record before the stack takes fields of it over (restored on removal)."""
        return None

    def written_columns(self, d: DesiredResource, dictionary: Dictionary | None) -> Mapping[str, tuple[str, ...]]:
        """The columns applying ``d`` writes, per table: each must be a column the instance has. Columns that
        ``all_written_columns`` does not name are ``may_lack``'s too."""
        return self.all_written_columns(dictionary)

    def all_written_columns(self, dictionary: Dictionary | None) -> Mapping[str, tuple[str, ...]]:
        """Every column a resource of this kind always writes, per table, whatever its spec says (columns only some
        specs write are in ``written_columns``)."""
        return {self.table: self.writes}

    def lacking_columns(self, dictionary: Dictionary, d: DesiredResource | None = None) -> list[tuple[str, str]]:
        """What applying ``d`` (or, without one, any resource of this kind) writes that the instance's dictionary
        lacks: (table, what follows "the instance has no column"), e.g. ``sys_certificate.notify_groups``."""
        written = self.written_columns(d, dictionary) if d is not None else self.all_written_columns(dictionary)
        return list(dictionary.lacking(written))

    def may_lack(self, dictionary: Dictionary) -> bool:
        """Whether the dictionary lacks a column that applying some resource of this kind may write. False means
        ``lacking_columns(dictionary, d)`` is empty for every ``d``: a plan then asks no resource of the kind (20 000
        questions a plan, each answered "nothing"). A kind whose ``written_columns`` may name a column
        ``all_written_columns`` does not names it here too."""
        return bool(self.lacking_columns(dictionary))

    def kept_parts(self, d: DesiredResource, current: LiveResource) -> Collection[str] | None:
        """The parts the inventory keeps owning after an apply (None: all of them)."""
        return None

    # -- importing -----------------------------------------------------------------------------------------

    def import_reads(self, dictionary: Dictionary | None = None) -> Iterable[ImportRead]:
        """What 'import' lists to find this kind's records."""
        return ()

    def import_select(self, ctx: ImportContext) -> Iterable[LiveRecord]:
        """Records of this kind that 'import' takes of its own accord (not owned, name matching the filter)."""
        return ()

    def import_pulls(self, record: LiveRecord, ctx: ImportContext) -> Iterable[LiveRecord]:
        """Records a record 'import' takes brings along (a profile's keystore)."""
        return ()

    def import_records(self, ctx: ImportContext) -> None:
        """Write specs and inventory entries for the selected records of this kind (``ctx.add``, ``ctx.skip``)."""


@dataclass(frozen=True)
class ImportRead:
    """One listing: ``table`` rows matching ``query``, with ``columns``. What 'import' lists to find a kind's
    records, and what a plan's first round lists for a kind (``Kind.listings``)."""

    table: str
    query: str
    columns: tuple[str, ...]
