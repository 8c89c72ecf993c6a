"""Turn a validated ``SpecSet`` into the desired state: canonical fields, file contents, secrets.

This is where spec files' referenced files are read, secret references resolved and ``build`` keystores
assembled (in memory). Problems are collected per resource and raised together as a ``SpecError`` that
points at the spec line, like the loader's.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.serialization import Encoding

from mtls_config.errors import MtlsConfigError, Problem, SpecError
from mtls_config.keystore import assemble_keystore, canonical_digest, load_certificates, read_keystore
from mtls_config.resources import key_store, message_binding, protocol_profile, trust_store_cert
from mtls_config.resources.common import Content, DesiredResource
from mtls_config.secrets import SecretRef, SecretValue
from mtls_config.spec.inputs import RunInputs
from mtls_config.spec.loader import Origin, SpecSet
from mtls_config.spec.models import KeyStore, MessageBinding, ProtocolProfile, TrustStoreCert


@dataclass(frozen=True)
class Desired:
    resources: tuple[DesiredResource, ...]
    spec_digest: str  # over everything compared (never over secrets)

    def get(self, address: str) -> DesiredResource | None:
        for r in self.resources:
            if r.address == address:
                return r
        return None


def _file_stem(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "keystore"


@dataclass
class _Run:
    """What one ``build_desired`` reads or parses once however many resources name it: stacks share keystore
    files and password files (a fleet of profiles each with a KeyStore on one JKS), and parsing every certificate
    of a keystore again for each of them was most of the time of a plan. Parsed keystores are keyed by the file's
    digest and, where reading depends on the password, by ``inputs.password_key``: never by a password."""

    inputs: RunInputs = field(default_factory=RunInputs)
    leaf_info: dict[tuple[bytes, str, str | None], dict[str, object]] = field(default_factory=dict)


def build_desired(
    specs: SpecSet, *, environ: Mapping[str, str] | None = None, inputs: RunInputs | None = None
) -> Desired:
    """``inputs`` shares secrets and files with another stage of the same run (its environment is used)."""
    problems: list[Problem] = []
    out: list[DesiredResource] = []
    run = _Run(inputs or RunInputs.of(environ))
    for resource in specs.resources:
        origin = specs.origins[resource.address]
        try:
            if isinstance(resource, KeyStore):
                out.append(_key_store(resource, origin, run))
            elif isinstance(resource, TrustStoreCert):
                out.append(_trust_store_cert(resource, origin, run.inputs))
            elif isinstance(resource, ProtocolProfile):
                out.append(_protocol_profile(resource))
            else:
                out.append(_message_binding(resource))
        except _FieldError as exc:
            problems.append(_problem(origin, resource.address, exc.loc, exc.message))
        except MtlsConfigError as exc:
            problems.append(_problem(origin, resource.address, ("spec",), exc.message))
    if problems:
        raise SpecError(problems)
    return Desired(tuple(out), _spec_digest(out))


class _FieldError(Exception):
    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _problem(origin: Origin, address: str, loc: tuple[str | int, ...], message: str) -> Problem:
    where = origin.at(*loc)
    path, line, col = where.rsplit(":", 2)
    dotted = ".".join(str(p) for p in loc)
    return Problem(path, int(line), int(col), address, dotted, message)


def _secret(ref: SecretRef, origin: Origin, loc: tuple[str | int, ...], run: _Run) -> SecretValue:
    try:
        return run.inputs.secret(ref, origin.base_dir)
    except MtlsConfigError as exc:
        raise _FieldError(loc, exc.message) from None


def _read(path: str, loc: tuple[str | int, ...], inputs: RunInputs) -> tuple[bytes, bytes]:
    """The file's bytes and SHA-256, read once per run."""
    try:
        return inputs.file(path)
    except OSError as exc:
        raise _FieldError(loc, f"cannot read file: {exc.strerror or exc}") from None


