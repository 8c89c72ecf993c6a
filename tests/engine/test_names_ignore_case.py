"""Names compared as the instance compares them: its text matching ignores case (facts-2 §7), so a record whose name
differs from a spec's only in case is the record the spec names, and two such records are one name twice. For
certificates (name), protocol profiles (protocol), messages (name) and functions (function_name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.client import InstanceClient
from mtls_config.engine import apply_planned, make_planned
from mtls_config.inventory import OwnedRecord, OwnedResource
from mtls_config.resources import protocol_profile
from mtls_config.resources.common import DesiredResource, LiveRecord
from mtls_config.resources.kind import Ambiguous, Index
from mtls_config.spec.loader import load_specs

pytestmark = pytest.mark.anyio


def _profiles(*rows: tuple[str, str]) -> Index:
    records = [
        LiveRecord("sys_protocol_profile", sys_id, 0, {"sys_id": sys_id, "protocol": name, "default_port": "443"})
        for sys_id, name in rows
    ]
    return Index({"sys_protocol_profile": records}, {}, {})


def _profile(name: str) -> DesiredResource:
    fields = protocol_profile.canonical_fields(port=443, key_store="ks")
    return DesiredResource(f"ProtocolProfile/{name}", "ProtocolProfile", name, "sys_protocol_profile", fields)


def test_a_profile_is_found_whatever_the_case_of_its_protocol() -> None:
    found = protocol_profile.KIND.match(_profile("mauth"), _profiles(("p1", "MAuth")), None)
    assert found is not None and not isinstance(found, Ambiguous)
    assert found.primary is not None and found.primary.sys_id == "p1"


def test_two_profiles_differing_only_in_case_are_ambiguous_unless_one_is_owned() -> None:
    index = _profiles(("p2", "mauth"), ("p1", "MAUTH"))
    found = protocol_profile.KIND.match(_profile("mauth"), index, None)
    assert found == Ambiguous(
        "2 protocol profiles are named 'mauth' (ignoring case, as the instance compares names): p1 ('MAUTH'), "
        "p2 ('mauth')"
    )
    owned = OwnedResource(
        address="ProtocolProfile/mauth", records=[OwnedRecord(table="sys_protocol_profile", sys_id="p1")]
    )
    ours = protocol_profile.KIND.match(_profile("mauth"), _profiles(("p2", "mauth"), ("p1", "MAUTH")), owned)
    assert ours is not None and not isinstance(ours, Ambiguous) and ours.primary is not None
    assert ours.primary.sys_id == "p1"


async def _message(client: InstanceClient, name: str) -> dict[str, str]:
    return (await client.list("sys_rest_message", query=f"name={name}", fields=["sys_id", "name"]))[0]


async def test_two_messages_differing_only_in_case_are_an_ambiguity_naming_both(
    stack_dir: Path, client: InstanceClient
) -> None:
    acme = await _message(client, "Acme Payments API")
    twin = await client.create("sys_rest_message", {"name": "ACME PAYMENTS API"})
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    plan = (await make_planned(client, specs, instance_name="local", stack="s")).plan
    errors = {f.address: f for f in plan.findings if f.severity == "error"}
    both = sorted([(acme["sys_id"], "Acme Payments API"), (twin["sys_id"], "ACME PAYMENTS API")])
    assert errors["MessageBinding/acme-payments-api"].message == (
        "2 REST messages are named 'Acme Payments API' (ignoring case, as the instance compares names): "
        + ", ".join(f"{s} ('{n}')" for s, n in both)
    )
    assert "MessageBinding/acme-payments-api" not in {c.address for c in plan.resource_changes}


async def test_a_function_listed_in_another_case_is_bound_and_stays_bound(
    stack_dir: Path, client: InstanceClient
) -> None:
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("functions: all", "functions: [POST_PAYMENT]"))
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    result = await apply_planned(client, await make_planned(client, specs, instance_name="local", stack="s"))
    assert result.ok
    rows = await client.list("sys_rest_message_fn", query="function_name=post_payment", fields=["use_mutual_auth"])
    assert rows == [{"use_mutual_auth": "true"}]
    again = await make_planned(client, specs, instance_name="local", stack="s")
    assert not again.plan.has_changes and not again.plan.errors


async def test_two_functions_differing_only_in_case_are_ambiguous(stack_dir: Path, client: InstanceClient) -> None:
    acme = await _message(client, "Acme Payments API")
    first = (await client.list("sys_rest_message_fn", query="function_name=post_payment", fields=["sys_id"]))[0]
    twin = await client.create(
        "sys_rest_message_fn", {"rest_message": acme["sys_id"], "function_name": "Post_Payment", "http_method": "post"}
    )
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("functions: all", "functions: [post_payment]"))
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    plan = (await make_planned(client, specs, instance_name="local", stack="s")).plan
    (error,) = [f for f in plan.findings if f.address == "MessageBinding/acme-payments-api"]
    both = sorted([(first["sys_id"], "post_payment"), (twin["sys_id"], "Post_Payment")])
    assert error.severity == "error" and error.message == (
        "2 functions of REST message 'Acme Payments API' are named 'post_payment' (ignoring case, as the instance "
        "compares names): " + ", ".join(f"{s} ('{n}')" for s, n in both)
    )
