"""KeyStore: a ``sys_certificate`` record of type key_store (JKS) or pkcs12_key_store, file attached.

Owned fields: type, active, short_description, warn_in_days_to_expire, expiration_notification, the
keystore file (compared by digest) and the write-only key_store_password (compared through the
inventory's salted digest, never by value).

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from mtls_config.errors import MtlsConfigError
from mtls_config.inventory import IMPORTED_PASSWORD, OwnedRecord, OwnedResource
from mtls_config.keystore import assemble_keystore, canonical_digest, read_keystore
from mtls_config.keystore.certs import utc_text
from mtls_config.resources.certificate import (
    TABLE,
    CertificateKind,
    canonical_record,
    live_record_fields,
    record_spec,
    spec_record,
)
from mtls_config.resources.common import (
    Attachment,
    Content,
    DesiredResource,
    LiveRecord,
    LiveResource,
    desired_resource,
    live_resource,
    wire,
)
from mtls_config.resources.importing import ImportContext
from mtls_config.resources.kind import BuildContext, FieldError, Index, file_stem
from mtls_config.secrets import SecretValue
from mtls_config.spec.models import KeyStore
from mtls_config.wording import plural

if TYPE_CHECKING:
    from mtls_config.spec.loader import Origin
    from mtls_config.spec.models import AnyResource

NAME = "KeyStore"
TYPES = {"jks": "key_store", "pkcs12": "pkcs12_key_store"}
FILE_FIELD = "keystore_file"
PASSWORD_FIELD = "key_store_password"
RECORD_FIELDS = ("type", "active", "short_description", "warn_in_days_to_expire", "expiration_notification")
# expires_in_days is left out: it changes every day, and a plan of the same state must not
INFO_FIELDS = ("expires", "valid_from", "subject", "issuer")


def canonical_fields(
    *,
    format: str,
    active: bool,
    description: str,
    warn_days: int,
    notify: bool,
    digest: str,
    notification: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    record = canonical_record(
        active=active, description=description, warn_days=warn_days, notify=notify, notification=notification
    )
    return _fields(format, record, digest)


def _fields(format: str, record: Mapping[str, Any], digest: str) -> dict[str, Any]:
    return {"type": TYPES[format], **record, FILE_FIELD: digest}


def live(
    address: str, name: str, record: LiveRecord, attachments: tuple[Attachment, ...], content_digest: str | None
) -> LiveResource:
    fields: dict[str, Any] = {"type": record.get("type"), **live_record_fields(record), FILE_FIELD: content_digest}
    problems: list[str] = []
    if not attachments:
        problems.append("no keystore file is attached")
    elif len(attachments) > 1:
        problems.append(f"{plural(len(attachments), 'file')} are attached; the instance may load any of them")
    info = {k: value for k in INFO_FIELDS if (value := record.get(k))}
    return live_resource(address, NAME, name, TABLE, {"": record}, fields, info, attachments, tuple(problems), "", ())


def payload(desired: DesiredResource, *, fields: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Table API values for the record's plain fields (not the file, not the password)."""
    source = desired.fields if fields is None else fields
    out = {k: wire(source[k]) for k in RECORD_FIELDS if k in source}
    out["name"] = desired.name
    return out


