"""Lint rules for client keystores (K01-K16) and trust store certificates (T01-T03).

Each rule catches a mistake people make with the keytool procedure before it reaches the instance; each finding
names the rule, the file (or spec location) and alias, and says in one line how to fix it. Errors block an apply,
warnings do not, infos say what could not be checked.

Findings never quote a password or key material: they name where the password came from, at most.
Pure: bytes in, values out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from mtls_config.errors import KeystoreError, KeystorePasswordError
from mtls_config.keystore.assemble import alias_for
from mtls_config.keystore.certs import (
    CheckedCertificate,
    cert_spki_sha256,
    chain_break,
    checked_certificates,
    describe_certificate_key,
    extended_key_usages,
    is_self_signed,
    issued_by,
    looks_like_pem,
    not_after,
    not_before,
    serial_number_hex,
    serial_number_is_positive,
    short_name,
)
from mtls_config.keystore.store import (
    DeclaredFormat,
    KeystoreContents,
    KeystoreEntry,
    describe_unknown,
    detect_store_type,
    read_keystore,
)
from mtls_config.secrets import SecretValue
from mtls_config.wording import plural

Severity = Literal["error", "warning", "info"]
TrustFormat = Literal["pem", "der"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
STRONG_CURVES = frozenset({"secp256r1", "secp384r1"})
# keytool refuses a shorter store or key password: "Keystore password must be at least 6 characters".
MIN_PASSWORD_CHARS = 6
PASSWORD_RULE = "K16"


@dataclass(frozen=True)
class Finding:
    rule: str  # K01..K16, T01..T03
    severity: Severity
    source: str  # file path or spec location (path:line:col)
    alias: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        alias = f" [{self.alias}]" if self.alias else ""
        return f"{where}{self.severity} {self.rule}{alias}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "source": self.source,
            "alias": self.alias,
            "message": self.message,
            "fix": self.fix,
        }


def has_errors(findings: Sequence[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.source, SEVERITY_ORDER[f.severity], f.rule, f.alias or ""))


# Where a finding points: the text, or a function that says it, asked only when a finding is made (a plan lints
# thousands of specs that have nothing to say, and a spec location takes a lookup of its field's line to write).
Source = str | Callable[[], str]


class _Collector:
    def __init__(self, source: Source) -> None:
        self._source = source
        self.findings: list[Finding] = []

    @property
    def source(self) -> str:
        if not isinstance(self._source, str):
            self._source = self._source()
        return self._source

    def add(self, rule: str, severity: Severity, message: str, fix: str, alias: str | None = None) -> None:
        self.findings.append(Finding(rule, severity, self.source, alias, message, fix))


def _days(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def lint_keystore(
    data: bytes,
    password: SecretValue | None,
    *,
    declared_format: DeclaredFormat | None = None,
    warn_days: int = 30,
    now: dt.datetime | None = None,
    source: Source = "",
) -> list[Finding]:
    """Run K01-K16 on a keystore file. Without a password, the checks that need it are reported as infos."""
    now = now or dt.datetime.now(dt.UTC)
    out = _Collector(source)
    store_type = detect_store_type(data)
    if store_type == "unknown":
        out.add("K01", "error", describe_unknown(data), "point at the keystore file (JKS), e.g. one written by "
                "'mtls-config keystore assemble'")  # fmt: skip
        return out.findings
    if declared_format == "jks" and store_type != "jks":
        out.add(
            "K01",
            "error",
            f"keystore is {store_type.upper()}, not JKS (keytool 9+ writes PKCS12 unless given -storetype JKS)",
            "rebuild it with 'mtls-config keystore assemble --format jks' (or keytool -storetype JKS), "
            "or declare format: pkcs12",
        )
    elif declared_format == "pkcs12" and store_type != "pkcs12":
        out.add("K01", "error", f"keystore is {store_type.upper()}, but format pkcs12 is declared",
                "declare format: jks, or rebuild with --format pkcs12")  # fmt: skip
    elif declared_format is None and store_type == "jceks":
        out.add("K01", "error", "keystore is JCEKS; the instance reads JKS or PKCS12",
                "rebuild it with 'mtls-config keystore assemble --format jks'")  # fmt: skip
    if password is not None:
        out.findings.extend(check_store_password(password, source))

    contents = _open(data, password, store_type, out)
    if contents is None:
        return out.findings
    _lint_contents(contents, out, warn_days=warn_days, now=now)
    return out.findings


def check_store_password(password: SecretValue, source: Source) -> list[Finding]:
    """K16: a store password shorter than keytool allows. Counted as Java counts it (UTF-16 code units); the
    message says neither the password nor its length. A password that is not UTF-8 text is K02's business."""
    try:
        text = password.reveal_text()
    except UnicodeDecodeError:
        return []
    if len(text.encode("utf-16-le")) // 2 >= MIN_PASSWORD_CHARS:
        return []
    out = _Collector(source)
    out.add(PASSWORD_RULE, "error", f"the keystore password ({password.source}) is shorter than six characters: "
            "keytool, which the knowledge base's procedure (KB0696002) makes the keystore with, refuses such a "
            "password ('Keystore password must be at least 6 characters')", "choose a password of at least six "
            "characters, re-assemble the keystore with it ('mtls-config keystore assemble'), and point the "
            "password reference at the new one")  # fmt: skip
    return out.findings


