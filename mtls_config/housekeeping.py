"""What an apply tidies on its way, even when the specs ask for no change: inventory part records a stopped write
left behind, and claims that do not match the stack's inventory (``mtls_config.claims``).

A run stopped at the wrong moment (killed, interrupted, its time limit spent) can leave such records, and the next
run may have nothing else to do: the plan says what it will tidy, and ``apply`` does it under the stack's lock.
Pure: computed from what a plan read; the engine writes.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mtls_config.claims import Claim, ClaimKey, Claims, listed_key
from mtls_config.inventory import Inventory
from mtls_config.wording import plural


@dataclass(frozen=True)
class Housekeeping:
    leftover_parts: tuple[str, ...] = ()  # sys_ids of inventory part records the head does not name
    claims_to_make: Mapping[ClaimKey, str] = field(default_factory=dict)  # names owned without the stack's claim
    claims_to_drop: tuple[Claim, ...] = ()  # the stack's claims of names neither its inventory nor its specs hold

    def __bool__(self) -> bool:
        return bool(self.leftover_parts or self.claims_to_make or self.claims_to_drop)

    def lines(self) -> list[str]:
        """What there is to tidy, one sentence each."""
        out = []
        if self.leftover_parts:
            out.append(
                f"remove {plural(len(self.leftover_parts), 'inventory part record')} a stopped write left behind"
            )
        if self.claims_to_make:
            out.append(f"claim {plural(len(self.claims_to_make), 'name')} the stack owns without a claim")
        if self.claims_to_drop:
            out.append(f"give up {plural(len(self.claims_to_drop), 'claim')} of names the stack no longer owns")
        return out


def housekeeping(
    inventory: Inventory, desired: Mapping[str, ClaimKey | None], claims: Claims, leftover_parts: tuple[str, ...]
) -> Housekeeping:
    """``desired``: the claim keys of the addresses the specs name, by address (``claims.resource_keys``; a claim of
    one of their names is kept: the apply needs it)."""
    # The claims of the names the inventory lists (``inventory_keys``: the first address of each name) that no stack
    # holds: a name another stack claims is a conflict the plan reports (for a name the specs hold), not ours to take;
    # a name claimed already (every name of a stack at rest) is not keyed again (issue 18: a key hashed per resource).
    found = claims.found
    listed = inventory.resources
    to_make: dict[ClaimKey, str] = {}
    wanted: set[str] = set()
    for address in listed:
        key = listed_key(address, desired)
        if key is None:
            continue
        wanted.add(key.sys_id)
        if key.sys_id not in found:
            to_make.setdefault(key, address)
    # A desired address the inventory lists has its key's sys_id in ``wanted`` already (an equal key: the same one).
    wanted.update(k.sys_id for a, k in desired.items() if a not in listed and k is not None)
    to_drop = tuple(c for c in claims.own if c.sys_id not in wanted)
    return Housekeeping(leftover_parts, to_make, to_drop)
