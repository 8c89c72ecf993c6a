"""The kind registry: every kind is one module, the stages ask it, and a kind it does not know is an error in
every stage, never treated as another kind."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

import mtls_config
from mtls_config.changes import Change, DiffResult
from mtls_config.client import InstanceClient
from mtls_config.compile import compile_changes
from mtls_config.desired import Desired
from mtls_config.diff import diff
from mtls_config.engine import make_planned
from mtls_config.errors import UnknownKind
from mtls_config.inventory import Inventory, OwnedRecord, OwnedResource
from mtls_config.inventory_store import read_inventory, store_inventory
from mtls_config.live import Live
from mtls_config.plan import make_plan
from mtls_config.resources import key_store, message_binding, protocol_profile, registry, trust_store_cert
from mtls_config.resources.common import DesiredResource
from mtls_config.spec.loader import load_specs
from mtls_config.spec.models import KINDS, MODELS

PACKAGE = Path(mtls_config.__file__).parent
OWN_MODULE = {
    "KeyStore": PACKAGE / "resources" / "key_store.py",
    "TrustStoreCert": PACKAGE / "resources" / "trust_store_cert.py",
    "ProtocolProfile": PACKAGE / "resources" / "protocol_profile.py",
    "MessageBinding": PACKAGE / "resources" / "message_binding.py",
}
SPEC_MODELS = PACKAGE / "spec" / "models.py"


def test_the_registry_lists_every_spec_kind_in_the_spec_order() -> None:
    assert registry.NAMES == KINDS
    for kind in registry.KINDS:
        assert kind.model is MODELS[kind.name]
        assert kind.model.kind_name() == kind.name
        assert kind.address("x") == f"{kind.name}/x"
    assert [k.name for k in registry.KINDS] == [
        key_store.NAME,
        trust_store_cert.NAME,
        protocol_profile.NAME,
        message_binding.NAME,
    ]


def _kind_literals(path: Path) -> set[str]:
    """Kind names written as string literals in a module (whole, or as the start of an address)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for kind in KINDS:
                if node.value == kind or node.value.startswith(f"{kind}/"):
                    found.add(kind)
    return found


def test_kind_names_are_written_only_in_their_own_module_and_the_spec_models() -> None:
    misplaced = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == SPEC_MODELS:
            continue
        for kind in _kind_literals(path):
            if path != OWN_MODULE[kind]:
                misplaced.append(f"{path.relative_to(PACKAGE.parent)}: {kind}")
    assert not misplaced, "kind names outside their kind's module:\n" + "\n".join(misplaced)


def test_the_literal_check_sees_a_kind_name_and_an_address(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('A = "ProtocolProfile"\nB = f"KeyStore/{A}"\nC = "a MessageBinding binds"\n', encoding="utf-8")
    assert _kind_literals(module) == {"ProtocolProfile", "KeyStore"}


def test_an_unknown_kind_is_an_error_not_another_kind() -> None:
    with pytest.raises(UnknownKind, match="'HttpConnection'"):
        registry.kind_named("HttpConnection")
    with pytest.raises(UnknownKind):
        registry.kind_of_address("HttpConnection/orders")


def _stranger() -> DesiredResource:
    return DesiredResource("HttpConnection/orders", "HttpConnection", "orders", "http_connection", {"x": 1})


def test_diff_refuses_a_desired_resource_of_an_unknown_kind() -> None:
    live = Live("t", Inventory(stack="t"), None, None, {})
    with pytest.raises(UnknownKind):
        diff(Desired((_stranger(),), "sha256:test"), live, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_plan_and_compile_refuse_a_change_of_an_unknown_kind() -> None:
    change = Change("HttpConnection/orders", "HttpConnection", "orders", "http_connection", "create", "new")
    with pytest.raises(UnknownKind):
        make_plan(
            DiffResult((change,), ()),
            instance="i",
            stack="t",
            spec_digest="sha256:test",
            inventory_sys_id=None,
            inventory_mod_count=None,
            inventory_generation=0,
            prune=False,
        )
    live = Live("t", Inventory(stack="t"), None, None, {})
    with pytest.raises(UnknownKind):
        compile_changes([change], Desired((_stranger(),), "sha256:test"), live)


@pytest.mark.anyio
async def test_an_inventory_naming_an_unknown_kind_stops_the_plan(stack_dir: Path, client: InstanceClient) -> None:
    """Another version's inventory may own a kind this one does not know: the plan stops and says so, rather than
    reading its records as a binding's."""
    inventory, record, _ = await read_inventory(client, "s")
    message = (await client.list("sys_rest_message", query="name=Weather Service", fields=["sys_id"]))[0]
    owned = OwnedRecord(table="sys_rest_message", sys_id=message["sys_id"], part="message")
    inventory.resources["HttpConnection/weather"] = OwnedResource(address="HttpConnection/weather", records=[owned])
    await store_inventory(client, "s", record, inventory)
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    with pytest.raises(UnknownKind, match="'HttpConnection'"):
        await make_planned(client, specs, instance_name="local", stack="s")


def test_each_model_keeps_its_own_kind_name_when_asked_again_in_any_order() -> None:
    """kind_name is remembered per model (issue 18: it was read from the Literal 45 000 times a plan of 5000):
    asked again, interleaved, each model still answers its own kind and address."""
    for _ in range(2):
        for kind in (*registry.KINDS, *reversed(registry.KINDS)):
            assert kind.model.kind_name() == kind.name
            assert kind.model.address_of("n") == f"{kind.name}/n"
