"""What to verify, resolved from specs: binding -> protocol profile -> key store -> key and chain; the trust
store from the specs' TrustStoreCerts; the endpoint from the instance (``rest_endpoint`` / ``soap_endpoint``, an
OAuth provider's ``token_url``, an HTTP connection's ``connection_url`` or ``host``); and, from the records the
binding touches on the instance, whether the instance would use mutual auth for it at all (``resources.sending``:
a MID Server, OAuth 2.0, a method of its own mind, the protocol properties; and whether the binding is applied).

The key and chain are the ones the instance will use: a ``file`` keystore is read with its password (the key
must decrypt with the store password, as on the instance); a ``build`` keystore is assembled in memory exactly
as ``apply`` uploads it, with a one-time password, and its key entry read back. Key material stays in memory.

Uses the keystore toolkit (pure) and, for endpoints, an ``Instance`` (the client) handed in by the caller.
Never imports the emulator or the CLI; never prints.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from mtls_config.errors import KeystoreError, SecretError, UnreadableFile, VerifyError
from mtls_config.files import CERTIFICATE, KEYSTORE, read_file
from mtls_config.instance import Instance
from mtls_config.keystore import assemble_keystore, detect_store_type, load_certificates, load_key_entry
from mtls_config.observe import read_dictionary
from mtls_config.reads import live_record
from mtls_config.resources.message_binding import PROFILES, TARGETS, BindingTarget, sender
from mtls_config.resources.protocol_profile import PROPERTIES_READ
from mtls_config.resources.sending import Bound, Issue, binding_issues, property_issues
from mtls_config.secrets import SecretValue
from mtls_config.spec.loader import SpecSet
from mtls_config.spec.models import AnyResource, KeyStore, MessageBinding, ProtocolProfile, TrustStoreCert
from mtls_config.verify.endpoint import verify_endpoint
from mtls_config.verify.report import Finding, Severity, StageName, StageResult, Status, VerifyReport
from mtls_config.wording import plural


@dataclass(frozen=True)
class ClientIdentity:
    """The private key and the key entry's chain (leaf first), as the instance would present them."""

    source: str  # "KeyStore/acme-client" or a file path: safe to print
    alias: str
    key: PrivateKeyTypes = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(repr=False)


@dataclass(frozen=True)
class TrustSet:
    sources: tuple[str, ...]
    certificates: tuple[x509.Certificate, ...] = field(repr=False)

    def __add__(self, other: TrustSet) -> TrustSet:
        return TrustSet(self.sources + other.sources, self.certificates + other.certificates)


@dataclass(frozen=True)
class VerifyTarget:
    """One thing to verify: a name for the report, the URL to dial, who we are and whom we trust."""

    name: str
    url: str
    identity: ClientIdentity
    trust: TrustSet
    endpoint_source: str = ""  # where the URL came from, e.g. "sys_rest_message 'Acme'.rest_endpoint"
    # What would stop the instance from using mutual auth for the binding (its records as read); a str: why they
    # could not be read; None: not checked (no binding, or --endpoint given).
    instance: tuple[Issue, ...] | str | None = None


# --- client identity --------------------------------------------------------------------------------------------


def _resolve_secret(ref: Any, base_dir: Path, environ: Mapping[str, str] | None) -> SecretValue:
    value: SecretValue = ref.resolve(base_dir, dict(environ) if environ is not None else None)
    return value


