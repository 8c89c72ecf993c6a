"""DSA keys and certificates, read and checked without cryptography's DSA API.

cryptography 51 deprecates DSA: loading a DSA private key, ``Certificate.public_key()`` on a DSA certificate,
verifying a signature made by a DSA issuer and every name in ``asymmetric.dsa`` warn, and a later release will
remove them. Keystores with DSA keys still exist (``keytool -genkeypair -keyalg DSA``; old CAs signed with DSA),
and lint must go on saying what they hold (K12: "DSA key: the peer may not support it") and ordering their
chains. So a DSA key never reaches cryptography: it is recognised by its algorithm identifier (the certificate's
``public_key_algorithm_oid``, a PKCS#8 key's AlgorithmIdentifier), its numbers are read from the DER here, and a
DSA signature is checked by PyCryptodome's DSS verifier. Nothing here signs, so nothing here is secret beyond the
private value ``x``, which is only used to derive the public key and never leaves this module.

Pure: bytes in, values out. Never imports the client, the emulator, the CLI or anything that prints.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mtls_config.keystore import der

DSA_OID = "1.2.840.10040.4.1"  # id-dsa (RFC 3279): the SubjectPublicKeyInfo and PKCS#8 algorithm of a DSA key
_DSA_OID_DER = der.oid(DSA_OID)
# the digests a DSA certificate signature names (RFC 3279, RFC 5758), by cryptography's hash name: PyCryptodome's
# modules, imported when a DSA signature is checked (its DSA arithmetic is about 35 ms of every run's start-up
# otherwise, for keys almost no stack holds)
_HASHES: dict[str, str] = {
    "sha1": "Cryptodome.Hash.SHA1",
    "sha224": "Cryptodome.Hash.SHA224",
    "sha256": "Cryptodome.Hash.SHA256",
    "sha384": "Cryptodome.Hash.SHA384",
    "sha512": "Cryptodome.Hash.SHA512",
}


@dataclass(frozen=True)
class DsaPublicKey:
    """A DSA public key's numbers (RFC 3279 Dss-Parms and DSAPublicKey)."""

    p: int
    q: int
    g: int
    y: int

    @property
    def key_size(self) -> int:
        """The size of the prime modulus p, as keytool and cryptography state a DSA key's size."""
        return self.p.bit_length()

    def spki_der(self) -> bytes:
        """The SubjectPublicKeyInfo in DER (the same bytes any DER encoder gives: DER has one encoding)."""
        parameters = der.seq(der.integer(self.p), der.integer(self.q), der.integer(self.g))
        return der.seq(der.seq(_DSA_OID_DER, parameters), der.bit_string(der.integer(self.y)))

    def verify(self, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> bool:
        """Does ``signature`` (DER Dss-Sig-Value) sign ``data`` hashed with ``algorithm``? (FIPS 186-4 section 4.7.)

        The arithmetic is PyCryptodome's (``Cryptodome``, which pyjks already brings for the JKS ciphers): its
        DSS verifier in FIPS 186-3 mode, the key's numbers taken as they are (no primality check: the chain
        verification only asks whether the issuer's key made the signature). A hash it does not know, sizes
        outside FIPS 186's (L, N) pairs or a malformed signature is "not signed by this key"."""
        hash_name = _HASHES.get(algorithm.name)
        if hash_name is None:
            return False
        from Cryptodome.PublicKey import DSA
        from Cryptodome.Signature import DSS

        hash_module = importlib.import_module(hash_name)
        try:
            key = DSA.construct((self.y, self.g, self.p, self.q), consistency_check=False)
            DSS.new(key, "fips-186-3", encoding="der").verify(hash_module.new(data), signature)
        except (ValueError, TypeError):
            return False
        return True


def is_dsa_certificate(cert: x509.Certificate) -> bool:
    """The certificate's key is a DSA key (asked of the algorithm identifier: no key object is made)."""
    return cert.public_key_algorithm_oid.dotted_string == DSA_OID


def _parameters(parameters: bytes) -> tuple[int, int, int]:
    p, q, g = der.expect(parameters, 0x02, 0x02, 0x02)[:3]
    return der.read_integer(p[1]), der.read_integer(q[1]), der.read_integer(g[1])


def certificate_public_key(cert: x509.Certificate) -> DsaPublicKey:
    """The DSA key of a DSA certificate (``is_dsa_certificate``), read from its TBSCertificate.

    Raises ValueError when the key's encoding is damaged, as cryptography's ``public_key()`` does."""
    try:
        fields = der.items(der.expect(cert.tbs_certificate_bytes, 0x30)[0][1])
        if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
        spki = fields[5]
        algorithm, public = der.expect(spki[1], 0x30, 0x03)[:2]
        oid_item, parameters = der.expect(algorithm[1], 0x06, 0x30)[:2]
        if oid_item[2] != _DSA_OID_DER or not public[1] or public[1][0] != 0:
            raise der.Unreadable
        (y_item,) = der.expect(public[1][1:], 0x02)
        p, q, g = _parameters(parameters[1])
        return DsaPublicKey(p, q, g, der.read_integer(y_item[1]))
    except (der.Unreadable, IndexError, ValueError):
        raise ValueError("damaged DSA public key") from None


def pkcs8_is_dsa(pkcs8: bytes) -> bool:
    """A PKCS#8 PrivateKeyInfo (unencrypted DER) holds a DSA key."""
    try:
        _version, algorithm = der.expect(der.expect(pkcs8, 0x30)[0][1], 0x02, 0x30)[:2]
        return der.expect(algorithm[1], 0x06)[0][2] == _DSA_OID_DER
    except der.Unreadable:
        return False


def pkcs8_public_key(pkcs8: bytes) -> DsaPublicKey:
    """The public half of a DSA PKCS#8 key (y = g^x mod p). Raises ValueError when it is not a sound DSA key."""
    try:
        _version, algorithm, private = der.expect(der.expect(pkcs8, 0x30)[0][1], 0x02, 0x30, 0x04)[:3]
        oid_item, parameters = der.expect(algorithm[1], 0x06, 0x30)[:2]
        if oid_item[2] != _DSA_OID_DER:
            raise der.Unreadable
        p, q, g = _parameters(parameters[1])
        x = der.read_integer(der.expect(private[1], 0x02)[0][1])
    except der.Unreadable:
        raise ValueError("not a DSA PKCS#8 key") from None
    if not (0 < x < q and 1 < g < p):
        raise ValueError("not a DSA PKCS#8 key")
    return DsaPublicKey(p, q, g, pow(g, x, p))
