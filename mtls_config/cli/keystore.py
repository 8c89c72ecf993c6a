"""``mtls-config keystore ...`` and ``mtls-config cert ...``: the keytool steps of the procedure, done safely.

Thin commands: parse options -> call ``mtls_config.keystore`` -> print -> exit code. Passwords come only from
``--*-password-env VAR`` or ``--*-password-file PATH``, never from argv; private keys and keystores are written
with mode 0600 from the moment they exist.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from mtls_config.cli.console import EXIT_ERROR, print_json, report_errors, stderr, stdout
from mtls_config.cli.options import FormatOpt, JsonAlias, chosen_format
from mtls_config.errors import MtlsConfigError
from mtls_config.files import CERTIFICATE, KEY, KEYSTORE, FileKind, read_file
from mtls_config.keystore import (
    CertificateInfo,
    Finding,
    KeystoreContents,
    assemble_keystore,
    canonical_digest,
    certificate_info,
    export_certificate,
    has_errors,
    lint_keystore,
    load_certificates,
    new_key_and_csr,
    read_keystore,
    sort_findings,
)
from mtls_config.literal import visible
from mtls_config.secrets import SecretRef, SecretValue
from mtls_config.wording import plural

keystore_app = typer.Typer(
    name="keystore",
    help="Keystore chores of the mutual-TLS procedure: new key + CSR, assemble, inspect, export, lint.",
    no_args_is_help=True,
)
cert_app = typer.Typer(name="cert", help="Certificates (PEM/DER, bundles): inspect.", no_args_is_help=True)


class KeyTypeChoice(StrEnum):
    rsa2048 = "rsa2048"
    rsa3072 = "rsa3072"
    rsa4096 = "rsa4096"
    ec_p256 = "ec-p256"
    ec_p384 = "ec-p384"


class StoreFormat(StrEnum):
    jks = "jks"
    pkcs12 = "pkcs12"


class CertFormat(StrEnum):
    pem = "pem"
    der = "der"


PasswordEnv = Annotated[
    str | None,
    typer.Option("--password-env", metavar="VAR", help="Environment variable that holds the keystore password."),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option("--password-file", metavar="PATH", help="File that holds the keystore password (one line)."),
]
KeyPasswordEnv = Annotated[
    str | None,
    typer.Option("--key-password-env", metavar="VAR", help="Environment variable that holds the key's password."),
]
KeyPasswordFile = Annotated[
    Path | None,
    typer.Option("--key-password-file", metavar="PATH", help="File that holds the key's password (one line)."),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]


def resolve_secret(env: str | None, file: Path | None, what: str) -> SecretValue | None:
    """The secret named by an ``--*-env`` / ``--*-file`` pair, or None when neither was given."""
    if env is not None and file is not None:
        raise MtlsConfigError(f"give the {what} either from an environment variable or from a file, not both")
    try:
        if env is not None:
            return SecretRef(from_env=env).resolve()
        if file is not None:
            return SecretRef(from_file=str(file)).resolve()
    except ValidationError:
        raise MtlsConfigError(f"'{env}' is not an environment variable name") from None
    return None


def _require_secret(env: str | None, file: Path | None, what: str, flag: str) -> SecretValue:
    value = resolve_secret(env, file, what)
    if value is None:
        raise MtlsConfigError(f"the {what} is required", hint=f"use {flag}-env VAR or {flag}-file PATH")
    return value


def write_private_file(path: Path, data: bytes, *, force: bool) -> None:
    """Write a file only its owner can read: created 0600, never widened for a moment."""
    if path.exists():
        if not force:
            raise MtlsConfigError(f"{path} exists already", hint="use --force to replace it")
        path.unlink()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise MtlsConfigError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _refuse_existing(*paths: Path, force: bool) -> None:
    for path in paths:
        if path.exists() and not force:
            raise MtlsConfigError(f"{path} exists already; nothing was written", hint="use --force to replace it")


def write_public_file(path: Path, data: bytes, *, force: bool) -> None:
    if path.exists() and not force:
        raise MtlsConfigError(f"{path} exists already", hint="use --force to replace it")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise MtlsConfigError(f"cannot write {path}: {exc.strerror}") from None


def read_input(path: Path, kind: FileKind) -> bytes:
    """A file named on the command line: a regular file, at most ``kind``'s cap (``UnreadableFile`` otherwise)."""
    return read_file(path, kind)


def _say(line: str) -> None:
    """One line of output; what it quotes from a keystore or certificate is shown literally and visibly."""
    stdout().print(visible(line))


