"""Read keystores (JKS and JCEKS via pyjks; PKCS12 via cryptography, plus Java's trust attribute read by
``pkcs12_format``) into plain values, compare them by a canonical model, and export a certificate from them.

Reading never needs more than it must: a JKS lists its entries without the password (JKS does not encrypt the
container; the password only protects integrity and the keys), and ``unchecked`` says what that leaves open.

Pure: bytes in, values out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from mtls_config.errors import KeystoreError, KeystorePasswordError
from mtls_config.keystore.certs import (
    CertEncoding,
    build_chain,
    cert_sha256,
    describe_public_key,
    looks_like_pem,
    parse_stored_certificate,
    spki_sha256,
)
from mtls_config.keystore.dsa_keys import pkcs8_is_dsa, pkcs8_public_key
from mtls_config.keystore.jks_format import JCEKS_MAGIC, JKS_MAGIC
from mtls_config.keystore.pkcs12_format import Pkcs12Bag, mac_verifies, read_bags, trusted_certificates
from mtls_config.secrets import SecretValue

StoreType = Literal["jks", "pkcs12", "jceks", "unknown"]
EntryKind = Literal["private_key", "trusted_cert", "secret_key"]
DeclaredFormat = Literal["jks", "pkcs12"]


@dataclass(frozen=True)
class StoredCertificate:
    """A certificate as the keystore holds it: the raw bytes and, when they parse, the certificate."""

    raw: bytes = field(repr=False)
    certificate: x509.Certificate | None
    encoding: CertEncoding  # "der" as it should be; "pem" when PEM text was stored; "invalid"


@dataclass(frozen=True)
class KeystoreEntry:
    alias: str
    kind: EntryKind
    chain: tuple[x509.Certificate, ...]  # key entries: leaf first, as stored; trusted entries: the one cert
    key_decrypted: bool = False  # the key decrypted with the store password
    key_spki_sha256: str | None = None  # hex SHA-256 of the key's SubjectPublicKeyInfo (when decrypted)
    key_algorithm: str | None = None  # "RSA", "EC", ... (when decrypted)
    key_size: int | None = None
    timestamp_ms: int | None = None  # creation date stored in JKS (not compared)
    stored: tuple[StoredCertificate, ...] = ()

    @property
    def leaf(self) -> x509.Certificate | None:
        return self.chain[0] if self.chain else None


@dataclass(frozen=True)
class KeystoreContents:
    store_type: StoreType
    integrity_verified: bool
    entries: tuple[KeystoreEntry, ...]
    unchecked: tuple[str, ...] = ()  # what could not be checked, and why
    # False when a PKCS12 file's trust attributes could not be read (legacy encryption): which certificates
    # Java lists as trusted entries is then unknown, and ``trusted_entries`` may miss some.
    trusted_entries_known: bool = True

    @property
    def private_key_entries(self) -> list[KeystoreEntry]:
        return [e for e in self.entries if e.kind == "private_key"]

    @property
    def trusted_entries(self) -> list[KeystoreEntry]:
        return [e for e in self.entries if e.kind == "trusted_cert"]

    def entry(self, alias: str) -> KeystoreEntry | None:
        return next((e for e in self.entries if e.alias == alias), None)


@dataclass(frozen=True)
class KeyMaterial:
    """A private key with its certificate chain, ready for a TLS client (never printed: no repr of the key)."""

    alias: str
    private_key: PrivateKeyTypes = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(repr=False)


def detect_store_type(data: bytes) -> StoreType:
    if data[:4] == JKS_MAGIC:
        return "jks"
    if data[:4] == JCEKS_MAGIC:
        return "jceks"
    if data[:1] == b"\x30":  # a DER SEQUENCE: PKCS12 (PFX) is the only keystore that starts this way
        return "pkcs12"
    return "unknown"


def describe_unknown(data: bytes) -> str:
    """Why bytes are not a keystore, in words a person can act on."""
    if not data:
        return "the file is empty"
    if looks_like_pem(data):
        return "this is PEM text (certificates or a key), not a keystore"
    return "not a keystore: the file starts neither with FEEDFEED (JKS), CECECECE (JCEKS) nor a PKCS12 structure"


def read_keystore(
    data: bytes, password: SecretValue | None, *, declared_format: DeclaredFormat | None = None
) -> KeystoreContents:
    """The entries of a keystore. The type comes from the file's magic bytes, not from ``declared_format``
    (a mismatch is lint rule K01's business)."""
    return _read(data, password)[0]


def load_key_entry(data: bytes, password: SecretValue, *, alias: str | None = None) -> KeyMaterial:
    """The private key (decrypted with the store password, as the instance does) and its chain."""
    contents, keys = _read(data, password)
    candidates = [e for e in contents.private_key_entries if alias is None or e.alias == alias]
    if not candidates:
        what = f"no private-key entry '{alias}'" if alias else "no private-key entry"
        raise KeystoreError(f"{what} in this keystore ({_aliases(contents)})")
    if len(candidates) > 1:
        raise KeystoreError(f"several private-key entries ({_aliases(contents)}); name one with an alias")
    entry = candidates[0]
    key = keys.get(entry.alias)
    if key is None and entry.key_algorithm == "DSA":
        raise KeystoreError(
            f"the key of entry '{entry.alias}' is a DSA key, which cryptography no longer supports for handshakes",
            hint="make a new key: 'mtls-config keystore new --key-type rsa2048' (or ec-p256)",
        )
    if key is None:
        raise KeystorePasswordError(
            f"the key of entry '{entry.alias}' does not decrypt with the store password",
            hint="the instance needs key password = store password (KB0824494)",
        )
    return KeyMaterial(entry.alias, key, entry.chain)


def _aliases(contents: KeystoreContents) -> str:
    return "entries: " + (", ".join(e.alias for e in contents.entries) or "none")


def _read(data: bytes, password: SecretValue | None) -> tuple[KeystoreContents, dict[str, PrivateKeyTypes]]:
    store_type = detect_store_type(data)
    if store_type in ("jks", "jceks"):
        return _read_jks(data, password, store_type)
    if store_type == "pkcs12":
        return _read_pkcs12(data, password)
    raise KeystoreError(describe_unknown(data))


def _stored(raw_chain: Sequence[bytes]) -> tuple[tuple[StoredCertificate, ...], tuple[x509.Certificate, ...]]:
    stored = tuple(StoredCertificate(raw, *parse_stored_certificate(raw)) for raw in raw_chain)
    return stored, tuple(s.certificate for s in stored if s.certificate is not None)


def _read_jks(
    data: bytes, password: SecretValue | None, store_type: StoreType
) -> tuple[KeystoreContents, dict[str, PrivateKeyTypes]]:
    # pyjks (with pyasn1 and PyCryptodome) loads when a JKS or JCEKS file is read: about 55 ms of start-up that a
    # run of PEM and PKCS#12 files does not need.
    import jks
    from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]  # pyjks decodes keys with pyasn1

    unchecked: list[str] = []
    password_text: str | None = None
    if password is not None:
        try:
            password_text = password.reveal_text()
        except UnicodeDecodeError:
            raise KeystorePasswordError(
                f"the keystore password ({password.source}) is not UTF-8 text", hint="save the password file as UTF-8"
            ) from None
    try:
        if password_text is None:
            # pyjks crashes on a None password unless key decryption is off; then it also skips the digest.
            store = jks.KeyStore.loads(data, None, try_decrypt_keys=False)
            unchecked.append("store integrity: no password given (JKS checks its digest with the store password)")
        else:
            store = jks.KeyStore.loads(data, password_text, try_decrypt_keys=True)
    except jks.util.KeystoreSignatureException:
        raise KeystorePasswordError(
            "keystore password is incorrect (or the file was altered): the integrity digest does not match",
            hint="check the password reference; keytool says 'Keystore was tampered with, or password was incorrect'",
        ) from None
    except jks.util.DuplicateAliasException:
        raise KeystoreError("the keystore holds the same alias twice; it is damaged") from None
    except (jks.util.KeystoreException, ValueError, IndexError, KeyError, PyAsn1Error) as exc:
        # PyAsn1Error: pyjks decodes a damaged key entry with pyasn1 while decrypting it
        raise KeystoreError(f"damaged {store_type.upper()} keystore: {type(exc).__name__}") from None

    entries: list[KeystoreEntry] = []
    keys: dict[str, PrivateKeyTypes] = {}
    for alias, item in store.entries.items():
        timestamp = int(item.timestamp) if getattr(item, "timestamp", None) is not None else None
        if isinstance(item, jks.PrivateKeyEntry):
            stored, chain = _stored([der for _type, der in item.cert_chain])
            key: PrivateKeyTypes | None = None
            algorithm: str | None = None
            size: int | None = None
            key_spki: str | None = None
            if item.is_decrypted() and pkcs8_is_dsa(item.pkey_pkcs8):
                algorithm, size, key_spki = _describe_dsa(alias, item.pkey_pkcs8, unchecked)
            elif item.is_decrypted():
                try:
                    # Reading a keystore needs the key's public half and type, not RSA's slow consistency proof
                    # (150 ms a key): OpenSSL checks the key again whenever it is used for a handshake.
                    key = serialization.load_der_private_key(
                        item.pkey_pkcs8, password=None, unsafe_skip_rsa_key_validation=True
                    )
                except (ValueError, TypeError, UnsupportedAlgorithm):  # reported below; the rest stays readable
                    unchecked.append(f"key of '{alias}': decrypted, but it is not a PKCS#8 key cryptography can read")
            elif password is None:
                unchecked.append(f"key of '{alias}': not decrypted (no password), so key/leaf match is unchecked")
            else:
                unchecked.append(f"key of '{alias}': does not decrypt with the store password")
            if key is not None:
                algorithm, size, _curve = describe_public_key(key)
                key_spki = spki_sha256(key.public_key())
            entries.append(
                KeystoreEntry(
                    alias=alias,
                    kind="private_key",
                    chain=chain,
                    key_decrypted=item.is_decrypted(),
                    key_spki_sha256=key_spki,
                    key_algorithm=algorithm,
                    key_size=size,
                    timestamp_ms=timestamp,
                    stored=stored,
                )
            )
            if key is not None:
                keys[alias] = key
        elif isinstance(item, jks.TrustedCertEntry):
            stored, chain = _stored([item.cert])
            entries.append(KeystoreEntry(alias, "trusted_cert", chain, timestamp_ms=timestamp, stored=stored))
        else:
            entries.append(KeystoreEntry(alias, "secret_key", (), timestamp_ms=timestamp))
    contents = KeystoreContents(
        store_type=store_type,
        integrity_verified=password is not None,
        entries=tuple(sorted(entries, key=lambda e: e.alias)),
        unchecked=tuple(unchecked),
    )
    return contents, keys


