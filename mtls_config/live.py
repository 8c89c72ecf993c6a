"""The live state of a stack, as observed: its inventory and a canonical view of every relevant resource.

``observe`` makes it from the instance's answers and ``contents`` completes it with the digests of files the
inventory cannot vouch for; ``diff`` compares it with the desired state. Pure data.

Never imports the client, the emulator or the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mtls_config.dictionary import Dictionary
from mtls_config.inventory import Inventory, OwnedResource
from mtls_config.resources.common import Attachment, LiveRecord, LiveResource


@dataclass(frozen=True)
class Live:
    """What the instance holds for a stack: its inventory and a live view of every relevant resource."""

    stack: str
    inventory: Inventory
    inventory_record: LiveRecord | None
    inventory_attachment: Attachment | None
    resources: dict[str, LiveResource]  # desired and owned addresses found on the instance
    unresolved: dict[str, str] = field(default_factory=dict)  # address -> why its records cannot be found as named
    opaque_passwords: dict[str, str] = field(default_factory=dict, repr=False)  # address -> sha256 of the opaque value
    duplicates: dict[str, str] = field(default_factory=dict)  # address -> several records, none clearly ours
    dictionary: Dictionary | None = None  # the columns of the tables the stack touches; None: not read
    leftover_parts: tuple[str, ...] = ()  # inventory part records its head does not name (a stopped write's)

    def owned(self, address: str) -> OwnedResource | None:
        return self.inventory.resources.get(address)