@keystore_app.command("new")
@report_errors
def new(
    subject: Annotated[
        str,
        typer.Option(
            "--subject", metavar="DN", help='Distinguished name, e.g. "CN=client.example.com,O=Example,C=US".'
        ),
    ],
    key_out: Annotated[
        Path, typer.Option("--key-out", metavar="FILE", help="Where to write the private key (PEM, mode 0600).")
    ],
    csr_out: Annotated[Path, typer.Option("--csr-out", metavar="FILE", help="Where to write the CSR (PEM).")],
    san: Annotated[
        list[str] | None,
        typer.Option(
            "--san", metavar="TYPE:VALUE", help="Subject alternative name: DNS:host, IP:addr, email:x, URI:u."
        ),
    ] = None,
    key_type: Annotated[
        KeyTypeChoice, typer.Option("--key-type", metavar="|".join(KeyTypeChoice), help="Key algorithm and size.")
    ] = KeyTypeChoice.rsa2048,
    key_password_env: KeyPasswordEnv = None,
    key_password_file: KeyPasswordFile = None,
    force: ForceOption = False,
) -> None:
    """Make a private key and a CSR asking for a client certificate (clientAuth), steps A1-A2.

    Example: mtls-config keystore new --subject "CN=instance.example.com,O=Example,C=US" --key-out client.key --csr-out client.csr
    """
    key_password = resolve_secret(key_password_env, key_password_file, "key password")
    _refuse_existing(key_out, csr_out, force=force)  # both checked first: never a key without its CSR
    key_pem, csr_pem = new_key_and_csr(subject, san or [], key_type.value, key_password)
    write_private_file(key_out, key_pem, force=force)
    write_public_file(csr_out, csr_pem, force=force)
    protection = "encrypted" if key_password is not None else "not encrypted: keep it in a secret store"
    _say(f"wrote {key_out} (private key {key_type.value}, mode 0600, {protection})")
    _say(f"wrote {csr_out} (CSR for {subject}, clientAuth)")
    _say(f"next: have the CA sign {csr_out}, then: mtls-config keystore assemble --key {key_out} --cert SIGNED.pem "
         "--chain CA.pem --out client.jks --password-env VAR")  # fmt: skip


@keystore_app.command("assemble")
@report_errors
def assemble(
    key: Annotated[Path, typer.Option("--key", metavar="FILE", help="The private key (PEM).")],
    cert: Annotated[
        Path, typer.Option("--cert", metavar="FILE", help="The CA-signed certificate (PEM; may include the chain).")
    ],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="The keystore to write (mode 0600).")],
    chain: Annotated[
        list[Path] | None,
        typer.Option("--chain", metavar="FILE", help="CA certificate files (PEM, any order, repeatable)."),
    ] = None,
    fmt: Annotated[
        StoreFormat, typer.Option("--format", metavar="|".join(StoreFormat), help="Keystore type.")
    ] = StoreFormat.jks,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    key_password_env: KeyPasswordEnv = None,
    key_password_file: KeyPasswordFile = None,
    alias: Annotated[
        str | None, typer.Option("--alias", metavar="ALIAS", help="Alias of the key entry (lower-case).")
    ] = None,
    warn_days: Annotated[
        int, typer.Option("--warn-days", metavar="DAYS", help="Warn when a certificate expires sooner.")
    ] = 30,
    force: ForceOption = False,
) -> None:
    """Build a keystore from key + signed certificate + CA chain, ordered and checked, deterministically
    (steps A3-A4). The key password equals the store password, as the instance needs.

    Example: mtls-config keystore assemble --key client.key --cert signed.pem --chain ca.pem --out client.jks --password-env KS_PASSWORD
    """
    password = _require_secret(password_env, password_file, "keystore password", "--password")
    key_password = resolve_secret(key_password_env, key_password_file, "key password")
    # Key material: held as a secret, so that no message can ever show it.
    key_pem = SecretValue(read_input(key, KEY), f"file:{key}")
    chain_pems = [read_input(p, CERTIFICATE) for p in chain or []]
    data = assemble_keystore(
        key_pem.reveal(),
        read_input(cert, CERTIFICATE),
        chain_pems,
        password,
        key_password=key_password,
        alias=alias,
        fmt=fmt.value,
    )
    findings = lint_keystore(data, password, declared_format=fmt.value, warn_days=warn_days, source=str(out))
    if has_errors(findings):
        # a keystore the instance could not use is not written at all
        _print_findings([f for f in findings if f.severity != "info"])
        raise MtlsConfigError(f"{out} was not written: the assembled keystore fails the lint rules above")
    write_private_file(out, data, force=force)
    contents = read_keystore(data, password)
    _say(f"wrote {out} ({fmt.value.upper()}, mode 0600)")
    for entry in contents.entries:
        kind = "PrivateKeyEntry" if entry.kind == "private_key" else "TrustedCertEntry"
        detail = f", chain of {len(entry.chain)}" if entry.kind == "private_key" else ""
        leaf = entry.chain[0].subject.rfc4514_string() if entry.chain else "?"
        _say(f"  {entry.alias}: {kind}{detail} ({leaf})")
    _say(f"  canonical: {canonical_digest(contents)}")
    _print_findings([f for f in findings if f.severity != "info"])


