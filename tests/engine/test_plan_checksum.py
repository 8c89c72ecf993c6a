"""The plan's checksum is hashed a resource change at a time; it must be the digest of exactly the text the
whole plan dumps to (sorted keys, compact), or saved plans would stop verifying."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mtls_config.client import InstanceClient
from mtls_config.engine import apply_planned, make_planned
from mtls_config.plan import Plan
from mtls_config.spec.loader import load_specs
from tests.engine.stacks import write_stack

pytestmark = pytest.mark.anyio


def _whole_text_checksum(plan: Plan) -> str:
    # docs/plan-format.md: every key but created_at, checksum, findings and the changed fields' instance/spec
    data = plan.model_dump(mode="json", by_alias=True, exclude={"created_at", "checksum", "findings"})
    for change in data["resource_changes"]:
        for field in change["changed_fields"]:
            del field["instance"], field["spec"]
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


async def test_streamed_checksum_is_the_digest_of_the_whole_text(tmp_path: Path, client: InstanceClient) -> None:
    write_stack(tmp_path / "a", 40)
    write_stack(tmp_path / "b", 40, change_every=3)
    first = await make_planned(client, load_specs([tmp_path / "a"], root=tmp_path / "a"), instance_name="i", stack="s")
    assert (await apply_planned(client, first)).ok
    changed = await make_planned(
        client, load_specs([tmp_path / "b"], root=tmp_path / "b"), instance_name="i", stack="s"
    )
    empty = Plan.model_validate({**first.plan.model_dump(by_alias=True), "resource_changes": []})
    for plan in (first.plan, changed.plan, empty):
        assert plan.body_checksum() == _whole_text_checksum(plan)
    assert changed.plan.checksum == _whole_text_checksum(changed.plan)
    assert {c.action for c in changed.plan.resource_changes} >= {"update", "no-op"}
