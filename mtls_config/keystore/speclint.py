"""Run the keystore and trust-certificate lint rules on every KeyStore and TrustStoreCert of a loaded SpecSet.

Secrets are resolved relative to each spec file. When one cannot be resolved (a CI job without the variable, a
developer without the secret file), the checks that do not need it still run and an info finding says what was
left out, so ``validate`` stays useful everywhere. Findings carry the spec location (path:line:col) as source.

Reads the files the specs name; otherwise pure. Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial

from mtls_config.errors import (
    KeystoreError,
    KeystorePasswordError,
    KeystoreRuleError,
    MtlsConfigError,
    SecretError,
    UnreadableFile,
)
from mtls_config.keystore.assemble import assemble_keystore
from mtls_config.keystore.certs import build_chain, load_certificates
from mtls_config.keystore.lint import (
    PASSWORD_RULE,
    Finding,
    Source,
    TrustFormat,
    check_store_password,
    lint_contents,
    lint_keystore,
    lint_trust_certs,
)
from mtls_config.keystore.store import KeystoreContents, KeystoreEntry
from mtls_config.secrets import SecretRef, SecretValue
from mtls_config.spec.inputs import RunInputs
from mtls_config.spec.loader import Origin, SpecSet
from mtls_config.spec.models import KeyStore, TrustStoreCert

# Stands in for an unresolvable store password so the keystore can still be built and checked in memory;
# the password itself is then the one thing left unchecked (and said so).
_PLACEHOLDER = SecretValue(b"mtls-config-lint-placeholder", "placeholder")


def lint_specs(
    specs: SpecSet,
    *,
    now: dt.datetime | None = None,
    environ: Mapping[str, str] | None = None,
    inputs: RunInputs | None = None,
) -> list[Finding]:
    """``inputs`` shares secrets and files with another stage of the same run (its environment is used)."""
    now = now or dt.datetime.now(dt.UTC)
    findings: list[Finding] = []
    seen = _Seen(inputs or RunInputs.of(environ))
    certs: list[tuple[TrustStoreCert, Origin]] = []
    for resource, origin in specs.placed():  # each with its origin, without looking it up by address
        if isinstance(resource, KeyStore):
            findings.extend(_lint_key_store(resource, origin, now, seen))
        elif isinstance(resource, TrustStoreCert):
            certs.append((resource, origin))

    items: list[tuple[Source, bytes]] = []
    formats: list[TrustFormat | None] = []
    windows: list[int] = []
    for cert, origin in certs:
        source: Source
        if cert.spec.file is not None:
            try:
                data = seen.inputs.file(cert.spec.file)[0]
            except UnreadableFile as exc:
                findings.append(Finding("T01", "error", origin.at("spec", "file"), None, exc.message, ""))
                continue
            source = partial(origin.at, "spec", "file")  # written only for a finding
        else:
            source = partial(origin.at, "spec", "pem")
            data = (cert.spec.pem or "").encode("utf-8")
        items.append((source, data))
        formats.append(cert.spec.format)
        windows.append(cert.spec.warn_days)
    findings.extend(lint_trust_certs(items, declared_format=formats, warn_days=windows, now=now))
    return findings


@dataclass
class _Seen:
    """Keystores this run already linted: many specs may name one keystore file (a stack of 1000 keystores
    sharing a JKS), and each lint would decrypt and check it again. Keyed by (content digest, password, format,
    warn days), the password by ``inputs.password_key`` and where it came from (which findings name), never by
    the password itself. Secrets and files are read through ``inputs``, shared with the desired state's build."""

    inputs: RunInputs = field(default_factory=RunInputs)
    findings: dict[tuple[bytes, tuple[str, str] | None, str, int], list[Finding]] = field(default_factory=dict)

    def key(
        self, digest: bytes, password: SecretValue | None, fmt: str, warn_days: int
    ) -> tuple[bytes, tuple[str, str] | None, str, int]:
        if password is None:
            return digest, None, fmt, warn_days
        return digest, (self.inputs.password_key(password), password.source), fmt, warn_days

    def resolve(self, ref: SecretRef, origin: Origin) -> tuple[SecretValue | None, MtlsConfigError | None]:
        """The secret, or None and why not."""
        try:
            return self.inputs.secret(ref, origin.base_dir), None
        except (SecretError, UnreadableFile) as exc:
            return None, exc