def _describe_dsa(alias: str, pkcs8: bytes, unchecked: list[str]) -> tuple[str, int | None, str | None]:
    """("DSA", size, SPKI digest) of a DSA key, read without cryptography (see ``dsa_keys``): the key is
    described and matched with its certificate, but not loaded, so it cannot be used for a handshake."""
    try:
        public = pkcs8_public_key(pkcs8)
    except ValueError:
        unchecked.append(f"key of '{alias}': decrypted, but it is not a DSA key this reader understands")
        return "DSA", None, None
    return "DSA", public.key_size, spki_sha256(public)


def _friendly(cert: pkcs12.PKCS12Certificate | None, fallback: str) -> str:
    if cert is None or cert.friendly_name is None:
        return fallback
    return cert.friendly_name.decode("utf-8", "replace")


def _read_pkcs12(data: bytes, password: SecretValue | None) -> tuple[KeystoreContents, dict[str, PrivateKeyTypes]]:
    if password is None:
        unchecked = ("everything: a PKCS12 file is encrypted and cannot be read without its password",)
        return KeystoreContents("pkcs12", False, (), unchecked), {}
    bags = read_bags(data, password, keys=True)
    holds_dsa_key = bags is not None and any(bag.kind == "key" and pkcs8_is_dsa(bag.value) for bag in bags)
    if bags is not None and holds_dsa_key and mac_verifies(data, password) is True:
        # cryptography's reader would load the DSA key through its deprecated DSA API; this file is read here.
        return _pkcs12_from_bags(bags)
    try:
        with warnings.catch_warnings():
            # cryptography warns (rather than fails) when it falls back from DER to BER; a reader of damaged
            # or BER files must not print library warnings (or raise them, where warnings are errors).
            warnings.filterwarnings("ignore", message="PKCS#12 bundle could not be parsed as DER", category=UserWarning)
            loaded = pkcs12.load_pkcs12(data, password.reveal())
    except ValueError:
        raise KeystorePasswordError(
            "cannot open the PKCS12 keystore: the password is incorrect, or the file is not PKCS12"
        ) from None
    entries: list[KeystoreEntry] = []
    keys: dict[str, PrivateKeyTypes] = {}
    # Java lists a certificate bag as trustedCertEntry when it carries Oracle's trust attribute, even when the
    # certificate is also in the key's chain (as assemble writes CAs, and as a JKS holds them); a certificate
    # without it and outside the key's chain is listed too, so that no certificate in the file goes unseen.
    trust = trusted_certificates(bags) if bags is not None else None
    trusted_der = {der for der, _alias in trust or ()}
    extra = list(loaded.additional_certs)
    by_der = {_der(c.certificate): c.certificate for c in extra}
    if loaded.cert is not None and loaded.key is not None:
        alias = _friendly(loaded.cert, "1")
        chain, _unused = build_chain(loaded.cert.certificate, [c.certificate for c in extra])
        in_chain = {cert_sha256(c) for c in chain}
        extra = [c for c in extra if cert_sha256(c.certificate) not in in_chain]
        algorithm, size, _curve = describe_public_key(loaded.key)
        stored = tuple(StoredCertificate(_der(c), c, "der") for c in chain)
        entries.append(
            KeystoreEntry(
                alias=alias,
                kind="private_key",
                chain=tuple(chain),
                key_decrypted=True,
                key_spki_sha256=spki_sha256(loaded.key.public_key()),
                key_algorithm=algorithm,
                key_size=size,
                stored=stored,
            )
        )
        keys[alias] = loaded.key
    elif loaded.cert is not None:
        extra.insert(0, loaded.cert)
        by_der[_der(loaded.cert.certificate)] = loaded.cert.certificate
    listed = [(der, name, by_der[der]) for der, name in trust or () if der in by_der]
    listed += [(der, _friendly(c, ""), c.certificate) for c in extra if (der := _der(c.certificate)) not in trusted_der]
    for index, (der, name, cert) in enumerate(listed, start=1):
        alias = name or f"cert-{index}"
        stored_cert = StoredCertificate(der, cert, "der")
        entries.append(KeystoreEntry(alias, "trusted_cert", (cert,), stored=(stored_cert,)))
    notes: tuple[str, ...] = ()
    if trust is None:
        notes = (
            "PKCS12 trust attributes: not readable in this file's encryption, so certificates in the key's chain "
            "are not listed as trusted entries (keytool may list some), and those outside it are",
        )
    contents = KeystoreContents(
        "pkcs12", True, tuple(sorted(entries, key=lambda e: e.alias)), notes, trusted_entries_known=trust is not None
    )
    return contents, keys


