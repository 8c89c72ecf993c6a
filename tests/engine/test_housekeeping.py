"""A plan's housekeeping (``mtls_config.housekeeping``) says what it always said: the names the inventory lists that no
stack claims are claimed (by their first address), the stack's own claims of names neither its inventory nor its
specs hold are given up. Since issue 18 a name claimed already is not keyed again; held here to the formulation
through ``inventory_keys`` on random inventories, specs and claims (names in other cases, the same name in two
kinds of one table, claims of this stack, another and none)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mtls_config.claims import Claim, ClaimKey, Claims, address_key, inventory_keys, resource_keys
from mtls_config.housekeeping import Housekeeping, housekeeping
from mtls_config.inventory import Inventory, OwnedRecord, OwnedResource

ADDRESSES = [
    f"{kind}/{name}"
    for kind in ("KeyStore", "TrustStoreCert", "ProtocolProfile", "MessageBinding", "Unknown")
    for name in ("a", "A", "b", "c")
]
STACKS = ["prod", "other", ""]


def _as_before(
    inventory: Inventory, desired: dict[str, ClaimKey | None], claims: Claims, leftover: tuple[str, ...]
) -> Housekeeping:
    owned = inventory_keys(inventory, desired)
    own = claims.own_ids()
    to_make = {k: address for k, address in owned.items() if k.sys_id not in own and claims.holder(k) is None}
    listed = inventory.resources
    wanted = {k.sys_id for k in owned}
    wanted.update(k.sys_id for a, k in desired.items() if a not in listed and k is not None)
    to_drop = tuple(c for c in claims.own if c.sys_id not in wanted)
    return Housekeeping(leftover, to_make, to_drop)


@given(
    st.lists(st.sampled_from(ADDRESSES), unique=True),
    st.lists(st.sampled_from(ADDRESSES), unique=True),
    st.lists(st.tuples(st.sampled_from(ADDRESSES), st.sampled_from(STACKS)), unique_by=lambda t: t[0]),
    st.lists(st.sampled_from(["f" * 32, "e" * 32]), unique=True),
)
def test_housekeeping_is_what_it_was(
    listed: list[str], specs: list[str], claimed: list[tuple[str, str]], strays: list[str]
) -> None:
    inventory = Inventory(
        stack="prod",
        resources={
            a: OwnedResource(address=a, records=[OwnedRecord(table="t", sys_id="0" * 32, mod_count=1)]) for a in listed
        },
    )
    desired = resource_keys((a, *a.split("/")) for a in specs if not a.startswith("Unknown"))
    found: dict[str, Claim] = {}
    for address, stack in claimed:
        key = address_key(address)
        if key is not None:
            found.setdefault(key.sys_id, Claim(key.sys_id, key.record_name(stack or "x"), stack, 1))
    for sys_id in strays:  # claims of this stack no key names
        found[sys_id] = Claim(sys_id, f"mtls_config.claim.prod.{sys_id[:16]}", "prod", 0)
    claims = Claims("prod", found)
    made, expected = housekeeping(inventory, desired, claims, ("p",)), _as_before(inventory, desired, claims, ("p",))
    assert made == expected
    assert list(made.claims_to_make.items()) == list(expected.claims_to_make.items())  # the same order too
