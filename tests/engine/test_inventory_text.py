"""The inventory's JSON text is made a resource at a time (issue 18: apply's memory); it must be, byte for byte,
the text of the whole inventory dumped at once (its sha256 is recorded, and an unchanged inventory is not
written again)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from mtls_config.inventory import Inventory, OwnedRecord, OwnedResource, pack

text = st.text(max_size=8)
records = st.builds(
    OwnedRecord,
    table=text,
    sys_id=text,
    part=text,
    mod_count=st.none() | st.integers(-5, 10**12),
    original=st.none() | st.dictionaries(text, text, max_size=3),
)
resources = st.builds(
    OwnedResource,
    address=text,
    records=st.lists(records, max_size=3),
    content_attachment=st.none() | text,
    content_size=st.none() | st.integers(0, 10**9),
    content_digest=st.none() | text,
    password_digest=st.none() | text,
    password_opaque=st.none() | text,
    pending=st.booleans(),
)
inventories = st.builds(
    Inventory,
    stack=text,
    generation=st.integers(0, 10**6),
    salt=text,
    resources=st.dictionaries(text, resources, max_size=5),
)


@given(inventories)
def test_the_text_is_the_whole_inventory_dumped_at_once(inventory: Inventory) -> None:
    whole = json.dumps(inventory.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert inventory.to_json() == whole
    assert Inventory.from_json(inventory.to_json()) == inventory
    assert pack(inventory) == pack(inventory, whole)