class KeyStoreKind(CertificateKind):
    name = NAME
    model = KeyStore
    intro = (
        "The instance's client keystore: a `sys_certificate` record of type Java Key Store "
        "(`key_store`) or PKCS12 Key Store (`pkcs12_key_store`) with the keystore file attached (steps A-B)."
    )
    record_types = ("key_store", "pkcs12_key_store")
    holds_key = True
    sensitive = (PASSWORD_FIELD,)
    password_field = PASSWORD_FIELD
    content_field = FILE_FIELD
    import_group = "keystores"
    writes = ("name", *RECORD_FIELDS, PASSWORD_FIELD)

    def desired(self, resource: AnyResource, origin: Origin, ctx: BuildContext) -> DesiredResource:
        assert isinstance(resource, KeyStore)
        spec = resource.spec
        password = ctx.secret(spec.password, origin, ("spec", "password"))
        ext = "jks" if spec.format == "jks" else "p12"
        if spec.file is not None:
            data, sha256 = ctx.read(spec.file, ("spec", "file"))
            content = Content(
                data, f"{file_stem(resource.name)}.{ext}", "application/octet-stream", "sha256:" + sha256.hex()
            )
        else:
            build = spec.build
            assert build is not None
            key_pem = ctx.secret(build.key, origin, ("spec", "build", "key"))
            key_password = (
                ctx.secret(build.key_password, origin, ("spec", "build", "keyPassword"))
                if build.key_password is not None
                else None
            )
            cert_pem = ctx.read(build.cert, ("spec", "build", "cert"))[0]
            chain = [ctx.read(p, ("spec", "build", "chain", i))[0] for i, p in enumerate(build.chain)]
            try:
                data = assemble_keystore(
                    key_pem.reveal(),
                    cert_pem,
                    chain,
                    password,
                    key_password=key_password,
                    alias=build.alias,
                    fmt=spec.format,
                )
                digest = canonical_digest(read_keystore(data, password, declared_format=spec.format))
            except MtlsConfigError as exc:
                raise FieldError(("spec", "build"), exc.message) from None
            content = Content(
                data, f"{file_stem(resource.name)}.{ext}", "application/octet-stream", digest, canonical=True
            )
            sha256 = None
        info: dict[str, object] = {"warn_days": spec.warn_days}
        info.update(_leaf_info(content.data, password, spec.format, ctx, sha256))
        fields = _fields(spec.format, spec_record(spec), content.digest)  # canonical_fields of the spec
        metadata = resource.metadata
        return desired_resource(
            resource.address, NAME, metadata.name, TABLE, fields, metadata.adopt, content, password, (),
            info, {},
        )  # fmt: skip

    def live(self, address: str, name: str, records: Mapping[str, LiveRecord], index: Index) -> LiveResource:
        record = records[""]
        return live(address, name, record, index.attachments_of(record.sys_id), None)

    def content_digest(self, d: DesiredResource, data: bytes) -> str:
        """A keystore assembled from its parts is compared by its canonical model, which needs its password."""
        if d.content is not None and d.content.canonical and d.password is not None:
            declared: Literal["jks", "pkcs12"] = "jks" if d.fields["type"] == "key_store" else "pkcs12"
            try:
                return canonical_digest(read_keystore(data, d.password, declared_format=declared))
            except MtlsConfigError:
                return "unreadable:sha256:" + hashlib.sha256(data).hexdigest()
        return super().content_digest(d, data)

    def payload(self, d: DesiredResource, fields: Mapping[str, Any]) -> dict[str, str]:
        return payload(d, fields=fields)

    def import_records(self, ctx: ImportContext) -> None:
        for cert in self.imported_records(ctx):
            name = cert.get("name")
            found = ctx.file_of(cert)
            if found is None:
                ctx.skip(
                    self,
                    (name,),
                    f"{self.address(name)}: {ctx.attachment_count(cert)} files attached, need exactly one",
                )
                continue
            att, data = found
            fmt = "jks" if cert.get("type") == "key_store" else "pkcs12"
            path = ctx.file_path(name, ".jks" if fmt == "jks" else ".p12")
            ctx.files[path] = data
            spec = {"format": fmt, "file": path, "password": {"fromEnv": ctx.env_var(name)}, **record_spec(cert)}
            opaque = cert.get(PASSWORD_FIELD)
            entry = OwnedResource(
                address="",
                records=[OwnedRecord(table=TABLE, sys_id=cert.sys_id, mod_count=cert.mod_count)],
                content_attachment=att.sys_id,
                content_size=att.size,
                content_digest="sha256:" + hashlib.sha256(data).hexdigest(),
                password_digest=IMPORTED_PASSWORD,
                password_opaque=hashlib.sha256(opaque.encode()).hexdigest() if opaque else None,
            )
            ctx.add(self, name, spec, entry)


def _leaf_info(
    data: bytes,
    password: SecretValue,
    fmt: Literal["jks", "pkcs12"],
    ctx: BuildContext,
    sha256: bytes | None = None,
) -> dict[str, object]:
    """Subject and expiry of the keystore's client certificate, shown in plans and checked by drift. ``sha256``:
    the data's, when the caller has it (a file's, read once a run)."""
    # A JKS is read without its password (below); a PKCS12 cannot be, so the password is part of the key.
    digest = sha256 if sha256 is not None else hashlib.sha256(data).digest()
    seen = ("leaf", digest, fmt, None if fmt == "jks" else ctx.inputs.password_key(password))
    if seen not in ctx.memo:
        ctx.memo[seen] = _read_leaf_info(data, password, fmt)
    info: dict[str, object] = ctx.memo[seen]
    return info


def _read_leaf_info(data: bytes, password: SecretValue, fmt: Literal["jks", "pkcs12"]) -> dict[str, object]:
    try:
        # JKS lists its certificates without the password: no key decryption just to show the expiry.
        contents = read_keystore(data, None if fmt == "jks" else password, declared_format=fmt)
    except MtlsConfigError:
        return {}  # lint reports unreadable keystores; the plan still compares the file
    keys = contents.private_key_entries
    leaf = keys[0].leaf if len(keys) == 1 else None
    if leaf is None:
        return {}
    return {"subject": leaf.subject.rfc4514_string(), "expires": utc_text(leaf.not_valid_after_utc)}


KIND = KeyStoreKind()