def _entry_json(contents: KeystoreContents) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in contents.entries:
        item: dict[str, Any] = {"alias": entry.alias, "kind": entry.kind}
        if entry.kind == "private_key":
            item.update(
                key_decrypted=entry.key_decrypted,
                key_algorithm=entry.key_algorithm,
                key_size=entry.key_size,
                key_spki_sha256=entry.key_spki_sha256,
            )
        item["chain"] = [certificate_info(c).to_json() for c in entry.chain]
        item["stored_encodings"] = [s.encoding for s in entry.stored]
        out.append(item)
    return out


def _print_cert(info: CertificateInfo, indent: str) -> None:
    key = f"{info.key_algorithm} {info.key_size or ''}".strip() + (f" ({info.key_curve})" if info.key_curve else "")
    eku = ", ".join(info.extended_key_usage) if info.extended_key_usage is not None else "(none: any purpose)"
    flags = [f for f, on in (("CA", info.is_ca), ("self-signed", info.self_signed)) if on]
    _say(f"{indent}subject:  {info.subject}" + (f"  [{', '.join(flags)}]" if flags else ""))
    _say(f"{indent}issuer:   {info.issuer}")
    marker = "" if info.serial_positive else " (not positive: RFC 5280 forbids it)"
    _say(f"{indent}serial:   {info.serial}{marker}")
    _say(f"{indent}valid:    {info.not_before:%Y-%m-%d %H:%M} .. {info.not_after:%Y-%m-%d %H:%M} UTC")
    _say(f"{indent}sha256:   {info.sha256}")
    _say(f"{indent}key:      {key}; signature {info.signature_algorithm}")
    _say(f"{indent}EKU:      {eku}")
    if info.subject_alt_names:
        _say(f"{indent}SAN:      {', '.join(info.subject_alt_names)}")


@keystore_app.command("inspect")
@report_errors
def inspect(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The keystore (JKS, PKCS12, JCEKS).")],
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    output_format: FormatOpt = "text",
    json_alias: JsonAlias = False,
) -> None:
    """Show a keystore's type, entries and chains. Without a password, JKS still lists everything; what could
    not be checked is said.

    Example: mtls-config keystore inspect client.jks --password-env KS_PASSWORD
    """
    password = resolve_secret(password_env, password_file, "keystore password")
    contents = read_keystore(read_input(file, KEYSTORE), password)
    if chosen_format(output_format, json_alias) == "json":
        print_json(
            {
                "file": str(file),
                "store_type": contents.store_type,
                "integrity_verified": contents.integrity_verified,
                "entries": _entry_json(contents),
                "unchecked": list(contents.unchecked),
                "canonical_digest": canonical_digest(contents),
            }
        )
        return
    integrity = "verified" if contents.integrity_verified else "NOT verified"
    _say(
        f"{file}: {contents.store_type.upper()}, integrity {integrity}, {plural(len(contents.entries), 'entry', 'entries')}"
    )
    for entry in contents.entries:
        if entry.kind == "private_key":
            if entry.key_algorithm:
                key = f"key {entry.key_algorithm} {entry.key_size}, decrypts with the store password"
            else:
                key = "key not decrypted"
            _say(f"- {entry.alias}: PrivateKeyEntry, chain of {len(entry.chain)}, {key}")
        else:
            _say(f"- {entry.alias}: {'TrustedCertEntry' if entry.kind == 'trusted_cert' else 'SecretKeyEntry'}")
        for index, cert in enumerate(entry.chain):
            _say(f"  [{index}]")
            _print_cert(certificate_info(cert), "    ")
    if contents.unchecked:
        _say("not checked:")
        for note in contents.unchecked:
            _say(f"  - {note}")
    _say(f"canonical: {canonical_digest(contents)}")