def _open(data: bytes, password: SecretValue | None, store_type: str, out: _Collector) -> KeystoreContents | None:
    if password is not None:
        try:
            return read_keystore(data, password)
        except KeystorePasswordError:
            out.add(
                "K02",
                "error",
                f"keystore password ({password.source}) is incorrect, or the file was altered (integrity check failed)",
                "check that the password reference holds this keystore's password, or rebuild the keystore",
            )
        except KeystoreError as exc:
            out.add("K01", "error", f"cannot read the keystore: {exc.message}", "rebuild the keystore")
            return None
        if store_type == "pkcs12":
            return None
    elif store_type == "pkcs12":
        out.add("K02", "info", "not checked: a PKCS12 keystore cannot be opened without its password",
                "give the password (--password-env VAR) to run every check")  # fmt: skip
        return None
    try:
        contents = read_keystore(data, None)
    except KeystoreError as exc:
        out.add("K01", "error", f"cannot read the keystore: {exc.message}", "rebuild the keystore")
        return None
    if password is None:
        out.add(
            "K02",
            "info",
            "not checked without the password: store integrity (K02), key password (K04), key matches leaf (K06)",
            "give the password (--password-env VAR) to run every check",
        )
    return contents


def lint_contents(
    contents: KeystoreContents, *, warn_days: int = 30, now: dt.datetime | None = None, source: str = ""
) -> list[Finding]:
    """K03-K15 on keystore contents already read (K01, K02 and K16 are about the file and its password and are
    not run here)."""
    out = _Collector(source)
    _lint_contents(contents, out, warn_days=warn_days, now=now or dt.datetime.now(dt.UTC))
    return out.findings


def _lint_contents(contents: KeystoreContents, out: _Collector, *, warn_days: int, now: dt.datetime) -> None:
    seen_lower: dict[str, str] = {}
    for entry in contents.entries:
        # Java lower-cases PKCS12 aliases as it loads them; a JKS keeps them as written and looks up in lower case.
        if entry.alias != entry.alias.lower() and contents.store_type != "pkcs12":
            out.add("K05", "error", f"alias '{entry.alias}' is not lower-case: Java cannot look it up",
                    f"rename it to '{entry.alias.lower()}' (re-assemble, or keytool -changealias)", entry.alias)  # fmt: skip
        other = seen_lower.get(entry.alias.lower())
        if other is not None:
            out.add("K05", "error", f"aliases '{other}' and '{entry.alias}' differ only in case",
                    "keep one of them", entry.alias)  # fmt: skip
        seen_lower.setdefault(entry.alias.lower(), entry.alias)
        _lint_stored(entry, out)
        _lint_serials(entry, out)

    keys = contents.private_key_entries
    if not keys:
        out.add("K03", "error", "no private-key entry: the instance would have no key to present",
                "assemble the keystore from your key and its signed certificate")  # fmt: skip
    elif len(keys) > 1:
        names = ", ".join(e.alias for e in keys)
        out.add("K03", "error", f"{plural(len(keys), 'private-key entry', 'private-key entries')} ({names}); the instance may present any of them",
                "keep one key entry per keystore (keytool -delete -alias NAME)")  # fmt: skip
    for entry in keys:
        _lint_key_entry(entry, contents, out, warn_days=warn_days, now=now)
    for entry in contents.trusted_entries:
        for cert in entry.chain:
            if not_after(cert) < now:
                out.add("K11", "warning", f"trusted certificate {short_name(cert)} expired on "
                        f"{not_after(cert):%Y-%m-%d}", "remove it or replace it with the current one", entry.alias)  # fmt: skip