def _lint_key_store(
    key_store: KeyStore,
    origin: Origin,
    now: dt.datetime,
    seen: _Seen,
) -> list[Finding]:
    spec = key_store.spec
    password, why = seen.resolve(spec.password, origin)
    # K16 is about the spec's password itself: said once, at its field, whether or not the keystore can be read
    # or built (lint_keystore's own K16, at the file, is dropped below).
    where = partial(origin.at, "spec", "password")  # written only for a finding
    findings = check_store_password(password, where) if password is not None else []
    if spec.file is not None:
        try:
            data, digest = seen.inputs.file(spec.file)
        except UnreadableFile as exc:
            return [Finding("K01", "error", origin.at("spec", "file"), None, exc.message, "")]
        linted = seen.key(digest, password, spec.format, spec.warn_days)
        if linted in seen.findings:
            known = seen.findings[linted]
            source = origin.at("spec", "file") if known else ""
            found = [replace(f, source=source) for f in known]
        else:
            found = lint_keystore(
                data,
                password,
                declared_format=spec.format,
                warn_days=spec.warn_days,
                now=now,
                source=partial(origin.at, "spec", "file"),
            )
            seen.findings[linted] = found
        if password is None:
            # The file's lint says what it could not check and how a command line gives the password; here the
            # spec's reference gives it, so that is said once, at the reference, with how to resolve it.
            unchecked = [f for f in found if f.rule == "K02" and f.severity == "info"]
            found = [f for f in found if f not in unchecked]
            said = "; ".join(f.message for f in unchecked)
            findings.append(_unresolved("store password", why, origin.at("spec", "password"), unchecked=said))
        findings.extend(_without_password_rule(found))
        return findings

    build = spec.build
    assert build is not None
    source = origin.at("spec", "build")
    try:
        cert_pem = seen.inputs.file(build.cert)[0]
        chain_pems = [seen.inputs.file(p)[0] for p in build.chain]
    except UnreadableFile as exc:
        return [Finding("K13", "error", source, None, exc.message, "")]
    key, why_key = seen.resolve(build.key, origin)
    key_password: SecretValue | None = None
    if build.key_password is not None:
        key_password, why_kp = seen.resolve(build.key_password, origin)
        if key_password is None:
            key, why_key = None, why_kp
    if key is None:
        findings.append(_unresolved("private key", why_key, origin.at("spec", "build", "key")))
        findings.extend(_lint_certificates_only(cert_pem, chain_pems, source, spec.warn_days, now, build.alias))
        return findings
    if password is None:
        findings.append(_unresolved("password", why, origin.at("spec", "password")))
    try:
        data = assemble_keystore(
            key.reveal(),
            cert_pem,
            chain_pems,
            password or _PLACEHOLDER,
            key_password=key_password,
            alias=build.alias,
            fmt=spec.format,
        )
    except KeystoreRuleError as exc:
        return [*findings, Finding(exc.rule, "error", source, build.alias, exc.message, exc.hint or "")]
    except KeystorePasswordError as exc:
        fix = "check the keyPassword reference"
        return [*findings, Finding("K04", "error", source, build.alias, exc.message, fix)]
    except KeystoreError as exc:
        fix = exc.hint or "check the key and certificate files"
        return [*findings, Finding("K13", "error", source, build.alias, exc.message, fix)]
    found = lint_keystore(
        data,
        password or _PLACEHOLDER,
        declared_format=spec.format,
        warn_days=spec.warn_days,
        now=now,
        source=source,
    )
    findings.extend(_without_password_rule(found))
    return findings


def _without_password_rule(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule != PASSWORD_RULE]


def _unresolved(what: str, why: MtlsConfigError | None, source: str, *, unchecked: str = "") -> Finding:
    """The finding for a secret reference that did not resolve: what was checked without it (``unchecked``, when
    the lint of the keystore file said it, replaces the general words)."""
    if isinstance(why, UnreadableFile):
        # Not a secret missing here (a CI job without the secrets), but a reference no run can ever read.
        return Finding("K02", "error", source, None, f"{what} cannot be read: {why.message}",
                       "point the reference at a regular file (a FIFO, device or socket is never read)")  # fmt: skip
    checks = {
        "password": "the keystore was built with a placeholder password: all but the password itself was checked",
        "store password": unchecked or "only the checks that need no password were run on the keystore file",
    }.get(what, "only the certificates were checked (K08-K14), not the key (K06) nor the assembly")
    said = why.message if why is not None else "unknown reason"
    how = why.hint if why is not None and why.hint else "make the secret available"
    return Finding("K02", "info", source, None, f"{what} not resolved ({said}); {checks}",
                   f"{how}, to run every check")  # fmt: skip


def _lint_certificates_only(
    cert_pem: bytes, chain_pems: list[bytes], source: str, warn_days: int, now: dt.datetime, alias: str | None
) -> list[Finding]:
    try:
        leaf_candidates = load_certificates(cert_pem)
        pool = [c for blob in chain_pems for c in load_certificates(blob)]
    except KeystoreError as exc:
        return [Finding("K13", "error", source, alias, exc.message, "give PEM certificates")]
    chain, _unused = build_chain(leaf_candidates[0], leaf_candidates[1:] + pool)
    entry = KeystoreEntry(alias=alias or "(key entry)", kind="private_key", chain=tuple(chain))
    # As assemble will build it: each CA certificate of the chain also a trusted entry (K15 holds by construction).
    trusted = tuple(KeystoreEntry(f"ca-{i}", "trusted_cert", (ca,)) for i, ca in enumerate(chain[1:], start=1))
    contents = KeystoreContents("jks", False, (entry, *trusted), ("private key not resolved",))
    return lint_contents(contents, warn_days=warn_days, now=now, source=source)
