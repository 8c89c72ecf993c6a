"""Reading claims at scale (issue 18, session 6): a row of text is read without ``live_record`` and a key's digest is
made with it, and both say what the general path says."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtls_config.claims import (
    CLAIM_PREFIX,
    TABLE,
    Claim,
    ClaimKey,
    Claims,
    _claim,
    claim_key,
    claimed_elsewhere,
    claimed_here_unrecorded,
    resource_keys,
)
from mtls_config.errors import BadResponse
from mtls_config.inventory import STACK_NAME
from mtls_config.names import folded
from mtls_config.reads import live_record, mod_count_of
from mtls_config.resources.common import to_int


def _claim_as_read_before(row: dict[str, Any]) -> Claim:
    """``_claim`` as it was: every row through ``live_record``."""
    record = live_record(TABLE, row)
    name = record.get("name")
    stack, _, digest = name[len(CLAIM_PREFIX) :].rpartition(".") if name.startswith(CLAIM_PREFIX) else ("", "", "")
    if not STACK_NAME.fullmatch(stack) or digest != record.sys_id[:16]:
        stack = ""
    return Claim(sys_id=record.sys_id, record_name=name, stack=stack, mod_count=record.mod_count)


sys_ids = st.sampled_from(["0123456789abcdef" * 2, "fedcba9876543210" * 2])
stacks = st.sampled_from(["prod", "a", "Prod", "x" * 64, "two.dots", "", "-lead", "ok-1"])
digests = st.sampled_from(["0123456789abcdef", "fedcba9876543210", "0123", ""])
names = st.one_of(
    st.builds(lambda s, d: f"{CLAIM_PREFIX}{s}.{d}", stacks, digests),
    st.sampled_from(["", "mtls_config.inventory.prod", CLAIM_PREFIX, "MTLS_CONFIG.CLAIM.prod.0123456789abcdef"]),
    st.none(),
    st.builds(lambda n: {"value": n, "display_value": n}, st.sampled_from([f"{CLAIM_PREFIX}prod.0123456789abcdef"])),
)
counts = st.one_of(st.none(), st.sampled_from(["", "0", "7", " 3 ", "1e3", "x"]), st.integers(0, 5))


@given(sys_ids, names, counts)
def test_a_claim_row_reads_as_through_live_record(sys_id: str, name: Any, count: Any) -> None:
    row = {"sys_id": sys_id, "name": name, "sys_mod_count": count}
    assert _claim(row) == _claim_as_read_before(row)


@pytest.mark.parametrize("sys_id", [None, "", 7])
def test_a_claim_row_without_a_sys_id_is_refused_as_before(sys_id: Any) -> None:
    row = {"sys_id": sys_id, "name": f"{CLAIM_PREFIX}prod.0123456789abcdef", "sys_mod_count": "1"}
    with pytest.raises(BadResponse, match="without a sys_id"):
        _claim(row)


def test_a_claim_key_sys_id_is_made_with_it() -> None:
    key = ClaimKey("sys_certificate", "Acme Client")
    digest = hashlib.sha256(f"{CLAIM_PREFIX}\0sys_certificate\0{folded('Acme Client')}".encode()).hexdigest()
    assert key.sys_id == digest[:32]
    assert key.record_name("prod") == f"{CLAIM_PREFIX}prod.{digest[:16]}"
    # Compared, hashed, ordered and shown by table and name alone, as before.
    assert key == ClaimKey("sys_certificate", "Acme Client") and hash(key) == hash(
        ClaimKey("sys_certificate", "Acme Client")
    )
    assert key != ClaimKey("sys_certificate", "acme client")  # the same claim (sys_id), another key
    assert key.sys_id == ClaimKey("sys_certificate", "acme client").sys_id
    assert sorted([ClaimKey("b", "x"), key]) == [ClaimKey("b", "x"), key]
    assert repr(key) == "ClaimKey(table='sys_certificate', name='Acme Client')"


@given(st.sampled_from(["KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding"]), st.text(max_size=20))
def test_a_resource_key_is_what_the_class_makes(kind_name: str, name: str) -> None:
    """``claim_key`` fills a key's slots itself (issue 18: one key a resource): the key ``ClaimKey(...)`` makes, its
    sys_id, hash, order and repr; none for a kind that takes records over."""
    from mtls_config.resources.registry import kind_named

    kind = kind_named(kind_name)
    key = claim_key(kind_name, name)
    if kind.takes_over:
        assert key is None
        return
    made = ClaimKey(kind.table, name)
    assert type(key) is ClaimKey and key == made and hash(key) == hash(made) and repr(key) == repr(made)
    assert key.sys_id == made.sys_id and not key < made and not made < key
    assert (key.table, key.name) == (kind.table, name) and not hasattr(key, "__dict__")


def test_keys_made_once_serve_every_check() -> None:
    named = [("KeyStore/a", "KeyStore", "a"), ("TrustStoreCert/b", "TrustStoreCert", "b")]
    keys = resource_keys(named)
    a, b = keys["KeyStore/a"], keys["TrustStoreCert/b"]
    assert a is not None and b is not None
    claims = Claims(
        "prod",
        {
            a.sys_id: Claim(a.sys_id, a.record_name("other"), "other"),
            b.sys_id: Claim(b.sys_id, b.record_name("prod"), "prod"),
        },
    )
    assert list(claimed_elsewhere(keys, claims)) == ["KeyStore/a"]
    assert list(claimed_here_unrecorded(keys, claims, {"TrustStoreCert/b", "KeyStore/a"})) == ["TrustStoreCert/b"]
    assert claimed_here_unrecorded(keys, claims, set()) == {}


@given(st.one_of(st.none(), st.integers(-3, 1200).map(str), st.sampled_from(["", " 7", "07", "1e3", "x", "7.0", "٣"])))
def test_a_count_reads_as_to_int_reads_it(text: str | None) -> None:
    assert mod_count_of(text) == (to_int(text) or 0)