def _key_store(ks: KeyStore, origin: Origin, run: _Run) -> DesiredResource:
    spec = ks.spec
    password = _secret(spec.password, origin, ("spec", "password"), run)
    ext = "jks" if spec.format == "jks" else "p12"
    if spec.file is not None:
        data, sha256 = _read(spec.file, ("spec", "file"), run.inputs)
        content = Content(data, f"{_file_stem(ks.name)}.{ext}", "application/octet-stream", "sha256:" + sha256.hex())
    else:
        build = spec.build
        assert build is not None
        key_pem = _secret(build.key, origin, ("spec", "build", "key"), run)
        key_password = (
            _secret(build.key_password, origin, ("spec", "build", "keyPassword"), run)
            if build.key_password is not None
            else None
        )
        cert_pem = _read(build.cert, ("spec", "build", "cert"), run.inputs)[0]
        chain = [_read(p, ("spec", "build", "chain", i), run.inputs)[0] for i, p in enumerate(build.chain)]
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
            raise _FieldError(("spec", "build"), exc.message) from None
        content = Content(data, f"{_file_stem(ks.name)}.{ext}", "application/octet-stream", digest, canonical=True)
    info: dict[str, object] = {"warn_days": spec.warn_days}
    info.update(_leaf_info(content.data, password, spec.format, run))
    fields = key_store.canonical_fields(
        format=spec.format,
        active=spec.active,
        description=spec.description,
        warn_days=spec.warn_days,
        notify=spec.expiration_notification,
        digest=content.digest,
    )
    return DesiredResource(
        ks.address, ks.kind, ks.name, key_store.TABLE, fields, ks.metadata.adopt, content, password, info=info,
    )  # fmt: skip


def _leaf_info(data: bytes, password: SecretValue, fmt: Literal["jks", "pkcs12"], run: _Run) -> dict[str, object]:
    """Subject and expiry of the keystore's client certificate, shown in plans and checked by drift."""
    # A JKS is read without its password (below); a PKCS12 cannot be, so the password is part of the key.
    seen = (hashlib.sha256(data).digest(), fmt, None if fmt == "jks" else run.inputs.password_key(password))
    if seen not in run.leaf_info:
        run.leaf_info[seen] = _read_leaf_info(data, password, fmt)
    return run.leaf_info[seen]


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
    return {"subject": leaf.subject.rfc4514_string(), "expires": leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S")}


def _trust_store_cert(tc: TrustStoreCert, origin: Origin, inputs: RunInputs) -> DesiredResource:
    spec = tc.spec
    loc: tuple[str | int, ...] = ("spec", "file") if spec.file is not None else ("spec", "pem")
    raw = _read(spec.file, loc, inputs)[0] if spec.file is not None else (spec.pem or "").encode()
    try:
        certs = load_certificates(raw)
    except MtlsConfigError as exc:
        raise _FieldError(loc, exc.message) from None
    if len(certs) != 1:
        raise _FieldError(loc, f"holds {len(certs)} certificates; a trust store record takes exactly one")
    der = certs[0].public_bytes(Encoding.DER)
    fingerprint = trust_store_cert.fingerprint_der(der)
    content = None
    pem_text = None
    if spec.format == "der":
        if raw.lstrip().startswith(b"-----BEGIN"):
            raise _FieldError(loc, "format is der but the file is PEM text; use format: pem or convert the file")
        content = Content(der, f"{_file_stem(tc.name)}.der", "application/pkix-cert", fingerprint)
    else:
        pem_text = trust_store_cert.pem_of_der(der)
    fields = trust_store_cert.canonical_fields(
        format=spec.format,
        active=spec.active,
        description=spec.description,
        warn_days=spec.warn_days,
        notify=spec.expiration_notification,
        fingerprint=fingerprint,
    )
    info = {
        "warn_days": spec.warn_days,
        "subject": certs[0].subject.rfc4514_string(),
        "expires": certs[0].not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S"),
        "pem_text": pem_text,
    }
    return DesiredResource(
        tc.address, tc.kind, tc.name, trust_store_cert.TABLE, fields, tc.metadata.adopt, content, info=info
    )


def _protocol_profile(pp: ProtocolProfile) -> DesiredResource:
    fields = protocol_profile.canonical_fields(port=pp.spec.port, key_store=pp.spec.key_store)
    return DesiredResource(
        pp.address, pp.kind, pp.name, protocol_profile.TABLE, fields, pp.metadata.adopt,
        depends_on=(f"KeyStore/{pp.spec.key_store}",),
    )  # fmt: skip


def _message_binding(mb: MessageBinding) -> DesiredResource:
    spec = mb.spec
    tables = message_binding.TABLES[spec.message.type]
    functions = spec.functions if isinstance(spec.functions, list) else []
    fields = message_binding.canonical_fields(spec.protocol_profile, functions)
    target = {"type": spec.message.type, "message": spec.message.name, "functions": spec.functions}
    return DesiredResource(
        mb.address, mb.kind, mb.name, tables.message, fields, mb.metadata.adopt,
        depends_on=(f"ProtocolProfile/{spec.protocol_profile}",), target=target,
    )  # fmt: skip


def _spec_digest(resources: list[DesiredResource]) -> str:
    body = [
        {
            "address": r.address,
            "fields": r.fields,
            "target": r.target,
            "adopt": r.adopt,
            "content": r.content.digest if r.content else None,
        }
        for r in resources
    ]
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