def _lint_stored(entry: KeystoreEntry, out: _Collector) -> None:
    for index, stored in enumerate(entry.stored):
        where = f"certificate {index}" if entry.kind == "private_key" else "the certificate"
        if stored.encoding == "pem":
            out.add("K13", "error", f"{where} of '{entry.alias}' is PEM text stored where DER is expected",
                    "re-assemble the keystore from the PEM files ('mtls-config keystore assemble')", entry.alias)  # fmt: skip
        elif stored.encoding == "invalid":
            out.add("K13", "error", f"{where} of '{entry.alias}' is not an X.509 certificate",
                    "re-assemble the keystore from valid certificates", entry.alias)  # fmt: skip


def _lint_serials(entry: KeystoreEntry, out: _Collector) -> None:
    for index, cert in enumerate(entry.chain):
        if entry.kind != "private_key":
            what = f"trusted certificate {short_name(cert)}"
        else:
            what = "the certificate" if index == 0 else f"CA certificate {short_name(cert)}"
        _check_serial(cert, what, "K14", out, entry.alias)


def _check_serial(cert: x509.Certificate, what: str, rule: str, out: _Collector, alias: str | None = None) -> None:
    _check_serial_number(cert.serial_number, what, rule, out, alias)


def _check_serial_number(serial: int, what: str, rule: str, out: _Collector, alias: str | None = None) -> None:
    """A negative or zero serial: a warning, not an error, because Java and the instance accept it today."""
    if serial_number_is_positive(serial):
        return
    out.add(rule, "warning", f"{what} has serial number {serial_number_hex(serial)}, which is not positive: RFC 5280 forbids "
            "it; Java and the instance accept it today, stricter libraries may not (a future release of Python's "
            "cryptography refuses it)", "ask the CA to reissue it with a positive serial", alias)  # fmt: skip


def _lint_key_entry(
    entry: KeystoreEntry, contents: KeystoreContents, out: _Collector, *, warn_days: int, now: dt.datetime
) -> None:
    alias = entry.alias
    if contents.integrity_verified and not entry.key_decrypted:
        out.add("K04", "error", "the key password differs from the store password; the instance cannot use "
                "the key (KB0824494)", f"set the key password to the store password (keytool -keypasswd -alias "
                f"{alias}) or re-assemble the keystore", alias)  # fmt: skip
    if not entry.chain:
        out.add("K13", "error", "the key entry holds no readable certificate",
                "re-assemble the keystore from the key and its signed certificate", alias)  # fmt: skip
        return
    leaf = entry.chain[0]
    if entry.key_spki_sha256 is not None and entry.key_spki_sha256 != cert_spki_sha256(leaf):
        out.add("K06", "error", f"the private key does not match the leaf certificate {short_name(leaf)}",
                "assemble the keystore with the certificate issued for this key", alias)  # fmt: skip

    if is_self_signed(leaf):
        leaf_spki = cert_spki_sha256(leaf)
        reply = next(
            (e for e in contents.trusted_entries if e.chain and cert_spki_sha256(e.chain[0]) == leaf_spki),
            None,
        )
        if reply is not None:
            out.add("K07", "error", f"the key entry still holds its self-signed certificate; the CA reply was "
                    f"imported under alias '{reply.alias}'", f"import the reply under alias '{alias}' "
                    f"(keytool -importcert -alias {alias}) and delete '{reply.alias}', or re-assemble", alias)  # fmt: skip
        elif len(entry.chain) == 1:
            out.add("K07", "warning", f"the leaf {short_name(leaf)} is self-signed: the partner must trust this "
                    "exact certificate", "have it signed by a CA the partner trusts, or send the partner this "
                    "certificate (mtls-config keystore export-cert)", alias)  # fmt: skip

    broken = chain_break(entry.chain)
    if broken is not None:
        a, b = entry.chain[broken], entry.chain[broken + 1]
        out.add("K08", "error", f"chain out of order or broken at index {broken}: {short_name(a)} is not issued "
                f"by {short_name(b)}", "re-assemble the keystore: 'mtls-config keystore assemble' orders the "
                "chain leaf -> root", alias)  # fmt: skip
    elif not is_self_signed(entry.chain[-1]):
        last = entry.chain[-1]
        holder = next((e for e in contents.trusted_entries if e.chain and issued_by(last, e.chain[0])), None)
        why = (
            f"; '{holder.alias}' holds its issuer only as a trusted entry, which Java does not send"
            if holder is not None
            # K15 speaks of the CA certificates the chain holds; the ones it lacks are said missing here, once.
            else "; no entry of the keystore holds that issuer: it is missing from the chain Java sends and from "
            "the trusted entries (the -trustcacerts step of KB0696002)"
        )
        out.add("K09", "error", f"the chain stops at {short_name(last)} (issuer {last.issuer.rfc4514_string()})"
                f"{why}", "re-assemble with the CA certificates up to the root: 'mtls-config keystore assemble' "
                "puts them into the key entry's chain and adds them as trusted entries", alias)  # fmt: skip
    _lint_trusted_cas(entry, contents, out)

    _lint_eku(entry, out, broken is None, now)
    _lint_validity(entry, out, warn_days, now)
    _lint_algorithms(entry, out)