def _pkcs12_from_bags(bags: Sequence[Pkcs12Bag]) -> tuple[KeystoreContents, dict[str, PrivateKeyTypes]]:
    """A PKCS12 file holding a DSA key, from its bags, as Java lists it: the key with the certificate that shares
    its localKeyId and the chain behind it; other certificates as trusted entries."""
    unchecked: list[str] = []
    entries: list[KeystoreEntry] = []
    cert_bags = [bag for bag in bags if bag.kind == "cert"]
    in_chains: set[bytes] = set()
    for index, key_bag in enumerate((bag for bag in bags if bag.kind == "key"), start=1):
        alias = key_bag.alias or str(index)
        algorithm, size, key_spki = _describe_dsa(alias, key_bag.value, unchecked)
        leaf = next((c for c in cert_bags if key_bag.local_key_id and c.local_key_id == key_bag.local_key_id), None)
        stored: tuple[StoredCertificate, ...] = ()
        chain: tuple[x509.Certificate, ...] = ()
        if leaf is not None:
            in_chains.add(leaf.value)
            stored, chain = _stored([leaf.value])
            if chain:
                others = [c for c in cert_bags if c is not leaf]
                pool = [cert for bag in others if (cert := parse_stored_certificate(bag.value)[0]) is not None]
                ordered, _unused = build_chain(chain[0], pool)
                chain = tuple(ordered)
                in_chains.update(_der(c) for c in chain)
                stored = tuple(StoredCertificate(_der(c), c, "der") for c in chain)
        entries.append(KeystoreEntry(alias, "private_key", chain, True, key_spki, algorithm, size, stored=stored))
    for index, bag in enumerate((c for c in cert_bags if c.value not in in_chains or c.trusted), start=1):
        stored, chain = _stored([bag.value])
        entries.append(KeystoreEntry(bag.alias or f"cert-{index}", "trusted_cert", chain, stored=stored))
    contents = KeystoreContents("pkcs12", True, tuple(sorted(entries, key=lambda e: e.alias)), tuple(unchecked))
    return contents, {}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def canonical_model(contents: KeystoreContents) -> dict[str, Any]:
    """What a keystore *means*, as JSON-able data: equal models = no change, whatever the bytes (timestamps,
    IVs, salts and entry order are left out on purpose). The key's SPKI is known only when the key decrypts,
    so compare models read the same way: both with the store password (as the engine does), or both without."""
    entries: list[dict[str, Any]] = []
    for entry in sorted(contents.entries, key=lambda e: e.alias):
        item: dict[str, Any] = {"alias": entry.alias, "kind": entry.kind}
        if entry.kind == "private_key":
            item["key_spki_sha256"] = entry.key_spki_sha256
        item["certificates"] = [hashlib.sha256(s.raw).hexdigest() for s in entry.stored] or [
            cert_sha256(c) for c in entry.chain
        ]
        entries.append(item)
    return {"store_type": contents.store_type, "entries": entries}