def identity_from_key_store(
    specs: SpecSet,
    name: str,
    *,
    password: SecretValue | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientIdentity:
    """The key entry of the KeyStore spec ``name``. ``password`` overrides the spec's reference (file only)."""
    key_store: KeyStore = _find(specs.key_stores, name, KeyStore)
    origin = specs.origins[key_store.address]
    spec = key_store.spec
    if spec.file is not None:
        secret = password or _resolve_secret(spec.password, origin.base_dir, environ)
        try:
            data = read_file(spec.file, KEYSTORE)
        except UnreadableFile as exc:
            raise KeystoreError(f"{key_store.address}: {exc.message}") from None
        material = load_key_entry(data, secret)
        return ClientIdentity(key_store.address, material.alias, material.private_key, material.chain)
    build = spec.build
    assert build is not None
    key = _resolve_secret(build.key, origin.base_dir, environ)
    key_password = (
        _resolve_secret(build.key_password, origin.base_dir, environ) if build.key_password is not None else None
    )
    try:
        cert_pem = read_file(build.cert, CERTIFICATE)
        chain_pems = [read_file(p, CERTIFICATE) for p in build.chain]
    except UnreadableFile as exc:
        raise KeystoreError(f"{key_store.address}: {exc.message}") from None
    # The chain does not depend on the store password: assemble with a one-time one, exactly as apply does.
    one_time = SecretValue(secrets.token_urlsafe(24).encode(), "one-time password")
    data = assemble_keystore(
        key.reveal(), cert_pem, chain_pems, one_time, key_password=key_password, alias=build.alias, fmt=spec.format
    )
    material = load_key_entry(data, one_time)
    return ClientIdentity(key_store.address, material.alias, material.private_key, material.chain)


def identity_from_file(path: Path, password: SecretValue | None, *, alias: str | None = None) -> ClientIdentity:
    """The key entry of a JKS or PKCS12 file."""
    data = read_file(path, KEYSTORE)
    if detect_store_type(data) == "unknown":
        raise KeystoreError(f"{path} is not a JKS or PKCS12 keystore")
    if password is None:
        raise SecretError(
            f"the password of {path} is needed to read its key", hint="give --password-env VAR or --password-file PATH"
        )
    material = load_key_entry(data, password, alias=alias)
    return ClientIdentity(str(path), material.alias, material.private_key, material.chain)


# --- trust ----------------------------------------------------------------------------------------------------


def trust_from_specs(specs: SpecSet, names: Sequence[str] | None = None) -> TrustSet:
    """The active TrustStoreCerts of the specs (or only ``names``), as the instance's trust store holds them."""
    chosen = specs.trust_store_certs
    if names is not None:
        chosen = [_find(chosen, n, TrustStoreCert) for n in names]
    sources: list[str] = []
    certs: list[x509.Certificate] = []
    for cert in chosen:
        if not cert.spec.active and names is None:
            continue
        if cert.spec.file is not None:
            try:
                data = read_file(cert.spec.file, CERTIFICATE)
            except UnreadableFile as exc:
                raise KeystoreError(f"{cert.address}: {exc.message}") from None
        else:
            data = (cert.spec.pem or "").encode()
        certs.extend(load_certificates(data))
        sources.append(cert.address)
    return TrustSet(tuple(sources), tuple(certs))


def trust_from_file(path: Path) -> TrustSet:
    data = read_file(path, CERTIFICATE)
    return TrustSet((str(path),), tuple(load_certificates(data)))


# --- bindings and endpoints ----------------------------------------------------------------------------------------


def _find(items: Sequence[Any], name: str, model: type[AnyResource]) -> Any:
    for item in items:
        if item.name == name:
            return item
    known = ", ".join(sorted(i.name for i in items)) or "none"
    raise VerifyError(f"no {model.kind_name()} named '{name}' in the specs (known: {known})")


def binding_parts(specs: SpecSet, name: str) -> tuple[MessageBinding, ProtocolProfile, KeyStore]:
    binding: MessageBinding = _find(specs.message_bindings, name, MessageBinding)
    profile: ProtocolProfile = _find(specs.protocol_profiles, binding.spec.protocol_profile, ProtocolProfile)
    key_store: KeyStore = _find(specs.key_stores, profile.spec.key_store, KeyStore)
    return binding, profile, key_store


def https_url(raw: str, profile: ProtocolProfile | None = None) -> str:
    """The URL the instance dials: the profile's scheme (``mauth://``) or ``https://`` as ``https://``, with the
    profile's ``default_port`` when the URL names none."""
    parts = urlsplit(raw.strip())
    scheme = parts.scheme.lower()
    allowed = {"https"} | ({profile.name} if profile is not None else set())
    if scheme not in allowed:
        expected = " or ".join(f"{s}://" for s in sorted(allowed))
        raise VerifyError(f"endpoint '{raw}' does not start with {expected}")
    netloc = parts.netloc
    if profile is not None and parts.port is None and profile.spec.port != 443 and parts.hostname:
        netloc = f"{netloc}:{profile.spec.port}"
    return urlunsplit(("https", netloc, parts.path, parts.query, ""))


def _quote(value: str) -> str:
    return value.replace("^", "^^")  # encoded-query escaping of the separator


async def binding_endpoint(client: Instance, binding: MessageBinding) -> tuple[str, str]:
    """The endpoint the bound record calls, read from the instance, and where it was found."""
    target = TARGETS[binding.spec.message.type]
    name = binding.spec.message.name
    messages = await client.list(
        target.message, query=f"name={_quote(name)}", fields=["sys_id", "name", *_message_endpoint(target)]
    )
    if not messages:
        raise VerifyError(f"the {target.label} '{name}' does not exist on the instance")
    message = messages[0]
    endpoint = target.endpoint_field
    if endpoint is not None and endpoint in message and str(message.get(endpoint) or "").strip():
        return str(message[endpoint]), f"{target.message} '{name}'.{endpoint}"
    host = target.host_field
    if host is not None and str(message.get(host) or "").strip():
        return f"https://{str(message[host]).strip()}/", f"{target.message} '{name}'.{host}"
    functions: list[dict[str, Any]] = []
    if target.function is not None and target.parent_field is not None and endpoint is not None:
        functions = await client.list(
            target.function,
            query=f"{target.parent_field}={message['sys_id']}",
            fields=["sys_id", "function_name", endpoint],
        )
    wanted = binding.spec.functions
    if isinstance(wanted, list):
        functions = [f for f in functions if f.get("function_name") in wanted]
    for fn in sorted(functions, key=lambda f: str(f.get("function_name", ""))):
        url = str(fn.get(endpoint or "") or "").strip()
        if url:
            return url, f"{target.function} '{name}/{fn.get('function_name')}'.{endpoint}"
    raise VerifyError(
        f"the message '{name}' and its functions have no endpoint on the instance",
        hint="give one with --endpoint https://host[:port]/path",
    )


def _message_endpoint(target: BindingTarget) -> list[str]:
    # sys_soap_message has no endpoint column: SOAP endpoints live on the functions.
    fields = (target.endpoint_field, target.host_field) if target.message_endpoint else ()
    return [f for f in fields if f]


async def binding_on_instance(client: Instance, binding: MessageBinding, port: int) -> tuple[Issue, ...]:
    """What would stop the instance from using mutual auth for ``binding`` (whose profile has ``port``), from its
    records as the instance holds them now: the checks of a plan, and whether the binding is applied yet."""
    target = TARGETS[binding.spec.message.type]
    name = binding.spec.message.name
    # An HTTP connection's columns are known by their labels: the dictionary names them, its records are read whole.
    dictionary = await read_dictionary(client, target.tables()) if target.by_label else None
    everything = target.by_label
    rows = await client.list(
        target.message,
        query=f"name={_quote(name)}",
        fields=None if everything else list(target.message_columns(endpoint=False)),
    )
    if not rows:
        raise VerifyError(f"the {target.label} '{name}' does not exist on the instance")
    message = live_record(target.message, rows[0])
    functions: list[dict[str, Any]] = []
    if target.function is not None and target.parent_field is not None:
        functions = await client.list(
            target.function,
            query=f"{target.parent_field}={message.sys_id}",
            fields=list(target.function_columns(endpoint=False)),
        )
    profiles = await client.list(PROFILES, fields=["sys_id", "protocol"])
    names = {str(p.get("sys_id")): str(p.get("protocol") or "") for p in profiles}
    properties = await client.list(
        PROPERTIES_READ.table, query=PROPERTIES_READ.query, fields=list(PROPERTIES_READ.columns)
    )
    senders = [sender("message", message, names, dictionary)]
    for row in sorted(functions, key=lambda f: str(f.get("function_name", ""))):
        record = live_record(target.function or "", row)
        senders.append(sender(f"fn:{record.get('function_name')}", record, names, dictionary))
    bound = Bound(target.label, target.rules, binding.spec.functions, binding.spec.protocol_profile)
    shown = {str(p.get("name") or ""): str(p.get("value") or "") for p in properties}
    return (
        *binding_issues(bound, senders, check_written=True),
        *property_issues(binding.spec.protocol_profile, port, shown),
    )


def with_instance(report: VerifyReport, target: VerifyTarget) -> VerifyReport:
    """The report with the instance's stage first, when the binding's records were checked."""
    found = target.instance
    if found is None:
        return report
    if isinstance(found, str):
        stage = StageResult(StageName.INSTANCE, Status.UNKNOWN, f"not checked: {found}")
        return replace(report, stages=(stage, *report.stages))
    findings = tuple(
        Finding(
            f"instance-{issue.code}",
            Severity.FAIL if issue.severity == "error" else Severity.WARN,
            f"{issue.record}: {issue.message}",
            issue.fix,
            StageName.INSTANCE,
        )
        for issue in found
    )
    errors = [f for f in findings if f.severity is Severity.FAIL]
    if errors:
        status, summary = Status.FAIL, f"the instance would not use mutual auth: {errors[0].message}"
    elif findings:
        status, summary = Status.WARN, f"the instance would use mutual auth, with {plural(len(findings), 'warning')}"
    else:
        status, summary = Status.OK, "the instance would use mutual auth for this binding"
    stage = StageResult(StageName.INSTANCE, status, summary)
    return replace(report, stages=(stage, *report.stages), findings=(*findings, *report.findings))


# --- running ------------------------------------------------------------------------------------------------------


def run_target(target: VerifyTarget, **options: Any) -> VerifyReport:
    """``verify_endpoint`` for a resolved target, after what the instance's records say about it; ``options`` are
    its keyword options (timeout, ...). The handshake runs even when the instance would not use mutual auth: it
    still tells whether the partner accepts the keystore, so that the instance's fix is the only one left."""
    report = verify_endpoint(
        target.url,
        key=target.identity.key,
        chain=target.identity.chain,
        trust=target.trust.certificates,
        target=target.name,
        **options,
    )
    return with_instance(report, target)


async def run_targets(
    targets: Sequence[VerifyTarget], *, concurrency: int = 8, **options: Any
) -> list[VerifyReport | VerifyError]:
    """Verify several targets concurrently (each handshake in a worker thread), in the given order."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(target: VerifyTarget) -> VerifyReport | VerifyError:
        async with gate:
            try:
                return await asyncio.to_thread(run_target, target, **options)
            except VerifyError as exc:
                return exc

    return list(await asyncio.gather(*(one(t) for t in targets)))