def _lint_trusted_cas(entry: KeystoreEntry, contents: KeystoreContents, out: _Collector) -> None:
    """K15: the CA certificates of the key entry's chain must also be trusted entries, as the KB's ``keytool
    -importcert -trustcacerts`` step leaves them (KB0696002: "If you get error 'unsupported protocol' ... ensure
    that you used the -trustcacerts import option in step A and that the resulting alias is of type
    'TrustedCertEntry'"). One of them as a trusted entry is enough: the KB imports "a root or intermediate
    certificates", and a reply imported with its chain after the root alone is the procedure done right. A chain
    that holds no CA certificate is K07's (self-signed) or K09's (stops short) business, not this rule's."""
    cas = entry.chain[1:]
    if not cas:
        return
    if not contents.trusted_entries_known:
        out.add("K15", "info", "not checked: this PKCS12 file's trust attributes are not readable (legacy "
                "encryption), so whether Java lists its CA certificates as trusted entries is unknown",
                "re-assemble it ('mtls-config keystore assemble --format pkcs12'), or check with keytool -list",
                entry.alias)  # fmt: skip
        return
    trusted = {(c.subject, cert_spki_sha256(c)) for e in contents.trusted_entries for c in e.chain}
    if any((ca.subject, cert_spki_sha256(ca)) in trusted for ca in cas):
        return
    names = ", ".join(short_name(ca) for ca in cas)
    where = (
        " (no certificate in this PKCS12 file carries Java's trust attribute, so keytool lists none: openssl "
        "and cryptography write CA certificates without it)"
        if contents.store_type == "pkcs12"
        else ""
    )
    top = alias_for(cas[-1], "ca")
    out.add("K15", "error", f"the CA certificates of the key entry's chain ({names}) are not trusted entries"
            f"{where}: the knowledge base (KB0696002) says the instance then fails the call with 'unsupported "
            "protocol'; its procedure imports them with keytool -importcert -trustcacerts as trustedCertEntry",
            "re-assemble with 'mtls-config keystore assemble' (it adds each CA certificate as a trusted entry), "
            f"or import one: keytool -importcert -trustcacerts -alias {top} -file {top}.pem -keystore FILE",
            entry.alias)  # fmt: skip


