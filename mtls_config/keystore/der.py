"""The few DER (X.690) pieces the keystore code writes and reads by hand: tag-length-value encoding, and a reader
of definite-length TLVs that gives up (``Unreadable``) on anything else.

Used where cryptography cannot or must not do the work: writing PKCS#12 deterministically (``pkcs12_format``),
reading the PKCS#12 bag attributes cryptography leaves out, and reading DSA keys and certificates without
cryptography's DSA API (``dsa_keys``). Pure: bytes in, values out.
"""

from __future__ import annotations

NULL = b"\x05\x00"


class Unreadable(Exception):
    """Bytes outside the subset read here (the caller falls back or reports; the message says nothing)."""


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    # DER orders SET OF members by their encodings (X.690 11.6).
    return tlv(0x31, b"".join(sorted(parts)))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # non-negative, minimal


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def bit_string(data: bytes) -> bytes:
    return tlv(0x03, b"\x00" + data)  # no unused bits


def explicit0(inner: bytes) -> bytes:
    return tlv(0xA0, inner)


def items(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """The TLVs of ``data`` as (tag, body, whole encoding); definite lengths only."""
    found: list[tuple[int, bytes, bytes]] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise Unreadable
        tag, first = data[pos], data[pos + 1]
        start = pos + 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or start + count > len(data):  # 0: BER indefinite length
                raise Unreadable
            length = int.from_bytes(data[start : start + count], "big")
            start += count
        end = start + length
        if end > len(data):
            raise Unreadable
        found.append((tag, data[start:end], data[pos:end]))
        pos = end
    return found


def expect(data: bytes, *tags: int) -> list[tuple[int, bytes, bytes]]:
    """The TLVs of ``data``, at least as many as ``tags`` and starting with those tags."""
    found = items(data)
    if len(found) < len(tags) or any(item[0] != tag for item, tag in zip(found, tags, strict=False)):
        raise Unreadable
    return found


def read_integer(body: bytes) -> int:
    """A non-negative INTEGER's value from its body (what a key or a signature holds)."""
    if not body or body[0] & 0x80:
        raise Unreadable
    return int.from_bytes(body, "big")
