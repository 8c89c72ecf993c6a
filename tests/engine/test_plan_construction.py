"""A plan's entries are made without validating them again, and an unchanged resource's two sides are one mapping
(issue 18: the plan was the peak of a no-change plan's memory). Held here: the plan is the one its own JSON reads
back as, sides the same only where JSON says so, and the inventory read by pydantic's JSON reader is the one the
dict-then-validate path made, with its errors still ValueErrors."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mtls_config.changes import Change, DiffResult, FieldChange, Fingerprint
from mtls_config.client import InstanceClient
from mtls_config.desired import Desired, build_desired
from mtls_config.engine import apply_planned, make_planned
from mtls_config.inventory import Inventory, OwnedRecord, OwnedResource, PartsRef, decode_parts, encode_parts
from mtls_config.plan import Plan, ResourceChange, make_plan
from mtls_config.spec.loader import load_specs
from tests.engine.stacks import write_stack

# What a plan is for, besides its changes: no instance, inventory or scope to speak of.
PLAN_OF: Any = {
    "instance": "i", "stack": "s", "spec_digest": "d", "inventory_sys_id": None, "inventory_mod_count": None,
    "inventory_generation": 0, "prune": False,
}  # fmt: skip


def _plan(*changes: Change, seal: bool = True) -> Plan:
    return make_plan(DiffResult(changes, ()), **PLAN_OF, seal=seal)


def _change(address: str, action: Any, before: dict[str, Any] | None, after: dict[str, Any] | None) -> Change:
    kind, _, name = address.partition("/")
    live = (Fingerprint("", "sys_certificate", "a" * 32, 3),) if before is not None else ()
    fields = () if action == "no-op" else (FieldChange("short_description", None, "x"),)
    return Change(address, kind, name, "sys_certificate", action, "", fields, before, after, {"expires": "x"}, live)


def _reads_back_as_itself(plan: Plan) -> None:
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert again.to_json() == plan.to_json()
    for made, read in zip(plan.resource_changes, again.resource_changes, strict=True):
        assert made.model_fields_set == read.model_fields_set == set(ResourceChange.model_fields)
        # (a changed field's own unset keys are another matter: those entries are validated as they always were)
        unset: Any = {"changed_fields"}
        assert made.model_dump(exclude_unset=True, exclude=unset) == read.model_dump(exclude_unset=True, exclude=unset)


def test_sides_the_same_in_json_are_one_mapping_and_others_stay_apart() -> None:
    same = {"short_description": "d", "warn_in_days_to_expire": 30, "notify_on_expiration": ["a", "b"]}
    plan = _plan(
        _change("TrustStoreCert/same", "no-op", dict(same), dict(same)),
        # equal in Python, not in JSON: 1 is not true, 1 is not 1.0
        _change("TrustStoreCert/bool", "no-op", {"active": 1, "port": 1}, {"active": True, "port": 1.0}),
        _change("TrustStoreCert/order", "no-op", {"a": "1", "b": "2"}, {"b": "2", "a": "1"}),
        _change("TrustStoreCert/new", "create", None, {"short_description": "x"}),
        _change("TrustStoreCert/edit", "update", {"short_description": "d"}, {"short_description": "x"}),
    )
    by = plan.address_changes()
    assert by["TrustStoreCert/same"].before is by["TrustStoreCert/same"].after
    assert by["TrustStoreCert/same"].before == same
    assert by["TrustStoreCert/same"].before is not same  # the plan's own copy, not the diff's
    assert by["TrustStoreCert/same"].before_sensitive == by["TrustStoreCert/same"].after_sensitive
    bool_ = json.loads(plan.to_json())["resource_changes"]
    dumped = {c["address"]: c for c in bool_}
    assert dumped["TrustStoreCert/bool"]["before"] == {"active": 1, "port": 1}
    assert dumped["TrustStoreCert/bool"]["after"] == {"active": True, "port": 1.0}
    assert dumped["TrustStoreCert/bool"]["after"]["active"] is True
    assert isinstance(dumped["TrustStoreCert/bool"]["after"]["port"], float)
    order = by["TrustStoreCert/order"]
    assert list(order.before or {}) == ["a", "b"] and list(order.after or {}) == ["b", "a"]
    assert by["TrustStoreCert/edit"].before != by["TrustStoreCert/edit"].after
    assert by["TrustStoreCert/new"].before is None
    _reads_back_as_itself(plan)


@pytest.mark.anyio
async def test_a_plan_of_every_action_reads_back_as_itself(tmp_path: Path, client: InstanceClient) -> None:
    write_stack(tmp_path / "a", 24)
    write_stack(tmp_path / "b", 24, change_every=3)
    first = await make_planned(client, load_specs([tmp_path / "a"], root=tmp_path / "a"), instance_name="i", stack="s")
    _reads_back_as_itself(first.plan)
    assert (await apply_planned(client, first)).ok
    changed = await make_planned(
        client, load_specs([tmp_path / "b"], root=tmp_path / "b"), instance_name="i", stack="s"
    )
    actions = {c.action for c in changed.plan.resource_changes}
    assert {"update", "no-op"} <= actions
    _reads_back_as_itself(changed.plan)
    unchanged = [c for c in changed.plan.resource_changes if c.action == "no-op"]
    assert unchanged and all(c.before is c.after for c in unchanged)


def test_an_unsealed_plan_seals_to_the_plan_make_plan_seals() -> None:
    same = {"short_description": "d"}
    change = _change("TrustStoreCert/a", "no-op", dict(same), dict(same))
    sealed = _plan(change)
    unsealed = _plan(change, seal=False)
    assert unsealed.checksum == "" and sealed.checksum.startswith("sha256:")
    assert unsealed.sealed().checksum == sealed.checksum
    assert sealed.sealed() is sealed
    assert Plan.from_json(unsealed.to_json()).checksum == sealed.checksum  # what saves a plan seals it


@pytest.mark.anyio
async def test_a_plan_read_as_text_makes_no_spec_digest_and_a_saved_one_the_digest_of_its_fresh_specs(
    tmp_path: Path, client: InstanceClient
) -> None:
    # The digest is made when a plan that is saved or shown asks for it, after the diff: it must be the one the specs
    # give before any stage has touched the desired state (the same specs, built again on their own).
    write_stack(tmp_path / "a", 24)
    specs = load_specs([tmp_path / "a"], root=tmp_path / "a")
    assert (await apply_planned(client, await make_planned(client, specs, instance_name="i", stack="s"))).ok
    write_stack(tmp_path / "b", 24, change_every=3)
    edited = load_specs([tmp_path / "b"], root=tmp_path / "b")
    fresh = build_desired(load_specs([tmp_path / "b"], root=tmp_path / "b")).spec_digest
    assert fresh.startswith("sha256:") and fresh != build_desired(specs).spec_digest

    text_only = await make_planned(client, edited, instance_name="i", stack="s", seal=False)
    assert "spec_digest" not in vars(text_only.desired)  # never made
    assert text_only.plan.spec_digest == "" and text_only.plan.checksum == ""
    with pytest.raises(ValueError, match="no spec digest"):
        text_only.plan.sealed()
    with pytest.raises(ValueError, match="no spec digest"):
        text_only.plan.to_json()

    saved = await make_planned(client, edited, instance_name="i", stack="s")
    assert saved.plan.spec_digest == saved.desired.spec_digest == fresh
    assert Plan.from_json(saved.plan.to_json()).spec_digest == fresh
    assert text_only.desired.spec_digest == fresh  # asked late, the same
    assert Desired(text_only.desired.resources, "sha256:given").spec_digest == "sha256:given"


def _inventory(n: int) -> Inventory:
    return Inventory(
        stack="s",
        generation=4,
        resources={
            f"TrustStoreCert/tc-{i}": OwnedResource(
                address=f"TrustStoreCert/tc-{i}",
                records=[OwnedRecord(table="sys_certificate", sys_id=f"{i:032x}", mod_count=i % 3 or None)],
                content_digest="sha256:" + "a" * 64,
                pending=i == 2,
            )
            for i in range(n)
        },
    )


def test_the_inventory_read_in_one_step_is_the_one_validated_from_a_dict() -> None:
    inventory = _inventory(50)
    text = inventory.to_json()
    assert Inventory.from_json(text) == Inventory.model_validate(json.loads(text)) == inventory
    assert Inventory.from_json(text.encode()) == inventory
    pointer, chunks = encode_parts(inventory, "0123abcd")
    assert decode_parts(pointer.parts, chunks) == inventory


@pytest.mark.parametrize(
    "text",
    [
        '{"stack":"s","resources":{},"junk":' + "[" * 100_000 + "]" * 100_000 + "}",  # deeper than any parser's stack
        '{"stack":"s","resources":{"a":{"address":"a","records":"no"}}}',
        '{"stack":"s"',
    ],
)
def test_a_damaged_inventory_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        Inventory.from_json(text)
    data = text.encode()
    blob = base64.b64encode(gzip.compress(data, mtime=0)).decode()
    ref = PartsRef(id="0123abcd", count=1, encoding="gzip+base64", sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(ValueError):
        decode_parts(ref, [blob])