def _lint_eku(entry: KeystoreEntry, out: _Collector, chain_links: bool, now: dt.datetime) -> None:
    leaf = entry.chain[0]
    ekus = extended_key_usages(leaf)
    if ekus is not None and "clientAuth" not in ekus and "anyExtendedKeyUsage" not in ekus:
        out.add("K10", "error", f"the certificate lacks the clientAuth EKU (it has: {', '.join(ekus) or 'none'}); "
                "partners reject it as 'unsupported certificate'", "ask the CA for a client certificate "
                "(clientAuth); 'mtls-config keystore new' puts it in the CSR", entry.alias)  # fmt: skip
        return
    if ekus is None:
        out.add("K10", "info", "the certificate has no extended key usage (any purpose): Java and OpenSSL accept "
                "it, some partners want clientAuth", "ask the CA for the clientAuth EKU at the next renewal",
                entry.alias)  # fmt: skip
    root = entry.chain[-1]
    if not chain_links or not is_self_signed(root) or len(entry.chain) < 2:
        return
    start = max(not_before(c) for c in entry.chain)
    end = min(not_after(c) for c in entry.chain)
    if start >= end:
        return
    # Validate at a time inside every certificate's window: expiry is K11's business, not this one's.
    at = min(max(now, start + dt.timedelta(seconds=1)), end - dt.timedelta(seconds=1))
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(at)
        .max_chain_depth(max(len(entry.chain), 2))
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, list(entry.chain[1:-1]))
    except VerificationError as exc:
        fix = (
            "ask the CA to reissue the certificate with a positive serial (K14)"
            if "serial number" in str(exc)
            else "check the CA certificates' basicConstraints/keyUsage with the CA"
        )
        out.add("K10", "warning", f"strict (web PKI) path validation of the chain fails: {exc}; a strict partner "
                "may reject it", fix, entry.alias)  # fmt: skip


def _lint_validity(entry: KeystoreEntry, out: _Collector, warn_days: int, now: dt.datetime) -> None:
    for index, cert in enumerate(entry.chain):
        start, end = not_before(cert), not_after(cert)
        what = "the certificate" if index == 0 else f"CA certificate {short_name(cert)}"
        renew = "renew it (new CSR: 'mtls-config keystore new') and re-assemble" if index == 0 else (
            "get the CA's current certificate and re-assemble")  # fmt: skip
        if end < now:
            out.add("K11", "error", f"{what} expired on {end:%Y-%m-%d}", renew, entry.alias)
        elif start > now:
            out.add("K11", "error", f"{what} is not valid before {start:%Y-%m-%d %H:%M} UTC",
                    "check the clock, or wait until it is valid", entry.alias)  # fmt: skip
        elif end - now < dt.timedelta(days=warn_days):
            out.add("K11", "warning", f"{what} expires in {_days(end - now)} days ({end:%Y-%m-%d})", renew,
                    entry.alias)  # fmt: skip
        elif index == 0 and end - now < (end - start) / 3:
            out.add("K11", "info", f"{what} is past two thirds of its lifetime (expires {end:%Y-%m-%d})",
                    "plan the renewal", entry.alias)  # fmt: skip


def _lint_algorithms(entry: KeystoreEntry, out: _Collector) -> None:
    key_algorithm, size, curve = describe_certificate_key(entry.chain[0])
    alias = entry.alias
    if key_algorithm == "RSA" and size is not None and size < 2048:
        out.add("K12", "error", f"RSA key of {size} bits; partners require at least 2048",
                "make a new key: 'mtls-config keystore new --key-type rsa2048' (or ec-p256)", alias)  # fmt: skip
    elif key_algorithm == "EC" and curve not in STRONG_CURVES:
        severity: Severity = "warning" if curve == "secp521r1" else "error"
        out.add("K12", severity, f"EC key on curve {curve}; peers reliably support P-256 and P-384 only",
                "make a new key: 'mtls-config keystore new --key-type ec-p256'", alias)  # fmt: skip
    elif key_algorithm in ("Ed25519", "Ed448", "DSA"):
        out.add("K12", "warning", f"{key_algorithm} key: the peer may not support it", "prefer RSA 2048+ or EC P-256/P-384",
                alias)  # fmt: skip
    for cert in entry.chain:
        if is_self_signed(cert) and cert is not entry.chain[0]:
            continue  # a root's own signature is not checked by anyone: it is trusted as is
        algorithm = cert.signature_hash_algorithm
        if isinstance(algorithm, hashes.MD5):
            out.add("K12", "error", f"{short_name(cert)} is signed with MD5", "have it re-issued with SHA-256",
                    alias)  # fmt: skip
        elif isinstance(algorithm, hashes.SHA1):
            out.add("K12", "warning", f"{short_name(cert)} is signed with SHA-1; the peer may not support it",
                    "have it re-issued with SHA-256", alias)  # fmt: skip


