"""TrustStoreCert: a ``sys_certificate`` record of type trust_store holding a partner's certificate.

format pem: the text is in ``pem_certificate``; format der: the file is attached. Either way the
certificate is compared by its SHA-256 fingerprint, so re-wrapped PEM text is not a change.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mtls_config.errors import MtlsConfigError
from mtls_config.inventory import OwnedRecord, OwnedResource
from mtls_config.keystore.certs import checked_certificates, pem_certificate, plain_pem_der, utc_text
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
from mtls_config.spec.models import TrustStoreCert
from mtls_config.wording import plural

if TYPE_CHECKING:
    from mtls_config.spec.loader import Origin
    from mtls_config.spec.models import AnyResource

NAME = "TrustStoreCert"
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
_FILE_LOC = ("spec", "file")  # where a problem with the certificate is said
_PEM_LOC = ("spec", "pem")


def fingerprint_der(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def fingerprint_pem(text: str) -> str | None:
    """Fingerprint of the first certificate in PEM text, whatever its line wrapping; None if unreadable."""
    try:
        data = normalise_pem(text).encode("ascii")
        der = plain_pem_der(data)
        if der is not None:
            x509.load_der_x509_certificate(der)  # for its errors: a readable certificate has a fingerprint
        else:
            der = x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    except ValueError:
        return None
    return fingerprint_der(der)


def pem_of_der(der: bytes) -> str:
    """The PEM text of a DER certificate, in the form ``normalise_pem`` gives (64 columns, LF, one newline at the end)."""
    return pem_certificate(der)


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
    *,
    format: str,
    active: bool,
    description: str,
    warn_days: int,
    notify: bool,
    fingerprint: str,
    notification: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    record = canonical_record(
        active=active, description=description, warn_days=warn_days, notify=notify, notification=notification
    )
    return _fields(format, record, fingerprint)


def _fields(format: str, record: Mapping[str, Any], fingerprint: str) -> dict[str, Any]:
    return {"type": "trust_store", "format": format, **record, CERT_FIELD: fingerprint}


def live(
    address: str,
    name: str,
    record: LiveRecord,
    attachments: tuple[Attachment, ...],
    der_fingerprint: str | None,
    sent: tuple[str, str] | None = None,
) -> LiveResource:
    """``sent``: a PEM text and its fingerprint, known already (the desired state's): a record that holds that text
    as it is has that fingerprint, without parsing it again."""
    fmt = record.get("format") or "pem"
    text = record.get("pem_certificate")
    if fmt == "der":
        certificate = der_fingerprint
    elif not text:
        certificate = None
    elif sent is not None and text == sent[0]:
        certificate = sent[1]
    else:
        certificate = fingerprint_pem(text)
    fields: dict[str, Any] = {
        "type": record.get("type"),
        "format": fmt,
        **live_record_fields(record),
        CERT_FIELD: certificate,
    }
    problems: list[str] = []
    if fmt == "der" and len(attachments) > 1:
        problems.append(f"{plural(len(attachments), 'file')} are attached to a DER certificate record")
    info = {k: value for k in INFO_FIELDS if (value := record.get(k))}
    return live_resource(address, NAME, name, TABLE, {"": record}, fields, info, attachments, tuple(problems), "", ())


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


class TrustStoreCertKind(CertificateKind):
    name = NAME
    model = TrustStoreCert
    intro = (
        "A partner's certificate the instance trusts: a `sys_certificate` record of type "
        "Trust Store Cert (`trust_store`) (step E)."
    )
    record_types = ("trust_store",)
    content_field = CERT_FIELD
    import_group = "trust-store-certs"
    writes = ("name", *RECORD_FIELDS, "pem_certificate")

    def stored_form(self, column: str, value: str) -> str:
        if column == "pem_certificate" and value:
            return fingerprint_pem(value) or normalise_pem(value)
        return super().stored_form(column, value)

    def desired(self, resource: AnyResource, origin: Origin, ctx: BuildContext) -> DesiredResource:
        assert isinstance(resource, TrustStoreCert)
        spec = resource.spec
        if spec.file is not None:
            loc: tuple[str | int, ...] = _FILE_LOC
            raw = ctx.read(spec.file, loc)[0]
        else:
            loc = _PEM_LOC
            raw = (spec.pem or "").encode()
        try:
            certs = checked_certificates(raw)  # parsed and checked once a run: lint reads the same
        except MtlsConfigError as exc:
            raise FieldError(loc, exc.message) from None
        if len(certs) != 1:
            raise FieldError(loc, f"holds {plural(len(certs), 'certificate')}; a trust store record takes exactly one")
        cert = certs[0]
        fingerprint = "sha256:" + cert.sha256.hex()
        content = None
        pem_text = None
        if spec.format == "der":
            if raw.lstrip().startswith(b"-----BEGIN"):
                raise FieldError(loc, "format is der but the file is PEM text; use format: pem or convert the file")
            content = Content(cert.der, f"{file_stem(resource.name)}.der", "application/pkix-cert", fingerprint)
        else:
            # the data, when it is the certificate's PEM text already (as 'import' and openssl write it): the spec's
            # own string when the data is its text, not a second copy of it kept for the run (540 bytes)
            if not cert.canonical_pem:
                pem_text = pem_of_der(cert.der)
                if spec.pem == pem_text:
                    pem_text = spec.pem
            else:
                pem_text = spec.pem if spec.file is None and spec.pem is not None else raw.decode("ascii")
        fields = _fields(spec.format, spec_record(spec), fingerprint)  # canonical_fields of the spec
        info = {
            "warn_days": spec.warn_days,
            "subject": cert.subject,
            "expires": utc_text(cert.not_after),
            "pem_text": pem_text,
        }
        metadata = resource.metadata
        return desired_resource(
            resource.address, NAME, metadata.name, TABLE, fields, metadata.adopt, content, None, (), info, {}
        )

    def live(self, address: str, name: str, records: Mapping[str, LiveRecord], index: Index) -> LiveResource:
        record = records[""]
        return live(address, name, record, index.attachments_of(record.sys_id), None)

    def live_of(self, d: DesiredResource, records: Mapping[str, LiveRecord], index: Index) -> LiveResource:
        record = records[""]
        sent = d.info.get("pem_text")
        known = (sent, d.fields[CERT_FIELD]) if isinstance(sent, str) else None
        return live(d.address, d.name, record, index.attachments_of(record.sys_id), None, known)

    def with_content(self, current: LiveResource, digest: str | None) -> LiveResource:
        """Only a DER record's certificate is its file; PEM text is compared as it is."""
        if current.fields.get("format") != "der":
            return current
        return current.with_fields({**current.fields, CERT_FIELD: digest})

    def payload(self, d: DesiredResource, fields: Mapping[str, Any]) -> dict[str, str]:
        pem_text = d.info.get("pem_text")
        return payload(d, pem_text=pem_text if isinstance(pem_text, str) else None, fields=fields)

    def import_records(self, ctx: ImportContext) -> None:
        for cert in self.imported_records(ctx):
            name = cert.get("name")
            address = self.address(name)
            fmt = cert.get("format") or "pem"
            entry = OwnedResource(
                address="", records=[OwnedRecord(table=TABLE, sys_id=cert.sys_id, mod_count=cert.mod_count)]
            )
            if fmt == "der":
                found = ctx.file_of(cert)
                if found is None:
                    ctx.skip(self, (name,), f"{address}: no single DER file attached")
                    continue
                att, data = found
                path = ctx.file_path(name, ".der")
                ctx.files[path] = data
                spec = {"format": "der", "file": path, **record_spec(cert)}
                entry.content_attachment, entry.content_size = att.sys_id, att.size
                entry.content_digest = "sha256:" + hashlib.sha256(data).hexdigest()
            else:
                text = normalise_pem(cert.get("pem_certificate"))
                path = ctx.file_path(name, ".pem")
                ctx.files[path] = text.encode()
                spec = {"format": "pem", "file": path, **record_spec(cert)}
            ctx.add(self, name, spec, entry)


KIND = TrustStoreCertKind()
