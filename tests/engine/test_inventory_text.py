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


def test_owned_models_read_with_every_field_share_one_set_of_them_and_stay_their_own() -> None:
    """An inventory this tool wrote gives every field of its owned resources and records: read back, they share one
    set of "fields given" (728 bytes a model otherwise, issue 18). Setting a field of one changes no other model,
    neither its values nor its fields given nor its text; a model given fewer fields keeps a set of its own."""
    written = Inventory(
        stack="s",
        salt="00",
        resources={
            a: OwnedResource(address=a, records=[OwnedRecord(table="t", sys_id=a[-1] * 32, mod_count=1)])
            for a in ("KeyStore/a", "KeyStore/b")
        },
    )
    read = Inventory.from_json(written.to_json())
    a, b = read.resources["KeyStore/a"], read.resources["KeyStore/b"]
    assert a.model_fields_set is b.model_fields_set == set(OwnedResource.model_fields)
    assert a.records[0].model_fields_set is b.records[0].model_fields_set == set(OwnedRecord.model_fields)
    a.pending = True
    a.records[0].mod_count = None
    assert b.pending is False and b.records[0].mod_count == 1
    assert b.model_fields_set == set(OwnedResource.model_fields) and read.to_json() != written.to_json()
    b.pending, b.records[0].mod_count = True, None
    assert a.model_dump(exclude={"address", "records"}) == b.model_dump(exclude={"address", "records"})
    assert a.records[0].model_dump(exclude={"sys_id"}) == b.records[0].model_dump(exclude={"sys_id"})
    older = Inventory.from_json(
        '{"stack":"s","salt":"00","resources":{"KeyStore/c":{"address":"KeyStore/c","records":[{"table":"t","sys_id":"'
        + "c" * 32
        + '"}]}}}'
    )
    c = older.resources["KeyStore/c"]
    assert c.model_fields_set == {"address", "records"} and c.records[0].model_fields_set == {"table", "sys_id"}
    assert c.model_fields_set is not a.model_fields_set
    c.pending = True
    assert c.model_fields_set == {"address", "records", "pending"} and a.model_fields_set == set(
        OwnedResource.model_fields
    )
