"""A record being re-made (replace) stays owned until the new one exists: a run that stops before it deletes
the old record (killed, or the delete refused) must leave a stack that the next plan still recognises."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtls_config.apply import Runner
from mtls_config.client import InstanceClient
from mtls_config.compile import compile_changes
from mtls_config.engine import apply_planned, make_planned
from mtls_config.spec.loader import load_specs

pytestmark = pytest.mark.anyio


async def test_replace_interrupted_before_the_delete_is_finished_by_the_next_run(
    stack_dir: Path, client: InstanceClient
) -> None:
    specs = load_specs([stack_dir / "resources"], root=stack_dir)
    assert (await apply_planned(client, await make_planned(client, specs, instance_name="local", stack="s"))).ok
    # By hand, the trust certificate's record becomes a keystore record: only a new record can fix that.
    row = (await client.list("sys_certificate", query="name=Acme Payments server CA", fields=["sys_id"]))[0]
    await client.update("sys_certificate", row["sys_id"], {"type": "key_store"})

    planned = await make_planned(client, specs, instance_name="local", stack="s")
    actions = {c.address: c.action for c in planned.plan.resource_changes}
    assert actions["TrustStoreCert/Acme Payments server CA"] == "replace"
    compiled = compile_changes(planned.result.changes, planned.desired, planned.live)
    runner = Runner(client, planned.desired, planned.live, planned.result.changes, compiled)
    await runner.write_pending(*await runner.first_round())
    # ... and the run is killed before its first write.

    again = await make_planned(client, specs, instance_name="local", stack="s")
    assert not again.plan.errors, again.plan.errors
    actions = {c.address: c.action for c in again.plan.resource_changes}
    assert actions["TrustStoreCert/Acme Payments server CA"] == "replace"
    assert (await apply_planned(client, again)).ok
    names = [r["name"] for r in await client.list("sys_certificate", fields=["name"])]
    assert sorted(names) == sorted(set(names))
    final = await make_planned(client, specs, instance_name="local", stack="s")
    assert not final.plan.has_changes, final.plan.to_json()