def lint_trust_certs(
    items: Sequence[tuple[Source, bytes]],
    *,
    declared_format: TrustFormat | Sequence[TrustFormat | None] | None = None,
    warn_days: int | Sequence[int] = 30,
    now: dt.datetime | None = None,
) -> list[Finding]:
    """T01 (parses, one certificate per record, no duplicates across records, format as declared), T02
    (validity) and T03 (a positive serial number) for trust store certificates given as (source, bytes).
    ``declared_format`` and ``warn_days`` apply to every item, or are given per item. A source given as a function
    is asked only for a finding that names it."""
    now = now or dt.datetime.now(dt.UTC)
    formats = _per_item(declared_format, len(items))
    windows = _per_item(warn_days, len(items))
    findings: list[Finding] = []
    seen: dict[bytes, _Collector] = {}  # the item that trusts a certificate first, by its SHA-256
    for (source, data), fmt, window in zip(items, formats, windows, strict=True):
        out = _Collector(source)
        if b"PRIVATE KEY-----" in data:
            out.add("T01", "error", "the file holds a private key; a trust store record must hold only a "
                    "certificate", "remove the key block (and treat that key as exposed)")  # fmt: skip
        pem = looks_like_pem(data)
        if fmt == "der" and pem:
            out.add("T01", "error", "PEM text where DER is expected (format: der)",
                    "declare format: pem, or convert: openssl x509 -in cert.pem -outform der -out cert.der")  # fmt: skip
        elif fmt == "pem" and not pem and data:
            out.add("T01", "error", "binary (DER) data where PEM is expected (format: pem)",
                    "declare format: der, or convert: openssl x509 -inform der -in cert.der -out cert.pem")  # fmt: skip
        try:
            certs = checked_certificates(data)  # a plan's desired state parsed and checked the same bytes
        except KeystoreError as exc:
            out.add("T01", "error", exc.message, "give the partner's certificate as PEM or DER X.509")
            findings.extend(out.findings)
            continue
        if len(certs) > 1:
            out.add("T01", "error", f"{plural(len(certs), 'certificate')} in one record; a Trust Store Cert holds one",
                    "split them: one TrustStoreCert per certificate")  # fmt: skip
        for cert in certs:
            first = seen.get(cert.sha256)
            if first is not None:
                out.add("T01", "warning", f"{cert.short_name} is already trusted by {first.source}",
                        "keep one TrustStoreCert per certificate")  # fmt: skip
            else:
                seen[cert.sha256] = out
            _lint_trust_validity(cert, out, window, now)
            if not serial_number_is_positive(cert.serial):  # (its name is read again from the DER: said only here)
                _check_serial_number(cert.serial, cert.short_name, "T03", out)
        findings.extend(out.findings)
    return findings


def _per_item(value: Any, count: int) -> list[Any]:
    if isinstance(value, list | tuple):
        if len(value) != count:
            raise ValueError("one value per item expected")
        return list(value)
    return [value] * count


def _lint_trust_validity(cert: CheckedCertificate, out: _Collector, warn_days: int, now: dt.datetime) -> None:
    start, end = cert.not_before, cert.not_after
    if end < now:
        out.add("T02", "error", f"{cert.short_name} expired on {end:%Y-%m-%d}",
                "ask the partner for their current certificate")  # fmt: skip
    elif start > now:
        out.add("T02", "error", f"{cert.short_name} is not valid before {start:%Y-%m-%d %H:%M} UTC",
                "check the clock, or wait until it is valid")  # fmt: skip
    elif end - now < dt.timedelta(days=warn_days):
        out.add("T02", "warning", f"{cert.short_name} expires in {_days(end - now)} days ({end:%Y-%m-%d})",
                "ask the partner for their next certificate and add it before this one expires")  # fmt: skip
