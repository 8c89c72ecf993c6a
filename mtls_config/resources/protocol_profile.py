"""ProtocolProfile: a ``sys_protocol_profile`` (protocol = the scheme, default_port, keystore reference).

A profile's scheme can also be registered by hand with the ``glide.httpclient.protocol.<protocol>.class`` and
``.port`` system properties (KB0696599); stale ones break mutual auth (KB0824494, KB0683345). The first round lists
them, and a pair that exists and does not match the profile is a warning, never changed by the tool
(``resources.sending.property_issues``).

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from mtls_config.changes import Change, Finding
from mtls_config.inventory import OwnedRecord, OwnedResource
from mtls_config.operations import Create, Update
from mtls_config.resources import key_store
from mtls_config.resources.certificate import TABLE as CERTIFICATES
from mtls_config.resources.common import (
    DesiredResource,
    LiveRecord,
    LiveResource,
    desired_resource,
    live_resource,
    ref_value,
    to_int,
)
from mtls_config.resources.importing import ImportContext
from mtls_config.resources.kind import (
    BuildContext,
    CompileContext,
    ImportRead,
    Index,
    Kind,
    Phases,
    Reference,
    referenced_name,
)
from mtls_config.resources.sending import PROPERTY_PREFIX, property_issues
from mtls_config.spec.models import ProtocolProfile

if TYPE_CHECKING:
    from mtls_config.dictionary import Dictionary
    from mtls_config.live import Live
    from mtls_config.spec.loader import Origin
    from mtls_config.spec.models import AnyResource

NAME = "ProtocolProfile"
TABLE = "sys_protocol_profile"
COLUMNS = ("sys_id", "protocol", "default_port", "keystore", "sys_mod_count")
RECORD_FIELDS = ("protocol", "default_port", "keystore")
IMPORT_READ = ImportRead(TABLE, "", COLUMNS)
# Every glide.httpclient.protocol.* property (facts-2 §5): a handful on any instance, one request.
PROPERTIES_READ = ImportRead("sys_properties", f"nameSTARTSWITH{PROPERTY_PREFIX}", ("sys_id", "name", "value"))


def canonical_fields(*, port: int, key_store: str) -> dict[str, Any]:
    return {"default_port": port, "keystore": key_store}


def live(address: str, name: str, record: LiveRecord, certificate_names: Mapping[str, str]) -> LiveResource:
    fields = {
        "default_port": to_int(record.get("default_port")),
        "keystore": referenced_name(record, "keystore", certificate_names),
    }
    return live_resource(address, NAME, name, TABLE, {"": record}, fields, {}, (), (), "", ())


def payload(desired: DesiredResource, keystore_sys_id: str) -> dict[str, str]:
    return {
        "protocol": desired.name,
        "default_port": str(desired.fields["default_port"]),
        "keystore": keystore_sys_id,
    }


class ProtocolProfileKind(Kind):
    name = NAME
    model = ProtocolProfile
    intro = "A `sys_protocol_profile`: the URL scheme bound to the keystore the instance presents (step C)."
    table = TABLE
    natural_key = "protocol"
    records_noun = "protocol profiles"
    writes = RECORD_FIELDS
    columns = COLUMNS
    stage = 1
    stage_name = "protocol profiles"
    references = (Reference(TABLE, "keystore", CERTIFICATES, "name"),)
    field_references: ClassVar[Mapping[str, str]] = {"keystore": key_store.NAME}
    import_group = "protocol-profiles"
    listings = (PROPERTIES_READ,)

    def desired(self, resource: AnyResource, origin: Origin, ctx: BuildContext) -> DesiredResource:
        assert isinstance(resource, ProtocolProfile)
        spec, metadata = resource.spec, resource.metadata
        fields = canonical_fields(port=spec.port, key_store=spec.key_store)
        return desired_resource(
            resource.address, NAME, metadata.name, TABLE, fields, metadata.adopt, None, None,
            self.depends_on(resource), {}, {},
        )  # fmt: skip

    def live(self, address: str, name: str, records: Mapping[str, LiveRecord], index: Index) -> LiveResource:
        return live(address, name, records[""], index.names_of(CERTIFICATES))

    def findings(self, d: DesiredResource, current: LiveResource | None, live: Live) -> list[Finding]:
        """The protocol properties of this profile that exist and do not match it (the port it will have)."""
        listed = live.listed.get(PROPERTIES_READ, ())
        if not listed:
            return []  # no such property on the instance (most): nothing to say, for each of thousands of profiles
        properties = {r.get("name"): r.get("value") for r in listed}
        return [
            Finding(d.address, i.severity, f"{i.record}: {i.message}", i.fix, "mutual-auth")
            for i in property_issues(d.name, d.fields["default_port"], properties)
        ]

    def compile(
        self, change: Change, d: DesiredResource, current: LiveResource | None, owned: OwnedResource | None,
        ctx: CompileContext,
    ) -> Phases:  # fmt: skip
        values = payload(d, ctx.sys_id(key_store.KIND.address(d.fields["keystore"])))
        if change.action in ("create", "replace"):
            return [[Create(TABLE, ctx.new_ids[change.address], values, what="create")]]
        values.pop("protocol", None)
        return [[Update(TABLE, ctx.sys_ids[change.address], values, what="set fields")]]

    # -- import ---------------------------------------------------------------------------------------------

    def import_reads(self, dictionary: Dictionary | None = None) -> Iterable[ImportRead]:
        return (IMPORT_READ,)

    def import_select(self, ctx: ImportContext) -> Iterable[LiveRecord]:
        return [p for p in ctx.listed(IMPORT_READ) if not ctx.owned(p) and ctx.matches(p.get("protocol"))]

    def import_pulls(self, record: LiveRecord, ctx: ImportContext) -> Iterable[LiveRecord]:
        # A profile's keystore comes along, or the specs would not validate.
        keystore = ctx.by_id(CERTIFICATES).get(ref_value(record.values.get("keystore")))
        return [keystore] if keystore is not None and not ctx.owned(keystore) else []

    def import_records(self, ctx: ImportContext) -> None:
        certificates = ctx.by_id(CERTIFICATES)
        for p in sorted(ctx.chosen(TABLE), key=lambda p: p.get("protocol")):
            protocol = p.get("protocol")
            ks = certificates.get(ref_value(p.values.get("keystore")))
            if ks is None or (not ctx.imported(key_store.KIND.address(ks.get("name"))) and not ctx.owned(ks)):
                ctx.skip(self, (protocol,), f"{self.address(protocol)}: its keystore could not be imported")
                continue
            spec = {"port": to_int(p.get("default_port")) or 443, "keyStore": ks.get("name")}
            entry = OwnedResource(
                address="", records=[OwnedRecord(table=TABLE, sys_id=p.sys_id, mod_count=p.mod_count)]
            )
            ctx.add(self, protocol, spec, entry)


KIND = ProtocolProfileKind()