@keystore_app.command("export-cert")
@report_errors
def export_cert(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The keystore.")],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="Where to write the certificate.")],
    fmt: Annotated[
        CertFormat, typer.Option("--format", metavar="|".join(CertFormat), help="pem or der.")
    ] = CertFormat.pem,
    alias: Annotated[
        str | None, typer.Option("--alias", metavar="ALIAS", help="Entry to export (default: the key entry).")
    ] = None,
    with_chain: Annotated[bool, typer.Option("--chain", help="PEM only: append the CA certificates.")] = False,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    force: ForceOption = False,
) -> None:
    """Write the public certificate to send to the partner (step D).

    Example: mtls-config keystore export-cert client.jks --format pem --out client-cert.pem
    """
    password = resolve_secret(password_env, password_file, "keystore password")
    data = export_certificate(
        read_input(file, KEYSTORE), password=password, alias=alias, fmt=fmt.value, include_chain=with_chain
    )
    write_public_file(out, data, force=force)
    first = load_certificates(data)[0]
    _say(
        f"wrote {out} ({fmt.value.upper()}, {first.subject.rfc4514_string()}, sha256 {certificate_info(first).sha256})"
    )


def _print_findings(findings: list[Finding]) -> None:
    for finding in sort_findings(findings):
        _say(str(finding))
        if finding.fix:
            _say(f"    fix: {finding.fix}")


def print_findings_summary(findings: list[Finding]) -> None:
    """Findings one per line (with their fix), then a count."""
    _print_findings(findings)
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    _say(f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}")


def _lint_format(given: str) -> str:
    """``--format`` of 'keystore lint': text or json. It used to name the declared keystore type, which is
    ``--store-type`` now; ``--format jks|pkcs12`` is still taken for that (with a note, in the command), so that
    old scripts keep working. Checked as the option is parsed, like any other choice."""
    if given not in ("text", "json", *StoreFormat.__members__):
        raise typer.BadParameter(f"'{given}' is not one of text, json", param_hint="--format")
    return given


@keystore_app.command("lint")
@report_errors
def lint(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Keystore files.")],
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    store_type: Annotated[
        StoreFormat | None,
        typer.Option("--store-type", metavar="|".join(StoreFormat), help="The declared type (K01 flags a mismatch)."),
    ] = None,
    warn_days: Annotated[
        int, typer.Option("--warn-days", metavar="DAYS", help="Warn when a certificate expires sooner.")
    ] = 30,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="text|json",
            help="text, or json (for scripts). (The declared keystore type, once --format jks|pkcs12, is "
            "--store-type.)",
            callback=_lint_format,
        ),
    ] = "text",
    json_alias: JsonAlias = False,
) -> None:
    """Check keystores for the mistakes of the keytool procedure (rules K01-K16). Exit 1 on any error.

    Example: mtls-config keystore lint client.jks --store-type jks --password-env KS_PASSWORD
    """
    fmt = output_format
    if fmt in StoreFormat.__members__:
        if store_type is not None:
            raise typer.BadParameter(
                f"give the keystore type once, as --store-type {store_type}", param_hint="--format"
            )
        stderr().print(f"note: --format {fmt} is --store-type {fmt} now (--format is text or json)", markup=False)
        store_type, fmt = StoreFormat(fmt), "text"
    password = resolve_secret(password_env, password_file, "keystore password")
    findings: list[Finding] = []
    for file in files:
        findings.extend(
            lint_keystore(
                read_input(file, KEYSTORE),
                password,
                declared_format=store_type.value if store_type is not None else None,
                warn_days=warn_days,
                source=str(file),
            )
        )
    findings = sort_findings(findings)
    if chosen_format(fmt, json_alias) == "json":
        print_json(
            {
                "findings": [f.to_json() for f in findings],
                "errors": sum(f.severity == "error" for f in findings),
                "warnings": sum(f.severity == "warning" for f in findings),
            }
        )
    else:
        print_findings_summary(findings)
    if has_errors(findings):
        raise typer.Exit(EXIT_ERROR)


@cert_app.command("inspect")
@report_errors
def cert_inspect(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A certificate or bundle, PEM or DER.")],
    output_format: FormatOpt = "text",
    json_alias: JsonAlias = False,
) -> None:
    """Show the certificates in a PEM/DER file (a partner's certificate or bundle, step E).

    Example: mtls-config cert inspect partner.pem
    """
    infos = [certificate_info(c) for c in load_certificates(read_input(file, CERTIFICATE))]
    if chosen_format(output_format, json_alias) == "json":
        print_json({"file": str(file), "certificates": [i.to_json() for i in infos]})
        return
    _say(f"{file}: {len(infos)} certificate{'s' if len(infos) != 1 else ''}")
    for index, info in enumerate(infos):
        _say(f"[{index}]")
        _print_cert(info, "  ")


def register(app: typer.Typer) -> None:
    app.add_typer(keystore_app)
    app.add_typer(cert_app)
