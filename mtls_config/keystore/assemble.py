"""Assemble a client keystore from a private key, the CA-signed certificate and the CA chain (steps A3-A4).

Replaces ``keytool -importcert -trustcacerts`` (CA chain, then the reply under the key's alias) and catches on the
way what keytool lets through: a key that does not match the certificate, a chain that does not link, a chain that
stops short of its root, certificates that belong to nothing.

The output is deterministic: same inputs, same bytes, JKS and PKCS12 alike. JKS aliases are lower-case and
sorted, entry timestamps are the certificates' notBefore, and the key's IV is derived from what it protects (see
``jks_format``); PKCS12 salts and IVs are derived the same way (see ``pkcs12_format``), and its CA certificates
carry the Java trust attribute so that keytool lists them as trustedCertEntry, as in the JKS.

Pure: bytes in, bytes out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mtls_config.errors import KeystoreError, KeystoreRuleError
from mtls_config.keystore.certs import (
    build_chain,
    cert_sha256,
    cert_spki_sha256,
    is_self_signed,
    load_certificates,
    not_before,
    short_dn,
    short_name,
    spki_sha256,
)
from mtls_config.keystore.jks_format import JksEntry, JksPrivateKeyEntry, JksTrustedCertEntry, encode_jks
from mtls_config.keystore.keys import load_private_key, pkcs8_der
from mtls_config.keystore.pkcs12_format import Pkcs12KeyEntry, Pkcs12TrustedCert, encode_pkcs12
from mtls_config.secrets import SecretValue

ALIAS_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def alias_for(cert: x509.Certificate, fallback: str) -> str:
    """A lower-case alias from the certificate's CN ('Demo Issuing CA' -> 'demo-issuing-ca')."""
    cns = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    text = cns[0].value if cns else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    slug = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
    return slug[:64] or fallback


def _check_alias(alias: str) -> str:
    if not ALIAS_PATTERN.match(alias):
        raise KeystoreRuleError(
            "K05",
            f"alias '{alias}' must be lower-case letters, digits, '.', '_' or '-' (Java looks aliases up in lower case)",
            hint=f"use --alias {alias.lower()}" if ALIAS_PATTERN.match(alias.lower()) else None,
        )
    return alias


def _timestamp_ms(cert: x509.Certificate) -> int:
    return int(not_before(cert).timestamp()) * 1000


def order_chain(
    leaf_candidates: Sequence[x509.Certificate], pool: Sequence[x509.Certificate], key_spki: str
) -> list[x509.Certificate]:
    """Pick the certificate that matches the key and order the others behind it, leaf -> root; refuse what
    does not fit (a key/leaf mismatch, stray certificates, a chain that stops short of a root)."""
    matching = [c for c in leaf_candidates if cert_spki_sha256(c) == key_spki]
    if not matching:
        names = ", ".join(short_name(c) for c in leaf_candidates)
        raise KeystoreRuleError(
            "K06",
            f"the private key does not match the certificate ({names})",
            hint="use the certificate the CA issued for this key's CSR (or the key that made that CSR)",
        )
    leaf = matching[0]
    others = [c for c in leaf_candidates if c is not leaf] + list(pool)
    chain, unused = build_chain(leaf, others)
    unused = [c for c in unused if cert_sha256(c) not in {cert_sha256(x) for x in chain}]
    names = ", ".join(short_name(c) for c in unused)
    last = chain[-1]
    if not is_self_signed(last) and (unused or len(chain) > 1):
        # A gap, not strays: certificates given that cannot link without the one missing (the root given, the
        # intermediate forgotten) are not "not in the chain", they are behind the gap.
        missing = short_dn(last.issuer)
        behind = f"; {names} {'was' if len(unused) == 1 else 'were'} given but cannot link without it" if unused else ""
        raise KeystoreRuleError(
            "K09",
            f"the chain stops at {short_name(last)}: its issuing CA ({missing}) is missing{behind}",
            hint=f"add the certificate of {missing} to the chain (--chain FILE, or build.chain in a spec), "
            "and its issuers up to the root",
        )
    if unused:
        raise KeystoreRuleError(
            "K08",
            f"{'a certificate' if len(unused) == 1 else 'certificates'} not in the chain of {short_name(leaf)}: {names}",
            hint="pass only the CA certificates that issued this certificate (leaf -> intermediates -> root)",
        )
    if len(chain) == 1 and not is_self_signed(leaf):
        raise KeystoreRuleError(
            "K09",
            f"no CA certificates for {short_name(leaf)}, issued by {leaf.issuer.rfc4514_string()}",
            hint="add the CA chain with --chain; Java sends only the chain stored with the key",
        )
    return chain


def assemble_keystore(
    key_pem: bytes,
    cert_pem: bytes,
    chain_pems: Sequence[bytes],
    password: SecretValue,
    *,
    key_password: SecretValue | None = None,
    alias: str | None = None,
    fmt: Literal["jks", "pkcs12"] = "jks",
) -> bytes:
    """A keystore with one PrivateKeyEntry (key password = store password, chain leaf -> root) and each CA
    certificate as a trusted entry. ``cert_pem`` may hold the CA reply alone or with its chain; ``chain_pems``
    may come in any order and each may hold several certificates."""
    key = load_private_key(key_pem, key_password)
    pool: list[x509.Certificate] = []
    for blob in chain_pems:
        pool.extend(load_certificates(blob))
    chain = order_chain(load_certificates(cert_pem), pool, spki_sha256(key.public_key()))
    leaf, cas = chain[0], chain[1:]
    key_alias = _check_alias(alias) if alias is not None else alias_for(leaf, "client")

    ca_aliases: list[tuple[str, x509.Certificate]] = []
    taken = {key_alias}
    for ca in cas:
        ca_alias = alias_for(ca, "ca")
        if ca_alias in taken:
            ca_alias = f"{ca_alias}-{cert_sha256(ca)[:8]}"
        taken.add(ca_alias)
        ca_aliases.append((ca_alias, ca))

    der = serialization.Encoding.DER
    if fmt == "pkcs12":
        return encode_pkcs12(
            Pkcs12KeyEntry(key_alias, pkcs8_der(key), tuple(c.public_bytes(der) for c in chain)),
            [Pkcs12TrustedCert(name, ca.public_bytes(der)) for name, ca in ca_aliases],
            password,
        )
    if fmt != "jks":
        raise KeystoreError(f"unknown keystore format '{fmt}'; choose jks or pkcs12")

    entries: list[JksEntry] = [
        JksPrivateKeyEntry(
            alias=key_alias,
            timestamp_ms=_timestamp_ms(leaf),
            pkcs8=pkcs8_der(key),
            chain_der=tuple(c.public_bytes(der) for c in chain),
        )
    ]
    entries.extend(JksTrustedCertEntry(name, _timestamp_ms(ca), ca.public_bytes(der)) for name, ca in ca_aliases)
    entries.sort(key=lambda e: e.alias)
    return encode_jks(entries, password)
