"""A plan's first reads go out from the specs' names before the desired state is built: the names they use
must be the desired state's, and a plan that stops on a spec error leaves nothing in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mtls_config.client import InstanceClient
from mtls_config.desired import build_desired
from mtls_config.engine import make_planned
from mtls_config.errors import SpecError
from mtls_config.observe import NaturalKeys
from mtls_config.spec.loader import load_specs
from tests.engine.stacks import write_stack

pytestmark = pytest.mark.anyio


def test_the_specs_and_the_desired_state_name_the_same_records(stack_dir: Path, tmp_path: Path) -> None:
    for root in (stack_dir / "resources", tmp_path / "bench"):
        if not root.exists():
            write_stack(root, 40)
        specs = load_specs([root], root=root.parent if root.name == "resources" else root)
        keys = NaturalKeys.of_specs(specs)
        assert keys == NaturalKeys.of_desired(build_desired(specs))
        assert {"sys_certificate", "sys_protocol_profile"} <= {lookup.table for lookup in keys.lookups}
    example = NaturalKeys.of_specs(load_specs([stack_dir / "resources"], root=stack_dir))
    # the example binds REST messages: they are looked up in round 1
    assert ("sys_rest_message", "name") in example.by_column()


async def test_a_spec_error_stops_the_plan_with_no_read_left_in_flight(stack_dir: Path, client: InstanceClient) -> None:
    (stack_dir / "demo-secrets" / "keystore-password.txt").unlink()  # found only when the desired state is built
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    before = set(asyncio.all_tasks())
    with pytest.raises(SpecError, match=r"keystore-password\.txt"):
        await make_planned(client, specs, instance_name="local", stack="s")
    assert set(asyncio.all_tasks()) - before == set()