def canonical_digest(contents: KeystoreContents) -> str:
    text = json.dumps(canonical_model(contents), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def export_certificate(
    source: bytes | KeystoreContents,
    *,
    password: SecretValue | None = None,
    alias: str | None = None,
    fmt: Literal["pem", "der"] = "pem",
    include_chain: bool = False,
) -> bytes:
    """The public certificate to send to a partner (step D): the leaf of the key entry by default, or the
    certificate of entry ``alias``. ``include_chain`` (PEM only) appends the CA certificates."""
    contents = source if isinstance(source, KeystoreContents) else read_keystore(source, password)
    if alias is not None:
        entry = contents.entry(alias)
        if entry is None:
            raise KeystoreError(f"no entry '{alias}' in this keystore ({_aliases(contents)})")
    else:
        keys = contents.private_key_entries
        candidates = keys or contents.trusted_entries
        if len(candidates) != 1:
            kind = "private-key entries" if keys else "entries"
            raise KeystoreError(f"{len(candidates)} {kind}; say which with --alias ({_aliases(contents)})")
        entry = candidates[0]
    if not entry.chain:
        raise KeystoreError(f"entry '{entry.alias}' holds no readable certificate")
    certs = entry.chain if include_chain else entry.chain[:1]
    if fmt == "der":
        if include_chain and len(certs) > 1:
            raise KeystoreError("DER holds one certificate; use --format pem to export the chain")
        return certs[0].public_bytes(serialization.Encoding.DER)
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
