"""Golden plans: the plan JSON for the same inputs stays the same, byte for byte.

Two sources of inputs. Every diff case of tests/cases/diff/ (desired + live -> plan, no I/O). And the example stack
(specs/examples/two-partners) against the emulator, in the order a stack lives: the first plan, plans narrowed by
--target/--exclude, the plan after apply, a plan after edits by hand and in the specs, and a prune. ``now`` is fixed;
the sys_ids the instance and apply choose at random are replaced by ``<sys_id N>`` in order of appearance (the same
sys_id twice is the same placeholder), and the checksum of such a plan, which covers them, is checked and then
replaced.

The golden files live in tests/golden/plans/. A change to one is a change of behaviour: regenerate them with
``MTLS_CONFIG_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/engine/test_golden_plans.py`` only when that change
is intended, and read the diff.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
from pathlib import Path

import pytest

from mtls_config.client import InstanceClient
from mtls_config.engine import Planned, apply_planned, make_planned
from mtls_config.plan import Plan, make_plan
from mtls_config.spec.loader import load_specs
from tests.engine.diffcases import CASES, load_case, run_diff

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "plans"
UPDATE = os.environ.get("MTLS_CONFIG_UPDATE_GOLDEN") == "1"
# The Acme client certificate expires on 2028-11-26: within its warnDays (45), so the plans carry expiry findings.
EXAMPLE_NOW = dt.datetime(2028, 10, 20, 12, 0, tzinfo=dt.UTC)
SYS_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def _check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden plan {path.name}; run with MTLS_CONFIG_UPDATE_GOLDEN=1 to write it")
    want = path.read_text(encoding="utf-8")
    if text != want:
        shown = "\n".join(difflib.unified_diff(want.splitlines(), text.splitlines(), "golden", "actual", lineterm=""))
        pytest.fail(f"the plan differs from {path.name}:\n{shown}")


def _normalised(plan: Plan) -> str:
    """The plan's JSON with the random sys_ids named by order of appearance and the checksum checked."""
    assert plan.checksum == plan.body_checksum()
    data = json.loads(plan.to_json())
    data["checksum"] = "<checksum over the real sys_ids>"
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    names: dict[str, str] = {}
    return SYS_ID.sub(lambda m: names.setdefault(m.group(0), f"<sys_id {len(names) + 1}>"), text)


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_diff_case_plan_is_unchanged(path: Path) -> None:
    case = load_case(path)
    desired, live, result = run_diff(case)
    plan = make_plan(
        result,
        instance="https://golden.service-now.com",
        stack=live.stack,
        spec_digest=desired.spec_digest,
        inventory_sys_id=None,
        inventory_mod_count=None,
        inventory_generation=live.inventory.generation,
        prune=bool(case.get("prune", False)),
        now=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
    )
    _check(f"diff-{path.stem}", plan.to_json())


async def _plan(client: InstanceClient, root: Path, **kw: object) -> Planned:
    specs = load_specs([root / "resources"], root=root)
    return await make_planned(client, specs, instance_name="local", stack="golden", now=EXAMPLE_NOW, **kw)  # type: ignore[arg-type]


async def _edit_by_hand(client: InstanceClient) -> None:
    """Edits an admin makes on the instance: a description, a keystore file, a password, a binding switched off."""
    certs = {r["name"]: r for r in await client.list("sys_certificate", fields=["sys_id", "name"])}
    await client.update(
        "sys_certificate", certs["Acme Payments server CA"]["sys_id"], {"short_description": "edited by hand"}
    )
    globex = certs["Globex client"]["sys_id"]
    for att in await client.list_attachments("sys_certificate", [globex]):
        await client.delete_attachment(att["sys_id"])
    await client.upload_attachment("sys_certificate", globex, "globex.jks", b"\xfe\xed\xfe\xed not the right store")
    await client.update(
        "sys_certificate", certs["Acme Payments client"]["sys_id"], {"key_store_password": "guessed"},
        input_display_value=True,
    )  # fmt: skip
    message = (await client.list("sys_soap_message", query="name=Globex Orders", fields=["sys_id"]))[0]
    await client.update("sys_soap_message", message["sys_id"], {"use_mutual_auth": "false"})
    fn = (await client.list("sys_rest_message_fn", query="function_name=post_payment", fields=["sys_id"]))[0]
    await client.update("sys_rest_message_fn", fn["sys_id"], {"protocol_name": ""})


@pytest.mark.anyio
async def test_example_stack_plans_are_unchanged(stack_dir: Path, client: InstanceClient) -> None:
    first = await _plan(client, stack_dir)
    _check("example-first", _normalised(first.plan))
    targeted = await _plan(client, stack_dir, targets=["MessageBinding/acme-payments-api"])
    _check("example-targeted", _normalised(targeted.plan))
    excluded = await _plan(
        client, stack_dir, excludes=["TrustStoreCert/Globex orders server", "KeyStore/Globex client"]
    )
    _check("example-excluded", _normalised(excluded.plan))

    assert (await apply_planned(client, first)).ok
    _check("example-noop", _normalised((await _plan(client, stack_dir)).plan))

    await _edit_by_hand(client)
    spec = stack_dir / "resources" / "acme-payments.yaml"
    spec.write_text(spec.read_text().replace("port: 443", "port: 8443").replace("warnDays: 45", "warnDays: 60"))
    drifted = await _plan(client, stack_dir)
    _check("example-drift", _normalised(drifted.plan))
    assert (await apply_planned(client, drifted)).ok

    (stack_dir / "resources" / "globex-orders.yaml").unlink()
    _check("example-orphans", _normalised((await _plan(client, stack_dir)).plan))
    pruned = await _plan(client, stack_dir, prune=True)
    _check("example-prune", _normalised(pruned.plan))
    assert (await apply_planned(client, pruned)).ok
    _check("example-after-prune", _normalised((await _plan(client, stack_dir)).plan))
